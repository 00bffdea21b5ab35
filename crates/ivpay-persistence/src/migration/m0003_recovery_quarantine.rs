//! Recovery that one bad row cannot stop: a quarantine mark on the rows the reconciler and
//! the inbox worker read in batches, and partial indexes for the reconciler's scans.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer_null, text_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    QuarantinedAt,
    QuarantineReason,
}

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    QuarantinedAt,
    QuarantineReason,
}

/// Partial indexes, in the syntax both backends share: only the rows each scan wants.
const INDEXES: [(&str, &str); 2] = [
    (
        "payments_initiated_created_at_idx",
        "CREATE INDEX payments_initiated_created_at_idx ON payments (created_at, id) \
         WHERE create_outcome = 'initiated'",
    ),
    (
        "payments_unknown_idx",
        "CREATE INDEX payments_unknown_idx ON payments (id) WHERE create_outcome = 'unknown'",
    ),
];

/// The tables whose rows the reconciler and the inbox worker read in batches, with their
/// two quarantine columns.
fn quarantinable() -> [(DynIden, [DynIden; 2]); 2] {
    [
        (
            Payments::Table.into_iden(),
            [
                Payments::QuarantinedAt.into_iden(),
                Payments::QuarantineReason.into_iden(),
            ],
        ),
        (
            WebhookInbox::Table.into_iden(),
            [
                WebhookInbox::QuarantinedAt.into_iden(),
                WebhookInbox::QuarantineReason.into_iden(),
            ],
        ),
    ]
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, [at, reason]) in quarantinable() {
            // One column per statement: SQLite alters one thing at a time.
            for column in [big_integer_null(at), text_null(reason)] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .add_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        let conn = manager.get_connection();
        for (_, sql) in INDEXES {
            conn.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        for (name, _) in INDEXES {
            conn.execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        for (table, columns) in quarantinable() {
            for column in columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .drop_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
