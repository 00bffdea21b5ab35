//! `notifications`: the outbox, one row per notice and endpoint.

use sea_orm::entity::prelude::*;

/// A stored notification.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub client_id: String,
    pub internal_payment_id: String,
    pub event_type: String,
    pub sequence: i64,
    pub body: String,
    pub created_at: i64,
    /// [`ivpay_ports::DeliveryState::as_str`].
    pub state: String,
    pub attempts: i32,
    pub round_attempts: i32,
    pub next_attempt_at: Option<i64>,
    /// Until when a deliverer holds it (set by a claim, cleared by the attempt's record).
    pub lease_until: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
