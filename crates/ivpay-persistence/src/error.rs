//! This crate's own errors, and the one place where `DbErr` becomes a port error.

use ivpay_ports::RepositoryError;
use sea_orm::{DbErr, SqlErr};

/// Why [`crate::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database url scheme {scheme:?}, expected sqlite: or postgres:")]
    UnsupportedUrl {
        /// The scheme given, cut to 16 characters.
        scheme: String,
    },
    /// The URL names a backend this build left out (`ivpay-persistence`'s `sqlite` or
    /// `postgres` feature).
    #[error("this build has no {backend:?} support (enable ivpay-persistence's feature for it)")]
    NotCompiledIn {
        /// The backend the URL names.
        backend: crate::Backend,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the database: {reason}")]
    Open {
        /// What the driver said, with the URL (which may hold a password) removed.
        reason: String,
    },
}

/// A migration (or rollback) failed; the failing step was rolled back.
#[derive(Debug, thiserror::Error)]
#[error("database migration failed")]
pub struct MigrateError(#[source] Box<dyn std::error::Error + Send + Sync + 'static>);

impl MigrateError {
    pub(crate) fn from_db(e: DbErr) -> Self {
        Self(Box::new(e))
    }
}

/// Any database failure that the caller can only retry later.
pub(crate) fn unavailable(e: DbErr) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(e))
}

/// Whether the error is a unique-constraint violation (on any backend).
pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether the error is a foreign-key violation (on any backend).
pub(crate) fn is_foreign_key_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// A stored value that no longer parses into the domain.
pub(crate) fn corrupt(what: &str, id: &str, e: impl std::fmt::Display) -> RepositoryError {
    RepositoryError::Corrupt(format!("{what} of {id}: {e}"))
}
