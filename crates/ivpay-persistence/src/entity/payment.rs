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
    /// IVPAY's id, once created upstream (unique when present).
    pub ivpay_payment_id: Option<String>,
    pub foreign_id: Option<String>,
    pub amount: String,
    pub currency: String,
    pub url_success: Option<String>,
    pub url_failed: Option<String>,
    pub payment_url: Option<String>,
    pub upstream_created_at: Option<i64>,
    /// `initiated`, `created`, `rejected` or `unknown`.
    pub create_outcome: String,
    pub create_outcome_reason: Option<String>,
    pub status: String,
    pub processed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// When the reconciler should next look; `NULL` for none.
    pub next_check_at: Option<i64>,
    pub check_attempts: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
