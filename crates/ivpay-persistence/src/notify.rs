//! [`NotificationStore`] on sea-orm: endpoints, claims of due notifications (leased, each
//! to one deliverer), attempts recorded with what comes next, and the delivery log.

use std::collections::{BTreeMap, BTreeSet};

use ivpay_domain::{ClientId, Disabled, Endpoint, EndpointId, InternalId, Timestamp};
use ivpay_ports::{
    AfterAttempt, AttemptOutcome, DeliveryAttempt, DeliveryState, LeaseWrite, NoticeBacklog,
    Notification, NotificationFilter, NotificationStore, RepositoryError,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Statement,
};

use crate::entity::{attempt, endpoint, notification, payment};
use crate::error::{corrupt, unavailable};
use crate::outbox::{attempt_row, endpoint_row};
use crate::repository::{SeaOrmRepository, insert_selected};
use crate::sealed::{opened, stored};

const PENDING: &str = DeliveryState::Pending.as_str();

/// States a recovery sends again.
const RECOVERABLE: [&str; 2] = [
    DeliveryState::Failed.as_str(),
    DeliveryState::Skipped.as_str(),
];

fn rows<T, M>(models: Vec<M>) -> Result<Vec<T>, RepositoryError>
where
    T: TryFrom<M, Error = RepositoryError>,
{
    models.into_iter().map(T::try_from).collect()
}

/// What [`SeaOrmRepository::seal_endpoint_secrets`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Endpoints whose secrets were sealed anew: stored in clear, or under another key.
    pub sealed: u64,
    /// Endpoints already sealed under the first key.
    pub kept: u64,
}

impl SeaOrmRepository {
    /// Checks that every endpoint's secrets open, and, with keys set, seals anew those
    /// stored in clear or under a key other than the first: a start-up step, so that a
    /// key put first (or keys set for the first time) covers every row. A row is written
    /// only if it is unchanged since it was read (another instance may be rotating it).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Corrupt`] naming the endpoint whose secrets do not open (sealed,
    /// and no key or none of the keys set opens them); [`RepositoryError::Unavailable`].
    pub async fn seal_endpoint_secrets(&self) -> Result<SealReport, RepositoryError> {
        let models = endpoint::Entity::find()
            .all(self.conn())
            .await
            .map_err(unavailable)?;
        let mut report = SealReport::default();
        for m in models {
            let clear = opened(self.secrets_keys(), &m.id, m.secrets.clone())
                .map_err(|e| corrupt("secrets", &m.id, e))?;
            let Some(keys) = self.secrets_keys() else {
                continue;
            };
            if keys.sealed_by_first(&m.id, &m.secrets) {
                report.kept += 1;
                continue;
            }
            let done = endpoint::Entity::update_many()
                .col_expr(
                    endpoint::Column::Secrets,
                    Expr::value(keys.seal(&m.id, &clear)),
                )
                .filter(endpoint::Column::Id.eq(m.id.as_str()))
                .filter(endpoint::Column::Secrets.eq(m.secrets.as_str()))
                .exec(self.conn())
                .await
                .map_err(unavailable)?;
            report.sealed += done.rows_affected;
        }
        Ok(report)
    }

    /// An endpoint from its row, its secrets opened.
    fn endpoint_of(&self, mut m: endpoint::Model) -> Result<Endpoint, RepositoryError> {
        m.secrets = opened(self.secrets_keys(), &m.id, std::mem::take(&mut m.secrets))
            .map_err(|e| corrupt("secrets", &m.id, e))?;
        Endpoint::try_from(m)
    }
}

