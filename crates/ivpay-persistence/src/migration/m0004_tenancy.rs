//! Tenancy: the client that owns each payment, and the IVPAY account each payment and each
//! inbox webhook belongs to.
//!
//! Rows written before this migration have no owner (`owner_client` is `NULL`): no client
//! can read them through the API until an operator assigns them (`ivpay-app adopt
//! <client>`, see `docs/operations.md`), because guessing an owner could show one client's
//! payments to another. They and their inbox webhooks belong to the default account, the
//! only one there was.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, string_len_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    OwnerClient,
    Account,
}

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    Account,
}

/// The names are at most 64 characters (`ClientId`, `AccountId`).
const NAME_LEN: u32 = 64;

/// What the listing of one client's payments scans.
const OWNER_INDEX: (&str, &str) = (
    "payments_owner_created_at_idx",
    "CREATE INDEX payments_owner_created_at_idx ON payments (owner_client, created_at, id)",
);

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            (
                Payments::Table.into_iden(),
                string_len_null(Payments::OwnerClient, NAME_LEN),
            ),
            (
                Payments::Table.into_iden(),
                string_len(Payments::Account, NAME_LEN)
                    .default("default")
                    .to_owned(),
            ),
            (
                WebhookInbox::Table.into_iden(),
                string_len(WebhookInbox::Account, NAME_LEN)
                    .default("default")
                    .to_owned(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(OWNER_INDEX.1)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX {}", OWNER_INDEX.0))
            .await?;
        let columns = [
            (
                Payments::Table.into_iden(),
                Payments::OwnerClient.into_iden(),
            ),
            (Payments::Table.into_iden(), Payments::Account.into_iden()),
            (
                WebhookInbox::Table.into_iden(),
                WebhookInbox::Account.into_iden(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
