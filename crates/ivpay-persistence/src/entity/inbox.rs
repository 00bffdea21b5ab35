//! `webhook_inbox`: received webhooks not yet confirmed and applied.

use sea_orm::entity::prelude::*;

/// One received webhook, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_inbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub ivpay_payment_id: String,
    pub claimed_status: Option<String>,
    pub raw: String,
    pub received_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// When the row was found unreadable and set aside; `NULL` for a row in service.
    pub quarantined_at: Option<i64>,
    /// Why it could not be read, as logged.
    pub quarantine_reason: Option<String>,
    /// The IVPAY account whose key the webhook echoed.
    pub account: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