#[async_trait::async_trait]
impl NotificationStore for SeaOrmRepository {
    async fn save_endpoint(&self, e: &Endpoint) -> Result<(), RepositoryError> {
        let mut row = endpoint_row(e);
        let clear = e.secrets.expose().join("\n");
        row.secrets = sea_orm::ActiveValue::Set(stored(self.secrets_keys(), e.id.as_str(), clear));
        endpoint::Entity::insert(row)
            .on_conflict(
                OnConflict::column(endpoint::Column::Id)
                    .update_columns([
                        endpoint::Column::ClientId,
                        endpoint::Column::Url,
                        endpoint::Column::Secrets,
                        endpoint::Column::Filter,
                        endpoint::Column::Description,
                        endpoint::Column::DisabledReason,
                        endpoint::Column::DisabledAt,
                        endpoint::Column::FailingSince,
                        endpoint::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Endpoint>, RepositoryError> {
        let found = endpoint::Entity::find_by_id(id.to_string())
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        found
            .into_iter()
            .next()
            .map(|m| self.endpoint_of(m))
            .transpose()
    }

    async fn endpoints(&self, client: Option<ClientId>) -> Result<Vec<Endpoint>, RepositoryError> {
        let mut query = endpoint::Entity::find();
        if let Some(client) = client {
            query = query.filter(endpoint::Column::ClientId.eq(client.as_str()));
        }
        let models = query
            .order_by_asc(endpoint::Column::CreatedAt)
            .order_by_asc(endpoint::Column::Id)
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        models.into_iter().map(|m| self.endpoint_of(m)).collect()
    }

    async fn set_endpoint_failing(
        &self,
        id: &EndpointId,
        since: Option<Timestamp>,
    ) -> Result<(), RepositoryError> {
        let value = match since {
            // Keep an earlier start of the streak.
            Some(t) => Func::coalesce([
                Expr::col(endpoint::Column::FailingSince),
                Expr::value(t.unix_seconds()),
            ])
            .into(),
            None => Expr::value(Option::<i64>::None),
        };
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::FailingSince, value)
            .filter(endpoint::Column::Id.eq(id.as_str()))
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        why: &Disabled,
    ) -> Result<bool, RepositoryError> {
        let done = endpoint::Entity::update_many()
            .col_expr(
                endpoint::Column::DisabledReason,
                Expr::value(why.reason.clone()),
            )
            .col_expr(
                endpoint::Column::DisabledAt,
                Expr::value(why.at.unix_seconds()),
            )
            .col_expr(
                endpoint::Column::UpdatedAt,
                Expr::value(why.at.unix_seconds()),
            )
            .filter(endpoint::Column::Id.eq(id.as_str()))
            .filter(endpoint::Column::DisabledReason.is_null())
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected > 0)
    }

    async fn announce_pending(&self, limit: u32) -> Result<u64, RepositoryError> {
        self.write_out_owed(limit).await
    }

    /// Two counts, each over a partial index (the owed payments', the due notices').
    async fn backlog(&self) -> Result<NoticeBacklog, RepositoryError> {
        let owed = payment::Entity::find()
            .filter(payment::Column::Unannounced.is_not_null())
            .count(self.reader())
            .await
            .map_err(unavailable)?;
        let pending = notification::Entity::find()
            .filter(notification::Column::State.eq(PENDING))
            .count(self.reader())
            .await
            .map_err(unavailable)?;
        Ok(NoticeBacklog { owed, pending })
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>, RepositoryError> {
        let mut due = Query::select();
        due.column(notification::Column::Id)
            .from(notification::Entity)
            .and_where(notification::Column::State.eq(PENDING))
            .and_where(notification::Column::NextAttemptAt.lte(now.unix_seconds()))
            .cond_where(
                Condition::any()
                    .add(notification::Column::LeaseUntil.is_null())
                    .add(notification::Column::LeaseUntil.lte(now.unix_seconds())),
            )
            .order_by(
                notification::Column::NextAttemptAt,
                sea_orm::sea_query::Order::Asc,
            );
        let models = self
            .lease(
                notification::Entity,
                (notification::Column::Id, notification::Column::LeaseUntil),
                until,
                due,
                limit,
            )
            .await?;
        let mut claimed: Vec<Notification> = rows(models)?;
        // RETURNING gives no order: deliver the oldest first.
        claimed.sort_by_key(|n| (n.created_at, n.id));
        Ok(claimed)
    }

    async fn record_attempts(
        &self,
        outcomes: &[AttemptOutcome],
        leased_until: Timestamp,
    ) -> Result<Vec<LeaseWrite>, RepositoryError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        // Outcomes that set the same values share one UPDATE (a healthy pass: one for all
        // its deliveries), each fenced by the lease; RETURNING says which rows it held.
        let mut groups: BTreeMap<Change, Vec<String>> = BTreeMap::new();
        for o in outcomes {
            groups
                .entry(Change::of(o))
                .or_default()
                .push(o.notification.to_string());
        }
        let backend = self.conn().get_database_backend();
        let updates: Vec<Statement> = groups
            .into_iter()
            .map(|(change, ids)| {
                let mut update = change.update().filter(held(ids, leased_until)).into_query();
                update.returning_col(notification::Column::Id);
                backend.build(&update)
            })
            .collect();
        let logged: Vec<&DeliveryAttempt> =
            outcomes.iter().filter_map(|o| o.attempt.as_ref()).collect();
        // SQLite: the attempts first, each inserted only if its notification is still
        // held (the fence the updates use), then the updates, as one piece on the writer:
        // one round trip, and the writer's turn is not held while this task waits.
        let in_one_piece = if backend == sea_orm::DbBackend::Sqlite {
            let mut piece = attempts_insert(&logged, leased_until, backend)?;
            piece.extend(updates.iter().cloned());
            self.conn().query_in_one_piece(piece).await
        } else {
            None
        };
        let written = match in_one_piece {
            Some(returned) => ids(&returned.map_err(unavailable)?)?,
            None => self.record_in_transaction(updates, &logged).await?,
        };
        let writes = outcomes
            .iter()
            .map(|o| {
                if written.contains(&o.notification.to_string()) {
                    LeaseWrite::Written
                } else {
                    LeaseWrite::LeaseLost
                }
            })
            .collect();
        Ok(writes)
    }

    async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
    ) -> Result<Vec<Notification>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = notification::Entity::find();
        if let Some(client) = &filter.client {
            query = query.filter(notification::Column::ClientId.eq(client.as_str()));
        }
        if let Some(endpoint) = &filter.endpoint {
            query = query.filter(notification::Column::EndpointId.eq(endpoint.as_str()));
        }
        if let Some(payment) = filter.payment {
            query = query.filter(notification::Column::InternalPaymentId.eq(payment.to_string()));
        }
        if let Some(state) = filter.state {
            query = query.filter(notification::Column::State.eq(state.as_str()));
        }
        if let Some(before) = filter.before {
            // Keyset paging on (created_at, id), newest first: strictly older than the
            // cursor's row.
            let found = notification::Entity::find_by_id(before.to_string())
                .all(self.reader())
                .await
                .map_err(unavailable)?;
            let Some(cursor) = found.into_iter().next() else {
                return Ok(Vec::new());
            };
            query = query.filter(
                Condition::any()
                    .add(notification::Column::CreatedAt.lt(cursor.created_at))
                    .add(
                        Condition::all()
                            .add(notification::Column::CreatedAt.eq(cursor.created_at))
                            .add(notification::Column::Id.lt(cursor.id)),
                    ),
            );
        }
        let models = query
            .order_by_desc(notification::Column::CreatedAt)
            .order_by_desc(notification::Column::Id)
            .limit(u64::from(limit))
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        rows(models)
    }

