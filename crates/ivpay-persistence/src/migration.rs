//! Schema migrations, applied in order and recorded in `seaql_migrations`.
//!
//! Every migration runs inside a transaction on both backends: sea-orm skips the
//! transaction on SQLite unless a migration asks for one, and a half-applied migration
//! would leave a schema no code expects. Migrations are frozen once released: they name
//! their own tables and columns instead of reusing the entities, so a later change to a
//! row type cannot rewrite history.

mod m0001_payments;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

use crate::{Database, MigrateError};

/// The ordered list of migrations.
pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_payments::Migration)]
    }
}

/// Applies every pending migration, each in its own transaction. Running it on an
/// up-to-date database does nothing, so the app may call it on every start.
///
/// # Errors
///
/// [`MigrateError`] when a migration fails; that migration is rolled back entirely and
/// the ones before it stay applied.
pub async fn migrate_up(db: &Database) -> Result<(), MigrateError> {
    Migrator::up(db.connection(), None)
        .await
        .map_err(MigrateError::from_db)
}

/// Rolls back the last `steps` applied migrations, or all of them with `None`. Rolling
/// back the first migration drops every table and the data in it: meant for tests and
/// for operators undoing a failed upgrade.
///
/// # Errors
///
/// [`MigrateError`] when a rollback fails; that step is undone entirely.
pub async fn migrate_down(db: &Database, steps: Option<u32>) -> Result<(), MigrateError> {
    Migrator::down(db.connection(), steps)
        .await
        .map_err(MigrateError::from_db)
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
