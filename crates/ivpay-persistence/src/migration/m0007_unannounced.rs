//! `payments.unannounced`: the notices a payment's last change owes its listeners, kept on
//! the payment's own row by the write that makes the change, until the deliverer writes
//! them out as notification rows. A partial index finds the rows that owe some: it holds
//! an entry only while one is owed, so a payment nobody listens to costs it nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::text_null;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    Unannounced,
}

const INDEX: &str = "payments_unannounced_idx";

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .add_column(text_null(Payments::Unannounced))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX payments_unannounced_idx ON payments (updated_at) \
                 WHERE unannounced IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Payments::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .drop_column(Payments::Unannounced)
                    .to_owned(),
            )
            .await
    }
}
