//! `notify_endpoints`: clients' notification endpoints.

use sea_orm::entity::prelude::*;

/// A stored endpoint. `secrets` holds the `whsec_` secrets, newest first, one per line.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notify_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub client_id: String,
    pub url: String,
    pub secrets: String,
    /// [`ivpay_domain::NoticeFilter`]'s text: `*` or names separated by commas.
    pub filter: String,
    pub description: Option<String>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
