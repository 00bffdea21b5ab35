//! The webhook inbox: received webhooks kept until confirmed with IVPAY and applied.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len, text, text_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    Id,
    IvpayPaymentId,
    ClaimedStatus,
    Raw,
    ReceivedAt,
    Attempts,
    NextAttemptAt,
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookInbox::Table)
                    .col(string_len(WebhookInbox::Id, 36).primary_key())
                    .col(string_len(WebhookInbox::IvpayPaymentId, 64))
                    .col(text_null(WebhookInbox::ClaimedStatus))
                    .col(text(WebhookInbox::Raw))
                    .col(big_integer(WebhookInbox::ReceivedAt))
                    .col(big_integer(WebhookInbox::Attempts).default(0))
                    .col(big_integer(WebhookInbox::NextAttemptAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_inbox_next_attempt_at_idx")
                    .table(WebhookInbox::Table)
                    .col(WebhookInbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookInbox::Table).to_owned())
            .await
    }
}