    async fn notification(&self, id: InternalId) -> Result<Option<Notification>, RepositoryError> {
        let found = notification::Entity::find_by_id(id.to_string())
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        found
            .into_iter()
            .next()
            .map(Notification::try_from)
            .transpose()
    }

    async fn attempts(&self, id: InternalId) -> Result<Vec<DeliveryAttempt>, RepositoryError> {
        let models = attempt::Entity::find()
            .filter(attempt::Column::NotificationId.eq(id.to_string()))
            .order_by_asc(attempt::Column::Number)
            .order_by_asc(attempt::Column::Id)
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        rows(models)
    }

    async fn redeliver(&self, id: InternalId, now: Timestamp) -> Result<(), RepositoryError> {
        let done = again()
            .col_expr(
                notification::Column::NextAttemptAt,
                Expr::value(now.unix_seconds()),
            )
            .filter(notification::Column::Id.eq(id.to_string()))
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        if done.rows_affected == 0 {
            return Err(RepositoryError::NotFound(id));
        }
        Ok(())
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, RepositoryError> {
        let done = again()
            .col_expr(
                notification::Column::NextAttemptAt,
                Expr::value(now.unix_seconds()),
            )
            .filter(notification::Column::EndpointId.eq(endpoint.as_str()))
            .filter(notification::Column::State.is_in(RECOVERABLE))
            .filter(notification::Column::CreatedAt.gte(since.unix_seconds()))
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected)
    }
}

impl SeaOrmRepository {
    /// [`NotificationStore::record_attempts`] as a transaction (PostgreSQL, or a writer
    /// that cannot run a piece): the updates, then the attempts of the notifications they
    /// wrote. Answers the ids of the notifications written.
    async fn record_in_transaction(
        &self,
        updates: Vec<Statement>,
        logged: &[&DeliveryAttempt],
    ) -> Result<BTreeSet<String>, RepositoryError> {
        let txn = self.database().begin_write().await.map_err(unavailable)?;
        let mut returned = Vec::new();
        for update in updates {
            returned.extend(txn.query_all_raw(update).await.map_err(unavailable)?);
        }
        let written = ids(&returned)?;
        let rows: Vec<attempt::ActiveModel> = logged
            .iter()
            .filter(|a| written.contains(&a.notification.to_string()))
            .map(|a| attempt_row(a))
            .collect();
        if !rows.is_empty() {
            attempt::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(unavailable)?;
        }
        txn.commit().await.map_err(unavailable)?;
        Ok(written)
    }
}

