//! `payments`: one row per payment, with its reconciliation schedule.

use sea_orm::entity::prelude::*;

/// A stored payment. Money is kept as the canonical amount text (`"10.50"`), never as a
/// DECIMAL column, so it reads back exactly on both backends.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    /// Our id, a hyphenated UUID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Compare-and-set version, at least 1.
    pub version: i64,
    /// When the intent was recorded (Unix seconds).
    pub created_at: i64,
    /// When the row last changed (Unix seconds).
    pub updated_at: i64,
    /// IVPAY's id, once created upstream (unique when present).
    pub ivpay_payment_id: Option<String>,
    /// The client's reference, as given (not unique).
    pub foreign_id: Option<String>,
    /// Canonical amount text, with exactly the currency's minor units.
    pub amount: String,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Where IVPAY sends the customer after paying.
    pub url_success: Option<String>,
    /// Where IVPAY sends the customer after a failed payment.
    pub url_failed: Option<String>,
    /// IVPAY's checkout URL, once created upstream.
    pub payment_url: Option<String>,
    /// When IVPAY created it (Unix seconds), once created upstream.
    pub upstream_created_at: Option<i64>,
    /// `initiated`, `created`, `rejected`, `unknown` or `abandoned`.
    pub create_outcome: String,
    /// Why the create outcome is what it is; only for the outcomes that carry a reason.
    pub create_outcome_reason: Option<String>,
    /// IVPAY's status: `CREATED`, `PENDING`, `PAID` or `TIMEOUT`.
    pub status: String,
    /// When IVPAY says it processed the status (Unix seconds).
    pub processed_at: Option<i64>,
    /// When the reconciler should next look; `NULL` for none.
    pub next_check_at: Option<i64>,
    /// Reconciliation checks made so far (drives the back-off).
    pub check_attempts: i64,
    /// When the row was found unreadable and set aside (Unix seconds); `NULL` for a row
    /// in service. Quarantined rows are never claimed nor listed as stale intents.
    pub quarantined_at: Option<i64>,
    /// Why it could not be read, as logged.
    pub quarantine_reason: Option<String>,
    /// The client that created it; `NULL` for rows from before payments had owners.
    pub owner_client: Option<String>,
    /// The IVPAY account it was made through.
    pub account: String,
    /// The notices the last change owes its listeners and that are not yet notification
    /// rows (their types, space-separated), written by the change itself; `NULL` when
    /// none are owed. See `NotificationStore::announce_pending`.
    pub unannounced: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
