//! An index on `idempotency_keys.internal_payment_id`: abandoning a payment releases its
//! key by that column, and the foreign key's cascade looks it up when a payment is
//! deleted. Without it both scan every key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    InternalPaymentId,
}

const INDEX: &str = "idempotency_keys_internal_payment_id_idx";

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::InternalPaymentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(IdempotencyKeys::Table)
                    .to_owned(),
            )
            .await
    }
}