/// The `id`s of rows returned (`RETURNING id`).
fn ids(returned: &[sea_orm::QueryResult]) -> Result<BTreeSet<String>, RepositoryError> {
    returned
        .iter()
        .map(|row| row.try_get::<String>("", "id").map_err(unavailable))
        .collect()
}

/// The notifications among `ids` still held by the claim that leased them until
/// `leased_until`: pending, the lease unchanged.
fn held(ids: impl IntoIterator<Item = String>, leased_until: Timestamp) -> Condition {
    Condition::all()
        .add(notification::Column::Id.is_in(ids))
        .add(notification::Column::State.eq(PENDING))
        .add(notification::Column::LeaseUntil.eq(leased_until.unix_seconds()))
}

/// The most attempts one insert carries: SQLite allows at most 500 terms in a compound
/// `SELECT`.
const ATTEMPTS_PER_INSERT: usize = 256;

/// Inserts of `attempts`, each row only if its notification is still [`held`] by the
/// claim: `INSERT .. SELECT <values> WHERE EXISTS (..) UNION ALL ..`.
fn attempts_insert(
    attempts: &[&DeliveryAttempt],
    leased_until: Timestamp,
    backend: sea_orm::DbBackend,
) -> Result<Vec<Statement>, RepositoryError> {
    use sea_orm::Iterable;

    let columns: Vec<attempt::Column> = attempt::Column::iter()
        .filter(|c| !matches!(c, attempt::Column::Id))
        .collect();
    attempts
        .chunks(ATTEMPTS_PER_INSERT)
        .map(|chunk| {
            let rows: Vec<attempt::ActiveModel> = chunk.iter().map(|a| attempt_row(a)).collect();
            let insert = insert_selected(attempt::Entity, &columns, &rows, |select, i| {
                let mut still_held = Query::select();
                still_held
                    .expr(Expr::val(1))
                    .from(notification::Entity)
                    .cond_where(held([chunk[i].notification.to_string()], leased_until));
                select.and_where(Expr::exists(still_held));
            })?;
            Ok(backend.build(&insert))
        })
        .collect()
}

/// What an attempt's outcome sets on its notification; outcomes with equal changes are
/// written by one statement.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Change {
    state: &'static str,
    next_attempt_at: Option<i64>,
    /// `None` when nothing was sent (a skip): the attempt counts stay.
    attempted: Option<(Option<i32>, Option<String>)>,
    delivered_at: Option<i64>,
}

impl Change {
    fn of(o: &AttemptOutcome) -> Self {
        let (state, next_attempt_at) = match o.next {
            AfterAttempt::Delivered => (DeliveryState::Delivered, None),
            AfterAttempt::RetryAt(t) => (DeliveryState::Pending, Some(t.unix_seconds())),
            AfterAttempt::GiveUp => (DeliveryState::Failed, None),
            AfterAttempt::Skip => (DeliveryState::Skipped, None),
        };
        Self {
            state: state.as_str(),
            next_attempt_at,
            attempted: o
                .attempt
                .as_ref()
                .map(|a| (a.status.map(i32::from), a.error.clone())),
            delivered_at: o
                .attempt
                .as_ref()
                .filter(|_| o.next == AfterAttempt::Delivered)
                .map(|a| a.at.unix_seconds()),
        }
    }

    fn update(&self) -> sea_orm::UpdateMany<notification::Entity> {
        let mut update = notification::Entity::update_many()
            .col_expr(notification::Column::State, Expr::value(self.state))
            .col_expr(
                notification::Column::NextAttemptAt,
                Expr::value(self.next_attempt_at),
            )
            .col_expr(
                notification::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            );
        if let Some((status, error)) = &self.attempted {
            update = update
                .col_expr(
                    notification::Column::Attempts,
                    Expr::col(notification::Column::Attempts).add(1),
                )
                .col_expr(
                    notification::Column::RoundAttempts,
                    Expr::col(notification::Column::RoundAttempts).add(1),
                )
                .col_expr(notification::Column::LastStatus, Expr::value(*status))
                .col_expr(notification::Column::LastError, Expr::value(error.clone()));
        }
        if let Some(at) = self.delivered_at {
            update = update.col_expr(notification::Column::DeliveredAt, Expr::value(at));
        }
        update
    }
}

/// An update that makes notifications pending again in a new round of the schedule.
fn again() -> sea_orm::UpdateMany<notification::Entity> {
    notification::Entity::update_many()
        .col_expr(
            notification::Column::State,
            Expr::value(DeliveryState::Pending.as_str()),
        )
        .col_expr(notification::Column::RoundAttempts, Expr::value(0))
        .col_expr(
            notification::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
}
