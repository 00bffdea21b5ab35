//! Payments, their events and idempotency keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, string_len, string_len_null, text, text_null,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    IvpayPaymentId,
    ForeignId,
    Amount,
    Currency,
    UrlSuccess,
    UrlFailed,
    PaymentUrl,
    UpstreamCreatedAt,
    CreateOutcome,
    CreateOutcomeReason,
    Status,
    ProcessedAt,
    CreatedAt,
    UpdatedAt,
    Version,
    NextCheckAt,
    CheckAttempts,
}

#[derive(DeriveIden)]
enum PaymentEvents {
    Table,
    Id,
    InternalPaymentId,
    IvpayPaymentId,
    Source,
    FromStatus,
    ToStatus,
    Outcome,
    Evidence,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ClientId,
    IdempotencyKey,
    Fingerprint,
    InternalPaymentId,
    CreatedAt,
    ExpiresAt,
}

// The trait's methods take `&SchemaManager` with its lifetime elided; async_trait needs the
// same spelling here.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        // sea-orm's default is no transaction on SQLite (crates.md trap 12).
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .col(string_len(Payments::Id, 36).primary_key())
                    .col(string_len_null(Payments::IvpayPaymentId, 64))
                    .col(text_null(Payments::ForeignId))
                    // Canonical amount text at the currency's scale: never DECIMAL, which
                    // sea-orm reads back through f64 on SQLite (crates.md trap 2).
                    .col(text(Payments::Amount))
                    .col(string_len(Payments::Currency, 3))
                    .col(text_null(Payments::UrlSuccess))
                    .col(text_null(Payments::UrlFailed))
                    .col(text_null(Payments::PaymentUrl))
                    .col(big_integer_null(Payments::UpstreamCreatedAt))
                    .col(string_len(Payments::CreateOutcome, 16))
                    .col(text_null(Payments::CreateOutcomeReason))
                    .col(string_len(Payments::Status, 16))
                    .col(big_integer_null(Payments::ProcessedAt))
                    .col(big_integer(Payments::CreatedAt))
                    .col(big_integer(Payments::UpdatedAt))
                    .col(big_integer(Payments::Version))
                    .col(big_integer_null(Payments::NextCheckAt))
                    .col(big_integer(Payments::CheckAttempts).default(0))
                    .check(Expr::col(Payments::Version).gte(1))
                    .check(Expr::col(Payments::CheckAttempts).gte(0))
                    .check(
                        Expr::col(Payments::Status)
                            .is_in(["CREATED", "PENDING", "PAID", "TIMEOUT"]),
                    )
                    .check(Expr::col(Payments::CreateOutcome).is_in([
                        "initiated",
                        "created",
                        "rejected",
                        "unknown",
                        "abandoned",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_ivpay_payment_id_key")
                    .table(Payments::Table)
                    .col(Payments::IvpayPaymentId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_foreign_id_idx")
                    .table(Payments::Table)
                    .col(Payments::ForeignId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_status_next_check_at_idx")
                    .table(Payments::Table)
                    .col(Payments::Status)
                    .col(Payments::NextCheckAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_created_at_id_idx")
                    .table(Payments::Table)
                    .col(Payments::CreatedAt)
                    .col(Payments::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PaymentEvents::Table)
                    .col(big_pk_auto(PaymentEvents::Id))
                    .col(string_len_null(PaymentEvents::InternalPaymentId, 36))
                    .col(string_len(PaymentEvents::IvpayPaymentId, 64))
                    .col(string_len(PaymentEvents::Source, 16))
                    .col(string_len_null(PaymentEvents::FromStatus, 16))
                    .col(text(PaymentEvents::ToStatus))
                    .col(string_len(PaymentEvents::Outcome, 32))
                    .col(text_null(PaymentEvents::Evidence))
                    .col(big_integer(PaymentEvents::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("payment_events_internal_payment_id_fkey")
                            .from(PaymentEvents::Table, PaymentEvents::InternalPaymentId)
                            .to(Payments::Table, Payments::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payment_events_internal_payment_id_idx")
                    .table(PaymentEvents::Table)
                    .col(PaymentEvents::InternalPaymentId)
                    .col(PaymentEvents::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payment_events_ivpay_payment_id_idx")
                    .table(PaymentEvents::Table)
                    .col(PaymentEvents::IvpayPaymentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string_len(IdempotencyKeys::ClientId, 64))
                    .col(string_len(IdempotencyKeys::IdempotencyKey, 255))
                    .col(text(IdempotencyKeys::Fingerprint))
                    .col(string_len(IdempotencyKeys::InternalPaymentId, 36))
                    .col(big_integer(IdempotencyKeys::CreatedAt))
                    .col(big_integer(IdempotencyKeys::ExpiresAt))
                    // The primary key is the unique index that decides, across instances,
                    // which request owns a key.
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::ClientId)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("idempotency_keys_internal_payment_id_fkey")
                            .from(IdempotencyKeys::Table, IdempotencyKeys::InternalPaymentId)
                            .to(Payments::Table, Payments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_expires_at_idx")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dependents first; dropping a table drops its indexes.
        for table in [
            IdempotencyKeys::Table.into_iden(),
            PaymentEvents::Table.into_iden(),
            Payments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
