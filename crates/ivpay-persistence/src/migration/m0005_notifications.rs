//! Outbound notifications: clients' endpoints, the outbox of notices (one row per notice
//! and endpoint, written in the transaction of the change it announces) and the log of
//! every delivery attempt.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, integer, integer_null, string_len, string_len_null,
    text, text_null,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum NotifyEndpoints {
    Table,
    Id,
    ClientId,
    Url,
    Secrets,
    Filter,
    Description,
    DisabledReason,
    DisabledAt,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    MessageId,
    EndpointId,
    ClientId,
    InternalPaymentId,
    EventType,
    Sequence,
    Body,
    CreatedAt,
    State,
    Attempts,
    RoundAttempts,
    NextAttemptAt,
    LeaseUntil,
    LastStatus,
    LastError,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum NotificationAttempts {
    Table,
    Id,
    NotificationId,
    Number,
    At,
    Status,
    LatencyMs,
    Excerpt,
    Error,
}

/// Names are at most 64 characters (`ClientId`, `EndpointId`).
const NAME_LEN: u32 = 64;

/// Indexes by name and statement: the delivery worker's scan of due notifications (a
/// partial index, so delivered rows cost it nothing), and the delivery log's listings by
/// endpoint and by payment. Each index is written again by every update that changes an
/// indexed column, so there are as few as the log needs: a listing by client alone scans.
/// `lease_until` is in none, so a claim (which sets only it) is a heap-only update on
/// PostgreSQL.
const INDEXES: [(&str, &str); 4] = [
    (
        "notifications_due_idx",
        "CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE state = 'pending'",
    ),
    (
        "notifications_endpoint_created_idx",
        "CREATE INDEX notifications_endpoint_created_idx ON notifications (endpoint_id, created_at, id)",
    ),
    (
        "notifications_payment_idx",
        "CREATE INDEX notifications_payment_idx ON notifications (internal_payment_id)",
    ),
    (
        "notification_attempts_notification_idx",
        "CREATE INDEX notification_attempts_notification_idx ON notification_attempts (notification_id, number)",
    ),
];

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
                    .table(NotifyEndpoints::Table)
                    .col(string_len(NotifyEndpoints::Id, NAME_LEN).primary_key())
                    .col(string_len(NotifyEndpoints::ClientId, NAME_LEN))
                    .col(text(NotifyEndpoints::Url))
                    .col(text(NotifyEndpoints::Secrets))
                    .col(text(NotifyEndpoints::Filter))
                    .col(text_null(NotifyEndpoints::Description))
                    .col(string_len_null(NotifyEndpoints::DisabledReason, 32))
                    .col(big_integer_null(NotifyEndpoints::DisabledAt))
                    .col(big_integer_null(NotifyEndpoints::FailingSince))
                    .col(big_integer(NotifyEndpoints::CreatedAt))
                    .col(big_integer(NotifyEndpoints::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("notify_endpoints_client_idx")
                    .table(NotifyEndpoints::Table)
                    .col(NotifyEndpoints::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(string_len(Notifications::Id, 36).primary_key())
                    .col(string_len(Notifications::MessageId, 64))
                    .col(string_len(Notifications::EndpointId, NAME_LEN))
                    .col(string_len(Notifications::ClientId, NAME_LEN))
                    .col(string_len(Notifications::InternalPaymentId, 36))
                    .col(string_len(Notifications::EventType, 32))
                    .col(big_integer(Notifications::Sequence))
                    .col(text(Notifications::Body))
                    .col(big_integer(Notifications::CreatedAt))
                    .col(string_len(Notifications::State, 16))
                    .col(integer(Notifications::Attempts).default(0))
                    .col(integer(Notifications::RoundAttempts).default(0))
                    .col(big_integer_null(Notifications::NextAttemptAt))
                    .col(big_integer_null(Notifications::LeaseUntil))
                    .col(integer_null(Notifications::LastStatus))
                    .col(text_null(Notifications::LastError))
                    .col(big_integer_null(Notifications::DeliveredAt))
                    .check(Expr::col(Notifications::State).is_in([
                        "pending",
                        "delivered",
                        "failed",
                        "skipped",
                    ]))
                    .foreign_key(
                        ForeignKey::create()
                            .name("notifications_internal_payment_id_fkey")
                            .from(Notifications::Table, Notifications::InternalPaymentId)
                            .to(Payments::Table, Payments::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationAttempts::Table)
                    .col(big_pk_auto(NotificationAttempts::Id))
                    .col(string_len(NotificationAttempts::NotificationId, 36))
                    .col(integer(NotificationAttempts::Number))
                    .col(big_integer(NotificationAttempts::At))
                    .col(integer_null(NotificationAttempts::Status))
                    .col(big_integer(NotificationAttempts::LatencyMs))
                    .col(text_null(NotificationAttempts::Excerpt))
                    .col(text_null(NotificationAttempts::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .name("notification_attempts_notification_id_fkey")
                            .from(
                                NotificationAttempts::Table,
                                NotificationAttempts::NotificationId,
                            )
                            .to(Notifications::Table, Notifications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        for (_, sql) in INDEXES {
            conn.execute_unprepared(sql).await?;
        }
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Room on each page for a claim's new row version beside the old one, so the
            // claim stays heap-only.
            conn.execute_unprepared("ALTER TABLE notifications SET (fillfactor = 70)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NotificationAttempts::Table.into_iden(),
            Notifications::Table.into_iden(),
            NotifyEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
