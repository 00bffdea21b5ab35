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
    Down(Option<u32>),
}

/// Runs the migrator as one write transaction: on PostgreSQL holding an advisory lock,
/// on SQLite begun `IMMEDIATE` (taking the single write lock at once). Instances starting
/// together therefore migrate one after the other, the later ones finding nothing to do,
/// and a failure anywhere undoes the whole run. Each migration is a savepoint inside it.
async fn run(db: &Database, direction: Direction) -> Result<(), DbErr> {
    let txn = crate::database::begin_write(db.connection()).await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
    }
    match direction {
        Direction::Up => Migrator::up(&txn, None).await?,
        Direction::Down(steps) => Migrator::down(&txn, steps).await?,
    }
    txn.commit().await
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
        ]
    }
}

/// Applies every pending migration, each in its own transaction. Running it on an
/// up-to-date database does nothing, so the app may call it on every start.
///
/// # Errors
///
/// [`MigrateError`] when a migration fails; the whole run is rolled back.
pub async fn migrate_up(db: &Database) -> Result<(), MigrateError> {
    run(db, Direction::Up).await.map_err(MigrateError::from_db)
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
