//! Schema migrations, applied in order and recorded in `seaql_migrations`.
//!
//! Every migration runs inside a transaction on both backends: sea-orm skips the
//! transaction on SQLite unless a migration asks for one (each of ours returns
//! `use_transaction() -> Some(true)`), and a half-applied migration would leave a schema
//! no code expects. [`migrate_up`] and [`migrate_down`] go further and wrap the whole run
//! in one serialized transaction. Migrations are frozen once released: they name
//! their own tables and columns instead of reusing the entities, so a later change to a
//! row type cannot rewrite history.

mod m0001_payments;
mod m0002_webhook_inbox;
mod m0003_recovery_quarantine;
mod m0004_tenancy;
mod m0005_notifications;
mod m0006_idempotency_payment_index;
mod m0007_unannounced;

use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

use crate::database::Database;
use crate::error::MigrateError;

/// The PostgreSQL advisory lock that serializes migrations across instances ("ivpaymig").
const MIGRATION_LOCK: i64 = 0x6976_7061_796d_6967;

/// Which way to migrate.
#[derive(Clone, Copy)]
enum Direction {
    Up,
    /// The next pending migration only.
    UpOne,
    Down(Option<u32>),
}

/// Runs the migrator as one write transaction: on PostgreSQL holding an advisory lock,
/// on SQLite begun `IMMEDIATE` (taking the single write lock at once). Instances starting
/// together therefore migrate one after the other, the later ones finding nothing to do,
/// and a failure anywhere undoes the whole run. Each migration is a savepoint inside it.
/// Answers the name of the migration a [`Direction::UpOne`] applied (`None` when none
/// was pending).
async fn run(db: &Database, direction: Direction) -> Result<Option<String>, DbErr> {
    // The writer's own connection, lent to the migrator's sea-orm transaction.
    let lent = db.connection().lend().await?;
    let txn = crate::handle::begin_on_pool(lent.pool()).await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
    }
    let mut applied = None;
    match direction {
        Direction::Up => Migrator::up(&txn, None).await?,
        Direction::UpOne => {
            // Read under the lock: another instance may have applied some meanwhile.
            applied = Migrator::get_pending_migrations(&txn)
                .await?
                .first()
                .map(|m| m.name().to_owned());
            if applied.is_some() {
                Migrator::up(&txn, Some(1)).await?;
            }
        }
        Direction::Down(steps) => Migrator::down(&txn, steps).await?,
    }
    txn.commit().await?;
    Ok(applied)
}

/// ivpay's migrations, in order, as a sea-orm [`MigratorTrait`]: for a host that runs its
/// own migrations and ours with one migrator (`Migrator::migrations()` appended to its
/// own list; the names, `m0001_payments` and on, are ours alone). [`migrate_up`] is the
/// usual way: it runs them in one serialized transaction.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_payments::Migration),
            Box::new(m0002_webhook_inbox::Migration),
            Box::new(m0003_recovery_quarantine::Migration),
            Box::new(m0004_tenancy::Migration),
            Box::new(m0005_notifications::Migration),
            Box::new(m0006_idempotency_payment_index::Migration),
            Box::new(m0007_unannounced::Migration),
        ]
    }
}

/// Applies every pending migration, all in one transaction (each a savepoint in it).
/// Running it on an up-to-date database does nothing, so the app may call it on every
/// start.
///
/// # Errors
///
/// [`MigrateError`] when a migration fails; the whole run is rolled back.
pub async fn migrate_up(db: &Database) -> Result<(), MigrateError> {
    run(db, Direction::Up)
        .await
        .map(drop)
        .map_err(MigrateError::from_db)
}

/// Applies the pending migrations one at a time, each in its own serialized transaction,
/// calling `applied` with each one's name and how long it took as soon as it is committed:
/// for an operator watching a long upgrade. Answers how many were applied.
///
/// # Errors
///
/// [`MigrateError`] when a migration fails: that one is rolled back, those before it stay
/// applied, and running again resumes with it.
pub async fn migrate_up_each(
    db: &Database,
    mut applied: impl FnMut(&str, std::time::Duration),
) -> Result<usize, MigrateError> {
    let mut count = 0;
    loop {
        let started = std::time::Instant::now();
        match run(db, Direction::UpOne)
            .await
            .map_err(MigrateError::from_db)?
        {
            Some(name) => {
                applied(&name, started.elapsed());
                count += 1;
            }
            None => return Ok(count),
        }
    }
}

/// Rolls back the last `steps` applied migrations, or all of them with `None`. Rolling
/// back the first migration drops every table and the data in it: meant for tests and
/// for operators undoing a failed upgrade.
///
/// # Errors
///
/// [`MigrateError`] when a rollback fails; the whole run is undone.
pub async fn migrate_down(db: &Database, steps: Option<u32>) -> Result<(), MigrateError> {
    run(db, Direction::Down(steps))
        .await
        .map(drop)
        .map_err(MigrateError::from_db)
}

/// Names of the migrations this build knows and the database has not applied, in order:
/// what `migrate_up` would run. For `ivpay-app doctor`.
///
/// # Errors
///
/// [`MigrateError`] when the migration table cannot be read.
pub async fn pending_migrations(db: &Database) -> Result<Vec<String>, MigrateError> {
    let applied = applied_migrations(db).await?;
    Ok(Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .filter(|name| !applied.contains(name))
        .collect())
}

/// Names of the applied migrations, oldest first, for health checks and tests.
///
/// # Errors
///
/// [`MigrateError`] when the migration table cannot be read.
pub async fn applied_migrations(db: &Database) -> Result<Vec<String>, MigrateError> {
    let applied = Migrator::get_applied_migrations(db.connection())
        .await
        .map_err(MigrateError::from_db)?;
    Ok(applied.iter().map(|m| m.name().to_owned()).collect())
}
