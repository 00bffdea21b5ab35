//! [`RetentionStore`] on sea-orm: old rows deleted in bounded batches, oldest first by
//! their time-ordered keys (the events' sequence, the notifications' UUIDv7), so a batch
//! reads the start of the primary key rather than scanning.

use ivpay_domain::Timestamp;
use ivpay_ports::{DeliveryState, RepositoryError, Retained, RetentionStore};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entity::{attempt, event, notification};
use crate::error::unavailable;
use crate::repository::SeaOrmRepository;

/// The ids of the oldest `limit` rows of `what` before `before`.
fn oldest(what: Retained, before: Timestamp, limit: u32) -> SelectStatement {
    let mut select = Query::select();
    match what {
        Retained::Events => {
            select
                .column(event::Column::Id)
                .from(event::Entity)
                .and_where(event::Column::ReceivedAt.lt(before.unix_seconds()))
                .order_by(event::Column::Id, Order::Asc);
        }
        Retained::Notifications => {
            select
                .column(notification::Column::Id)
                .from(notification::Entity)
                .and_where(notification::Column::CreatedAt.lt(before.unix_seconds()))
                .and_where(
                    Expr::col(notification::Column::State).ne(DeliveryState::Pending.as_str()),
                )
                .order_by(notification::Column::Id, Order::Asc);
        }
    }
    select.limit(u64::from(limit));
    select
}

#[async_trait::async_trait]
impl RetentionStore for SeaOrmRepository {
    async fn purge(
        &self,
        what: Retained,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError> {
        if limit == 0 {
            return Ok(0);
        }
        match what {
            Retained::Events => {
                let done = event::Entity::delete_many()
                    .filter(event::Column::Id.in_subquery(oldest(what, before, limit)))
                    .exec(self.conn())
                    .await
                    .map_err(unavailable)?;
                Ok(done.rows_affected)
            }
            Retained::Notifications => {
                let txn = self.database().begin_write().await.map_err(unavailable)?;
                attempt::Entity::delete_many()
                    .filter(
                        attempt::Column::NotificationId.in_subquery(oldest(what, before, limit)),
                    )
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
                let done = notification::Entity::delete_many()
                    .filter(notification::Column::Id.in_subquery(oldest(what, before, limit)))
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
                txn.commit().await.map_err(unavailable)?;
                Ok(done.rows_affected)
            }
        }
    }
}
