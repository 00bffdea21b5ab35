//! `payment_events`: every status update, applied or not, with its evidence.

use sea_orm::entity::prelude::*;

/// A stored event. `internal_payment_id` is `NULL` for updates about payments we do not
/// know (yet).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_events")]
pub struct Model {
    /// Insertion order, breaking ties between events received in the same second.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub internal_payment_id: Option<String>,
    pub ivpay_payment_id: String,
    pub source: String,
    pub from_status: Option<String>,
    pub to_status: String,
    /// [`ivpay_domain::EventOutcome::as_str`].
    pub outcome: String,
    pub evidence: Option<String>,
    pub received_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
