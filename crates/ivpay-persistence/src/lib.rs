//! Storage for ivpay on SQLite or PostgreSQL, through sea-orm: the schema and its
//! migrations, and [`SeaOrmRepository`], the adapter behind the storage ports
//! ([`ivpay_ports::PaymentStore`], [`ivpay_ports::WebhookInbox`],
//! [`ivpay_ports::ReconcileQueue`], [`ivpay_ports::NotificationStore`],
//! [`ivpay_ports::RetentionStore`]).
//!
//! **Role.** A driven adapter of the hexagon. It stores payments, every status update
//! (applied or not, with its evidence), idempotency keys, the reconciliation schedule,
//! clients' notification endpoints, the outbox and its delivery log, and hands them back
//! only as `ivpay-domain` values: rows are re-parsed through the domain's constructors,
//! and the sea-orm entities never leave this crate.
//!
//! **May depend on:** `ivpay-domain`, `ivpay-ports`, `sea-orm` and `sea-orm-migration`
//! (sqlx underneath), `thiserror`, `async-trait`, `tracing`. Never `axum`, `reqwest` or
//! another adapter.
//!
//! **Guarantees.** A status change is a compare-and-set on the payment's version, written
//! in one transaction with its event row. Idempotency keys are claimed through a unique
//! index, so the claim holds across instances. Reconciliation rows are claimed with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL and one leasing `UPDATE ... RETURNING` on SQLite.
//! A change's notifications (the outbox) are written with it, for the endpoints the
//! audience names ([`SeaOrmRepository::with_audience`]), in its transaction (a create's
//! outcome on PostgreSQL: in its very statement), and only if its compare-and-set wins; a
//! change nobody listens to costs not one statement more. Money is stored as canonical
//! text, never as a float or DECIMAL. SQLite runs in WAL mode with `synchronous=NORMAL`
//! (see [`Durability`]), a busy timeout and foreign keys on.
//!
//! ```no_run
//! use ivpay_domain::{AccountId, InternalId, NewPayment, Payment, Timestamp};
//! use ivpay_persistence::{connect, migrate_up, DatabaseOptions, SeaOrmRepository};
//! use ivpay_ports::{IntentInsert, PaymentStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let db = connect("sqlite://ivpay.db?mode=rwc", &DatabaseOptions::default()).await?;
//! migrate_up(&db).await?;
//! let repo = SeaOrmRepository::new(&db);
//!
//! let id: InternalId = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d".parse()?;
//! let request = NewPayment::from_fields("10.50", "USD", Some("order-7"), None, None)?;
//! let payment = Payment::initiate(id, "shop".parse()?, AccountId::default(), request, Timestamp::from_unix_seconds(1_726_248_776));
//! assert_eq!(repo.insert_intent(&payment, None).await?, IntentInsert::Inserted);
//! let stored = repo.get(id).await?.expect("just inserted");
//! assert_eq!(stored.money().amount().to_string(), "10.50");
//! # Ok(()) }
//! ```

mod convert;
mod database;
mod entity;
mod error;
mod handle;
mod migration;
mod notify;
mod outbox;
mod repository;
mod retention;
mod sealed;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::{Backend, Database, DatabaseOptions, Durability, SqliteSettings, connect};
pub use error::{ConnectError, MigrateError};
pub use migration::{
    Migrator, applied_migrations, migrate_down, migrate_up, migrate_up_each, pending_migrations,
};
pub use notify::SealReport;
pub use repository::SeaOrmRepository;
pub use sealed::{KeyError, OpenError, SecretsKeys};
