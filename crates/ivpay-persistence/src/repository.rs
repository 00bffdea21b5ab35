//! The storage ports ([`PaymentStore`], [`WebhookInbox`], [`ReconcileQueue`]) on sea-orm:
//! compare-and-set status changes with their events, idempotency claims decided by the
//! primary key, and leased inbox and reconciliation claims.

use std::sync::Arc;
use std::time::Duration;

use ivpay_domain::{
    ClientId, CreateOutcome, ForeignId, InternalId, Payment, PaymentEvent, PaymentId,
    PaymentStatus, Timestamp,
};
use ivpay_ports::{
    ClaimedPayment, IdempotencyClaim, IdempotencyRecord, InboxEntry, InboxWebhook, IntentInsert,
    LeaseWrite, NoAudience, NoticeAudience, OpenPayments, Page, PageRequest, PaymentFilter,
    PaymentStore, ReconcileQueue, RepositoryError, WebhookInbox,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TryInsertResult,
};

use crate::convert::{
    claim_row, event_row, inbox_row, payment_changes, payment_row, version_to_db,
};
use crate::database::Database;
use crate::entity::{event, idempotency, inbox, notification, payment};
use crate::error::{is_foreign_key_violation, is_unique_violation, unavailable};
use crate::outbox::{notice_rows, notice_rows_of, owed, owed_types};
use crate::sealed::SecretsKeys;

/// Statuses a reconciler still asks IVPAY about.
const NON_FINAL: [&str; 2] = [
    PaymentStatus::Created.as_str(),
    PaymentStatus::Pending.as_str(),
];
const FINAL: [&str; 2] = [
    PaymentStatus::Paid.as_str(),
    PaymentStatus::Timeout.as_str(),
];
/// Create outcomes an operator still has to resolve.
const UNRESOLVED: [&str; 2] = ["unknown", "initiated"];

/// How often [`SeaOrmRepository::insert_intent`] retries when a competing key holder
/// disappears between its insert and our read (a release racing a claim).
const KEY_RACE_RETRIES: usize = 3;

/// The key's holder vanished between the conflict and the read, several times in a row.
#[derive(Debug, thiserror::Error)]
#[error("idempotency key kept changing hands, try again")]
struct KeyContention;

/// [`PaymentStore`], [`WebhookInbox`], [`ReconcileQueue`],
/// [`NotificationStore`](ivpay_ports::NotificationStore) and
/// [`RetentionStore`](ivpay_ports::RetentionStore) on SQLite or PostgreSQL through sea-orm.
///
/// Cheap to clone; clones share the pool of the [`Database`] it was made from.
///
/// ```no_run
/// use ivpay_persistence::{connect, migrate_up, DatabaseOptions, SeaOrmRepository};
/// use ivpay_ports::PaymentStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let db = connect("sqlite://ivpay.db?mode=rwc", &DatabaseOptions::default()).await?;
/// migrate_up(&db).await?;
/// let repo = SeaOrmRepository::new(&db);
/// let id = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d".parse()?;
/// assert!(repo.get(id).await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SeaOrmRepository {
    db: Database,
    /// Who hears about a change: asked inside the write of each one.
    audience: Arc<dyn NoticeAudience>,
    /// Seal endpoint secrets at rest, and open them (`sealed.rs`); `None`: in clear.
    secrets_keys: Option<SecretsKeys>,
}

impl std::fmt::Debug for SeaOrmRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaOrmRepository")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl SeaOrmRepository {
    /// A repository on `db`'s pool. The schema must be migrated ([`crate::migrate_up`]).
    /// Nobody listens to its changes until [`SeaOrmRepository::with_audience`].
    pub fn new(db: &Database) -> Self {
        Self {
            db: db.clone(),
            audience: Arc::new(NoAudience),
            secrets_keys: None,
        }
    }

    /// The same repository, sealing endpoint secrets at rest with the first of `keys` and
    /// opening them with any of them. Run [`SeaOrmRepository::seal_endpoint_secrets`] once
    /// at start, so that rows written in clear or under an older key are sealed anew.
    #[must_use]
    pub fn with_secrets_keys(mut self, keys: SecretsKeys) -> Self {
        self.secrets_keys = Some(keys);
        self
    }

    /// The keys that seal endpoint secrets, if any.
    pub(crate) fn secrets_keys(&self) -> Option<&SecretsKeys> {
        self.secrets_keys.as_ref()
    }

    /// The same repository, announcing each change to every endpoint `audience` names:
    /// in the change's own write, either as notification rows (the outbox) or, for the
    /// create's outcome, as the notices owed, kept on the payment's row until
    /// [`announce_pending`] writes them out. A change nobody listens to is written exactly
    /// as without an audience.
    ///
    /// [`announce_pending`]: ivpay_ports::NotificationStore::announce_pending
    #[must_use]
    pub fn with_audience(mut self, audience: Arc<dyn NoticeAudience>) -> Self {
        self.audience = audience;
        self
    }

    /// Where writes go (on a SQLite file, the one writer connection).
    pub(crate) fn conn(&self) -> &crate::handle::Handle {
        self.db.connection()
    }

    /// Where reads that write nothing go (on a SQLite file, the readers' connections).
    pub(crate) fn reader(&self) -> &crate::handle::Handle {
        self.db.reader()
    }

    /// The database, for a transaction.
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// The notification rows a write of `payment` from `expected_version` announces to
    /// whoever listens.
    fn notices(
        &self,
        payment: &Payment,
        expected_version: u64,
    ) -> Result<Vec<notification::ActiveModel>, RepositoryError> {
        notice_rows(payment, expected_version, self.audience.as_ref())
    }

    /// [`announce_pending`](ivpay_ports::NotificationStore::announce_pending): writes out,
    /// as notification rows, the notices that up to `limit` payments' last changes still
    /// owe (kept on their rows by the writes that made the changes: see
    /// [`SeaOrmRepository::with_audience`]), oldest change first, each with the payment as
    /// that change left it. Answers how many payments it wrote out. The deliverer does this
    /// before each claim; a payment whose next change comes first is written out by that
    /// change's write instead.
    ///
    /// Each payment's rows go in with the clearing of what it owes, only while its row is
    /// still at the version read, so that the rows are written once however many instances
    /// do this at the same time. A row that does not read is quarantined and skipped.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    pub(crate) async fn write_out_owed(&self, limit: u32) -> Result<u64, RepositoryError> {
        if limit == 0 {
            return Ok(0);
        }
        let models = payment::Entity::find()
            .filter(payment::Column::Unannounced.is_not_null())
            .filter(payment::Column::QuarantinedAt.is_null())
            .order_by_asc(payment::Column::UpdatedAt)
            .limit(u64::from(limit))
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        let owing = self
            .readable(
                payment::Entity,
                PAYMENT_QUARANTINE,
                models,
                |m| m.id.clone(),
                |m| {
                    let (payment, rows) = self.owed_notices(m)?;
                    Ok((payment.id(), payment.version(), rows))
                },
            )
            .await?;
        let written = futures_util::future::join_all(
            owing
                .into_iter()
                .map(|(id, version, rows)| self.write_out(id, version, rows)),
        )
        .await;
        let mut count = 0;
        for one in written {
            count += u64::from(one?);
        }
        Ok(count)
    }

    /// Clears what payment `id` owes, if it is still at `version` and owes something, and
    /// inserts `rows` (its notices, possibly none) only if it did: one statement on
    /// PostgreSQL, one piece on the SQLite writer, else a transaction. Whether it wrote.
    async fn write_out(
        &self,
        id: InternalId,
        version: u64,
        rows: Vec<notification::ActiveModel>,
    ) -> Result<bool, RepositoryError> {
        use sea_orm::QueryTrait;
        let mut clear = clear_owed(id, version)?.into_query();
        clear.returning_col(payment::Column::Id);
        let backend = self.conn().get_database_backend();
        let statements = if rows.is_empty() {
            vec![backend.build(&clear)]
        } else if backend == DbBackend::Postgres {
            vec![backend.build(&then_notices(clear, &rows)?)]
        } else {
            let insert = notices_insert(&rows, |select| {
                select.and_where(Expr::cust("changes() = 1"));
            })?;
            vec![backend.build(&clear), backend.build(&insert)]
        };
        if backend == DbBackend::Postgres || statements.len() == 1 {
            let mut returned = 0;
            for statement in statements {
                returned += self
                    .conn()
                    .query_all_raw(statement)
                    .await
                    .map_err(unavailable)?
                    .len();
            }
            // PostgreSQL's one statement returns the notices' ids; the lone clear, its row.
            return Ok(returned == rows.len().max(1));
        }
        if let Some(returned) = self.conn().execute_in_one_piece(statements).await {
            // The clear returns its one row or none; the insert every notice or none.
            return Ok(returned.map_err(unavailable)? == 1 + rows.len() as u64);
        }
        let txn = self.db.begin_write().await.map_err(unavailable)?;
        let wrote = self.announce_in(&txn, id, version).await? == Some(true);
        txn.commit().await.map_err(unavailable)?;
        Ok(wrote)
    }

    /// The payment `model` holds, and the notification rows of what its last change owes
    /// (none when it owes nothing), announcing it as stored.
    fn owed_notices(
        &self,
        model: payment::Model,
    ) -> Result<(Payment, Vec<notification::ActiveModel>), RepositoryError> {
        let kinds = match &model.unannounced {
            Some(owed) => owed_types(&model.id, owed)?,
            None => Vec::new(),
        };
        let payment = Payment::try_from(model)?;
        let rows = notice_rows_of(&payment, &kinds, self.audience.as_ref())?;
        Ok((payment, rows))
    }

    /// In `txn`: if payment `id` is at version `expected` and its last change still owes
    /// notices, writes them out (the rows, from the payment as stored, and the clearing).
    /// `None` when the payment is not at `expected` (or gone); else whether this wrote
    /// them out (`false`: nothing was owed, or another deliverer wrote them out first).
    async fn announce_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        id: InternalId,
        expected: u64,
    ) -> Result<Option<bool>, RepositoryError> {
        let Some(model) = payment::Entity::find_by_id(id.to_string())
            .one(txn)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        if model.version != version_to_db(expected)? {
            return Ok(None);
        }
        if model.unannounced.is_none() {
            return Ok(Some(false));
        }
        let (_, rows) = self.owed_notices(model)?;
        let cleared = clear_owed(id, expected)?
            .exec(txn)
            .await
            .map_err(unavailable)?;
        if cleared.rows_affected != 1 {
            return Ok(Some(false));
        }
        insert_notices(txn, rows).await?;
        Ok(Some(true))
    }

    /// The compare-and-set of [`write_at_version`] in `txn`; if it missed while the
    /// payment is still at `expected`, writes out what its last change still owes
    /// ([`announce_in`]: from the row as stored, the payment as that change left it) and
    /// tries once more (also when another deliverer wrote it out in between). A payment
    /// at another version is a plain miss.
    ///
    /// [`announce_in`]: SeaOrmRepository::announce_in
    async fn write_at_version_announced<C: ConnectionTrait>(
        &self,
        txn: &C,
        row: payment::ActiveModel,
        id: InternalId,
        expected: u64,
        guard: Condition,
    ) -> Result<bool, RepositoryError> {
        if write_at_version(txn, row.clone(), id, expected, guard.clone()).await? {
            return Ok(true);
        }
        if self.announce_in(txn, id, expected).await?.is_none() {
            return Ok(false);
        }
        write_at_version(txn, row, id, expected, guard).await
    }

    /// Gives every payment without an owner (stored before payments had owners) to
    /// `owner`, and answers how many. An operator's step after upgrading a deployment with
    /// one client (`ivpay-app adopt <client>`): until then no client can read those rows.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`]; nothing is written.
    pub async fn adopt_unowned(&self, owner: &ClientId) -> Result<u64, RepositoryError> {
        let result = payment::Entity::update_many()
            .col_expr(payment::Column::OwnerClient, Expr::value(owner.as_str()))
            .filter(payment::Column::OwnerClient.is_null())
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected)
    }

    /// Leases to this claimer up to `limit` rows of `entity` that `due` selects (their
    /// `id`s, in claim order), by moving their `lease` column to `until`, and returns them.
    /// One statement: `UPDATE .. SET lease = until WHERE id IN (due LIMIT n) RETURNING *`.
    /// On PostgreSQL the `due` rows are locked `FOR UPDATE SKIP LOCKED`, so concurrent
    /// claimers skip each other's rows instead of queueing on them; on SQLite the statement
    /// holds the single write lock. Either way each row goes to one claimer.
    pub(crate) async fn lease<E: EntityTrait>(
        &self,
        entity: E,
        (id, lease): (E::Column, E::Column),
        until: Timestamp,
        mut due: SelectStatement,
        limit: u32,
    ) -> Result<Vec<E::Model>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let backend = self.conn().get_database_backend();
        due.limit(u64::from(limit));
        if backend == DbBackend::Postgres {
            due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let mut claim = Query::update();
        claim
            .table(entity)
            .value(lease, until.unix_seconds())
            .and_where(id.in_subquery(due))
            .returning_all();
        E::find()
            .from_raw_sql(backend.build(&claim))
            .all(self.conn())
            .await
            .map_err(unavailable)
    }

    /// After a compare-and-set matched no row: was it the version, or is the row gone?
    pub(crate) async fn conflict_or_missing(
        &self,
        id: InternalId,
        expected: u64,
    ) -> Result<RepositoryError, RepositoryError> {
        let exists = payment::Entity::find_by_id(id.to_string())
            .count(self.reader())
            .await
            .map_err(unavailable)?
            > 0;
        Ok(if exists {
            RepositoryError::VersionConflict { id, expected }
        } else {
            RepositoryError::NotFound(id)
        })
    }

    /// Reads each model of a batch into the domain; a row that does not read is
    /// quarantined (see [`SeaOrmRepository::quarantine`]) and left out, so one bad row
    /// never stops the pass that read it.
    async fn readable<E, M, T>(
        &self,
        entity: E,
        columns: QuarantineColumns<E>,
        models: Vec<M>,
        key: impl Fn(&M) -> String,
        read: impl Fn(M) -> Result<T, RepositoryError>,
    ) -> Result<Vec<T>, RepositoryError>
    where
        E: EntityTrait,
    {
        let mut good = Vec::with_capacity(models.len());
        for model in models {
            let id = key(&model);
            match read(model) {
                Ok(value) => good.push(value),
                Err(RepositoryError::Corrupt(reason)) => {
                    self.quarantine(entity, columns, &id, &reason).await?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(good)
    }

    /// Sets an unreadable row aside: marks it quarantined (with when and why) so no claim
    /// or scan takes it again, logs it once at error with its id, and counts it in
    /// `ivpay_quarantined_rows_total{table}`. An operator fixes the row and releases it by
    /// clearing `quarantined_at` (see `docs/operations.md`).
    async fn quarantine<E: EntityTrait>(
        &self,
        entity: E,
        (id_column, at, why): QuarantineColumns<E>,
        id: &str,
        reason: &str,
    ) -> Result<(), RepositoryError> {
        let table = entity.table_name();
        // An audit time for the operator, not a decision: the wall clock will do.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut mark = Query::update();
        mark.table(entity)
            .value(at, now)
            .value(why, reason)
            .and_where(id_column.eq(id))
            .and_where(at.is_null());
        let backend = self.conn().get_database_backend();
        self.conn()
            .execute_raw(backend.build(&mark))
            .await
            .map_err(unavailable)?;
        tracing::error!(
            table,
            id,
            reason,
            "row quarantined: it no longer reads; fix it and release it (docs/operations.md)"
        );
        metrics::counter!("ivpay_quarantined_rows_total", "table" => table).increment(1);
        Ok(())
    }
}

/// An entity's id, `quarantined_at` and `quarantine_reason` columns.
type QuarantineColumns<E> = (
    <E as EntityTrait>::Column,
    <E as EntityTrait>::Column,
    <E as EntityTrait>::Column,
);

const PAYMENT_QUARANTINE: QuarantineColumns<payment::Entity> = (
    payment::Column::Id,
    payment::Column::QuarantinedAt,
    payment::Column::QuarantineReason,
);

const INBOX_QUARANTINE: QuarantineColumns<inbox::Entity> = (
    inbox::Column::Id,
    inbox::Column::QuarantinedAt,
    inbox::Column::QuarantineReason,
);

/// Maps an error from writing a payment row: a taken unique value is data, the rest is
/// the database being unavailable.
fn payment_write_error(e: DbErr) -> RepositoryError {
    if is_unique_violation(&e) {
        let what = if e.to_string().contains("ivpay_payment_id") {
            "payment_id"
        } else {
            "id"
        };
        RepositoryError::Duplicate { what }
    } else {
        unavailable(e)
    }
}

/// A write fenced by a claim's deadline wrote its row, or found the claim gone.
fn lease_write(rows_affected: u64) -> LeaseWrite {
    if rows_affected > 0 {
        LeaseWrite::Written
    } else {
        LeaseWrite::LeaseLost
    }
}

/// `UPDATE payments SET unannounced = NULL` where payment `id` is at `version` and owes
/// something: the clearing that goes with writing out what it owes.
fn clear_owed(
    id: InternalId,
    version: u64,
) -> Result<sea_orm::UpdateMany<payment::Entity>, RepositoryError> {
    Ok(payment::Entity::update_many()
        .col_expr(
            payment::Column::Unannounced,
            Expr::value(sea_orm::Value::String(None)),
        )
        .filter(payment::Column::Id.eq(id.to_string()))
        .filter(payment::Column::Version.eq(version_to_db(version)?))
        .filter(payment::Column::Unannounced.is_not_null()))
}

/// The set half of compare-and-set: writes `row` over payment `id` if its version is still
/// `expected`, its last change owes no notices (see
/// [`announce_pending`](ivpay_ports::NotificationStore::announce_pending)) and `guard`
/// holds. Whether it did.
async fn write_at_version<C: ConnectionTrait>(
    conn: &C,
    row: payment::ActiveModel,
    id: InternalId,
    expected: u64,
    guard: Condition,
) -> Result<bool, RepositoryError> {
    let done = payment::Entity::update_many()
        .set(row)
        .filter(payment::Column::Id.eq(id.to_string()))
        .filter(payment::Column::Version.eq(version_to_db(expected)?))
        .filter(payment::Column::Unannounced.is_null())
        .filter(guard)
        .exec(conn)
        .await
        .map_err(payment_write_error)?;
    Ok(done.rows_affected == 1)
}

/// The insert of `notices` (at least one) as `INSERT .. SELECT <values> .. UNION ALL ..
/// RETURNING id`, each `SELECT` made conditional by `only_if` (on the update having
/// written), so that a lost compare-and-set inserts nothing.
fn notices_insert(
    notices: &[notification::ActiveModel],
    only_if: impl Fn(&mut SelectStatement),
) -> Result<sea_orm::sea_query::InsertStatement, RepositoryError> {
    use sea_orm::Iterable;

    let columns: Vec<notification::Column> = notification::Column::iter().collect();
    let mut insert = insert_selected(notification::Entity, &columns, notices, |select, _| {
        only_if(select);
    })?;
    insert.returning_col(notification::Column::Id);
    Ok(insert)
}

/// The value `row` binds for `column` in [`insert_selected`] (NULL where it sets none).
pub(crate) fn bound<A: sea_orm::ActiveModelTrait>(
    row: &A,
    column: <A::Entity as EntityTrait>::Column,
) -> sea_orm::Value {
    row.get(column)
        .into_value()
        .unwrap_or(sea_orm::Value::String(None))
}

/// `INSERT INTO <entity> (<columns>) SELECT <values> .. UNION ALL ..`: one `SELECT` of
/// each row's `columns` (at least one row), which `only_if` may make conditional (it is
/// given the row's index), so that a row goes in only if what it depends on holds when
/// the statement runs.
pub(crate) fn insert_selected<E, A>(
    entity: E,
    columns: &[E::Column],
    rows: &[A],
    only_if: impl Fn(&mut SelectStatement, usize),
) -> Result<sea_orm::sea_query::InsertStatement, RepositoryError>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E>,
{
    use sea_orm::sea_query::UnionType;

    let mut selects = rows.iter().enumerate().map(|(i, row)| {
        let mut select = SelectStatement::new();
        for c in columns {
            select.expr(Expr::val(bound(row, *c)));
        }
        only_if(&mut select, i);
        select
    });
    let Some(mut select) = selects.next() else {
        return Err(RepositoryError::Corrupt(format!(
            "an insert into {} without rows",
            entity.table_name()
        )));
    };
    for other in selects {
        select.union(UnionType::All, other);
    }
    let mut insert = Query::insert();
    insert
        .into_table(entity)
        .columns(columns.iter().copied())
        .select_from(select)
        .map_err(|e| {
            RepositoryError::Corrupt(format!("insert into {}: {e}", entity.table_name()))
        })?;
    Ok(insert)
}

/// `WITH changed AS (<update> RETURNING id) INSERT .. SELECT .. FROM changed`: `update`
/// and the insert of `notices` (at least one) as one statement, the notices inserted only
/// if the update wrote.
fn then_notices(
    update: sea_orm::sea_query::UpdateStatement,
    notices: &[notification::ActiveModel],
) -> Result<sea_orm::sea_query::WithQuery, RepositoryError> {
    use sea_orm::sea_query::{CommonTableExpression, WithClause};

    let changed = CommonTableExpression::new()
        .query(update)
        .table_name("changed")
        .to_owned();
    let insert = notices_insert(notices, |select| {
        select.from("changed");
    })?;
    Ok(insert.with(WithClause::new().cte(changed).to_owned()))
}

/// Writes the notification rows of a change, in one statement, inside its transaction.
async fn insert_notices<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<notification::ActiveModel>,
) -> Result<(), RepositoryError> {
    if rows.is_empty() {
        return Ok(());
    }
    notification::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// A statement's SQL text per backend, built by sea-orm on first use and kept, for
/// statements whose text depends only on the backend: a hot read or write then copies the
/// text and binds its values instead of having sea-orm build the statement anew.
struct Kept([std::sync::OnceLock<String>; 2]);

impl Kept {
    const fn new() -> Self {
        Self([std::sync::OnceLock::new(), std::sync::OnceLock::new()])
    }

    /// Where `backend`'s text is kept; `None` for a backend nothing is kept for.
    fn slot(&self, backend: DbBackend) -> Option<&std::sync::OnceLock<String>> {
        match backend {
            DbBackend::Sqlite => Some(&self.0[0]),
            DbBackend::Postgres => Some(&self.0[1]),
            _ => None,
        }
    }

    /// The text on `backend`, built by `build` the first time.
    fn sql(&self, backend: DbBackend, build: impl FnOnce() -> String) -> String {
        match self.slot(backend) {
            Some(slot) => slot.get_or_init(build).clone(),
            None => build(),
        }
    }
}

/// The create path's two writes with their SQL built once per backend and kept: a create
/// then binds its values instead of having sea-orm build the statement anew (an
/// expression tree, the text, a dozen allocations). The text is sea-orm's own, built from
/// the first row; every row of these writes sets the same columns, so it fits them all
/// (`kept_statements_are_the_ones_sea_orm_builds` checks both against sea-orm).
mod kept {
    use ivpay_domain::InternalId;
    use sea_orm::{
        ActiveValue, ColumnTrait, DbBackend, EntityTrait, Iterable, QueryFilter, QueryTrait,
        Statement, Value,
    };

    use super::Kept;
    use crate::entity::payment;

    /// What `row` sets, in the order sea-orm binds it (the columns' order).
    fn set_values(row: &payment::ActiveModel) -> Vec<Value> {
        use sea_orm::ActiveModelTrait;
        payment::Column::iter()
            .filter_map(|c| match row.get(c) {
                ActiveValue::Set(v) => Some(v),
                ActiveValue::Unchanged(_) | ActiveValue::NotSet => None,
            })
            .collect()
    }

    /// The intent's `INSERT` of a whole row ([`crate::convert::payment_row`]).
    pub(super) fn intent_insert(row: &payment::ActiveModel, backend: DbBackend) -> Statement {
        static SQL: Kept = Kept::new();
        let sql = SQL.sql(backend, || {
            payment::Entity::insert(row.clone()).build(backend).sql
        });
        Statement::from_sql_and_values(backend, sql, set_values(row))
    }

    /// The compare-and-set of a write after the insert
    /// ([`crate::convert::payment_changes`] with its schedule and what it owes set):
    /// `UPDATE .. WHERE id AND version AND unannounced IS NULL`, as
    /// [`super::write_at_version`] without a guard.
    pub(super) fn versioned_write(
        row: &payment::ActiveModel,
        id: InternalId,
        expected: i64,
        backend: DbBackend,
    ) -> Statement {
        static SQL: Kept = Kept::new();
        let id = id.to_string();
        let sql = SQL.sql(backend, || {
            payment::Entity::update_many()
                .set(row.clone())
                .filter(payment::Column::Id.eq(id.clone()))
                .filter(payment::Column::Version.eq(expected))
                .filter(payment::Column::Unannounced.is_null())
                .build(backend)
                .sql
        });
        let mut values = set_values(row);
        values.extend([Value::from(id), Value::from(expected)]);
        Statement::from_sql_and_values(backend, sql, values)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ivpay_domain::{AccountId, NewPayment, Payment, Timestamp};
        use sea_orm::ActiveValue::Set;

        fn payment() -> Payment {
            let request = NewPayment::from_fields("12.50", "USD", Some("o-1"), None, None)
                .expect("a valid request");
            Payment::initiate(
                "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
                    .parse()
                    .expect("an id"),
                "shop".parse().expect("a client id"),
                AccountId::default(),
                request,
                Timestamp::from_unix_seconds(1_726_248_776),
            )
        }

        /// [`payment`] after IVPAY declined it: a row with other values.
        fn rejected() -> Payment {
            let mut p = payment();
            p.mark_rejected(
                "declined".to_owned(),
                Timestamp::from_unix_seconds(1_726_248_790),
            )
            .expect("an open outcome");
            p
        }

        #[test]
        fn kept_statements_are_the_ones_sea_orm_builds() {
            // Two different rows per backend: the first builds the kept text, the second
            // reuses it, and both must be what sea-orm would send.
            let first = payment();
            let second = rejected();
            for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
                for p in [&first, &second] {
                    let row = crate::convert::payment_row(p).expect("a row");
                    assert_eq!(
                        intent_insert(&row, backend),
                        payment::Entity::insert(row.clone()).build(backend),
                        "{backend:?}"
                    );
                    let mut changes = crate::convert::payment_changes(p).expect("changes");
                    changes.next_check_at = Set(Some(1_726_248_800));
                    // What the write owes: nothing, then a notice (the same columns set).
                    changes.unannounced =
                        Set(p.notices().first().map(|kind| kind.as_str().to_owned()));
                    let expected = 3;
                    assert_eq!(
                        versioned_write(&changes, p.id(), expected, backend),
                        payment::Entity::update_many()
                            .set(changes.clone())
                            .filter(payment::Column::Id.eq(p.id().to_string()))
                            .filter(payment::Column::Version.eq(expected))
                            .filter(payment::Column::Unannounced.is_null())
                            .build(backend),
                        "{backend:?}"
                    );
                }
            }
        }
    }
}

/// A payment's unique keys, looked up by [`at_most_one`].
#[derive(Clone, Copy)]
enum UniqueKey {
    Id = 0,
    IvpayPaymentId = 1,
}

impl UniqueKey {
    /// The lookup's SQL on `backend`, built by sea-orm on first use and kept: a read then
    /// copies a text instead of building the statement anew (a dozen allocations).
    fn sql(self, backend: DbBackend) -> String {
        use sea_orm::QueryTrait;
        static SQL: [Kept; 2] = [Kept::new(), Kept::new()];
        SQL[self as usize].sql(backend, || {
            let column = match self {
                UniqueKey::Id => payment::Column::Id,
                UniqueKey::IvpayPaymentId => payment::Column::IvpayPaymentId,
            };
            payment::Entity::find()
                .filter(column.eq(String::new()))
                .build(backend)
                .sql
        })
    }
}

/// The one payment whose unique `key` is `value`, if any. Read with the driver's "first
/// row" (which, on SQLite, answers as soon as the row is found, instead of stepping once
/// more to learn there is no other and answering twice) and with no `LIMIT` in the SQL:
/// SQLite plans `LIMIT ?` by the value bound, so a statement with one is prepared again on
/// every run (its cached plan expires with each new binding), which costs a read more than
/// the read itself.
async fn at_most_one(
    conn: &crate::handle::Handle,
    key: UniqueKey,
    value: String,
) -> Result<Option<Payment>, RepositoryError> {
    let backend = conn.get_database_backend();
    let statement = Statement::from_sql_and_values(backend, key.sql(backend), [value.into()]);
    payment::Entity::find()
        .from_raw_sql(statement)
        .one(conn)
        .await
        .map_err(unavailable)?
        .map(Payment::try_from)
        .transpose()
}

fn rows<T, M>(models: Vec<M>) -> Result<Vec<T>, RepositoryError>
where
    T: TryFrom<M, Error = RepositoryError>,
{
    models.into_iter().map(T::try_from).collect()
}

#[async_trait::async_trait]
impl PaymentStore for SeaOrmRepository {
    /// The idempotency claim is decided by the `(client, key)` primary key with
    /// `ON CONFLICT DO NOTHING`, so concurrent requests on one key, on any number of
    /// instances, get exactly one [`IntentInsert::Inserted`]. A record whose `expires_at`
    /// is at or before the payment's `created_at` counts as expired and is replaced.
    async fn insert_intent(
        &self,
        payment: &Payment,
        claim: Option<IdempotencyClaim>,
    ) -> Result<IntentInsert, RepositoryError> {
        let row = payment_row(payment)?;
        let Some(c) = &claim else {
            // One row, one statement: atomic without a transaction around it.
            let backend = self.conn().get_database_backend();
            self.conn()
                .execute_raw(kept::intent_insert(&row, backend))
                .await
                .map_err(payment_write_error)?;
            return Ok(IntentInsert::Inserted);
        };
        for _ in 0..KEY_RACE_RETRIES {
            let txn = self.db.begin_write().await.map_err(unavailable)?;
            idempotency::Entity::delete_many()
                .filter(idempotency::Column::ClientId.eq(c.client.as_str()))
                .filter(idempotency::Column::IdempotencyKey.eq(c.key.as_str()))
                .filter(idempotency::Column::ExpiresAt.lte(payment.created_at().unix_seconds()))
                .exec(&txn)
                .await
                .map_err(unavailable)?;
            payment::Entity::insert(row.clone())
                .exec_without_returning(&txn)
                .await
                .map_err(payment_write_error)?;
            let inserted = idempotency::Entity::insert(claim_row(c, payment))
                .on_conflict_do_nothing_on([
                    idempotency::Column::ClientId,
                    idempotency::Column::IdempotencyKey,
                ])
                .exec_without_returning(&txn)
                .await
                .map_err(unavailable)?;
            if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
                txn.commit().await.map_err(unavailable)?;
                return Ok(IntentInsert::Inserted);
            }
            // Taken. On PostgreSQL the conflicting insert has committed (ON CONFLICT waits
            // for it), so a fresh statement sees it; on SQLite we hold the write lock.
            let existing =
                idempotency::Entity::find_by_id((c.client.to_string(), c.key.to_string()))
                    .one(&txn)
                    .await
                    .map_err(unavailable)?;
            txn.rollback().await.map_err(unavailable)?;
            if let Some(record) = existing {
                return Ok(IntentInsert::KeyTaken(IdempotencyRecord::try_from(record)?));
            }
            // Released between the two statements: try again.
        }
        Err(RepositoryError::Unavailable(Box::new(KeyContention)))
    }

    /// One transaction: the compare-and-set on the payment row, then the delete of the key
    /// records that name the payment.
    async fn save_abandoned(
        &self,
        payment: &Payment,
        expected_version: u64,
    ) -> Result<(), RepositoryError> {
        let mut row = payment_changes(payment)?;
        row.next_check_at = Set(None);
        let id = payment.id();
        let notices = self.notices(payment, expected_version)?;
        let txn = self.db.begin_write().await.map_err(unavailable)?;
        if !self
            .write_at_version_announced(&txn, row, id, expected_version, Condition::all())
            .await?
        {
            txn.rollback().await.map_err(unavailable)?;
            return Err(self.conflict_or_missing(id, expected_version).await?);
        }
        insert_notices(&txn, notices).await?;
        idempotency::Entity::delete_many()
            .filter(idempotency::Column::InternalPaymentId.eq(id.to_string()))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        txn.commit().await.map_err(unavailable)
    }

    /// Also [`RepositoryError::NotFound`] when the payment does not exist.
    async fn save_outcome(
        &self,
        payment: &Payment,
        expected_version: u64,
        next_check_at: Option<Timestamp>,
    ) -> Result<(), RepositoryError> {
        let mut row = payment_changes(payment)?;
        row.next_check_at = Set(next_check_at.map(Timestamp::unix_seconds));
        // The notices this change owes go on the payment's own row, in this one statement
        // (atomic without a transaction); the deliverer writes them out as notification
        // rows (`announce_pending`). On the create's path that is one column and, when
        // someone listens, one index entry, instead of a row per endpoint with its indexes.
        row.unannounced = Set(owed(payment, expected_version, self.audience.as_ref()));
        let id = payment.id();
        let backend = self.conn().get_database_backend();
        let write = kept::versioned_write(&row, id, version_to_db(expected_version)?, backend);
        let done = self
            .conn()
            .execute_raw(write)
            .await
            .map_err(payment_write_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        // Missed: another version, no such payment, or the last change's notices are still
        // owed (an outcome after `unknown`, before the deliverer came by). For the last,
        // write them out and this change in one transaction.
        let txn = self.db.begin_write().await.map_err(unavailable)?;
        if !self
            .write_at_version_announced(&txn, row, id, expected_version, Condition::all())
            .await?
        {
            txn.rollback().await.map_err(unavailable)?;
            return Err(self.conflict_or_missing(id, expected_version).await?);
        }
        txn.commit().await.map_err(unavailable)
    }

    async fn get(&self, id: InternalId) -> Result<Option<Payment>, RepositoryError> {
        at_most_one(self.reader(), UniqueKey::Id, id.to_string()).await
    }

    async fn get_by_payment_id(&self, id: &PaymentId) -> Result<Option<Payment>, RepositoryError> {
        at_most_one(self.reader(), UniqueKey::IvpayPaymentId, id.to_string()).await
    }

    async fn find_by_foreign_id(&self, id: &ForeignId) -> Result<Vec<Payment>, RepositoryError> {
        let models = payment::Entity::find()
            .filter(payment::Column::ForeignId.eq(id.as_str()))
            .order_by_asc(payment::Column::CreatedAt)
            .order_by_asc(payment::Column::Id)
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        rows(models)
    }

    /// A `limit` of zero returns an empty page with no cursor.
    async fn list(
        &self,
        filter: &PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, RepositoryError> {
        if page.limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let mut query = payment::Entity::find();
        if let Some(owner) = &filter.owner {
            query = query.filter(payment::Column::OwnerClient.eq(owner.as_str()));
        }
        if let Some(status) = filter.status {
            query = query.filter(payment::Column::Status.eq(status.as_str()));
        }
        if let Some(foreign_id) = &filter.foreign_id {
            query = query.filter(payment::Column::ForeignId.eq(foreign_id.as_str()));
        }
        if let Some(from) = filter.created_from {
            query = query.filter(payment::Column::CreatedAt.gte(from.unix_seconds()));
        }
        if let Some(to) = filter.created_to {
            query = query.filter(payment::Column::CreatedAt.lt(to.unix_seconds()));
        }
        if filter.unresolved {
            query = query.filter(payment::Column::CreateOutcome.is_in(UNRESOLVED));
        }
        if let Some(after) = page.after {
            // Keyset pagination: strictly "older" than the last row, in (created_at, id)
            // order, so rows inserted meanwhile never shift or repeat later pages.
            let t = after.created_at.unix_seconds();
            query = query.filter(
                Condition::any().add(payment::Column::CreatedAt.lt(t)).add(
                    Condition::all()
                        .add(payment::Column::CreatedAt.eq(t))
                        .add(payment::Column::Id.lt(after.id.to_string())),
                ),
            );
        }
        let models = query
            .order_by_desc(payment::Column::CreatedAt)
            .order_by_desc(payment::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        Ok(Page::from_rows(rows(models)?, page.limit))
    }

    /// The event is stored linked to `payment`. Besides the version, the update refuses
    /// to move a final status to another one, whatever the caller decided.
    async fn update_status(
        &self,
        payment: &Payment,
        expected_version: u64,
        event: &PaymentEvent,
    ) -> Result<(), RepositoryError> {
        let mut row = payment_changes(payment)?;
        if payment.is_final() {
            row.next_check_at = Set(None);
        }
        let id = payment.id();
        let notices = self.notices(payment, expected_version)?;
        let txn = self.db.begin_write().await.map_err(unavailable)?;
        let not_final_or_same = Condition::any()
            .add(payment::Column::Status.is_not_in(FINAL))
            .add(payment::Column::Status.eq(payment.status().as_str()));
        if !self
            .write_at_version_announced(&txn, row, id, expected_version, not_final_or_same)
            .await?
        {
            txn.rollback().await.map_err(unavailable)?;
            return Err(self.conflict_or_missing(id, expected_version).await?);
        }
        event::Entity::insert(event_row(event, Some(id)))
            .exec_without_returning(&txn)
            .await
            .map_err(unavailable)?;
        insert_notices(&txn, notices).await?;
        txn.commit().await.map_err(unavailable)
    }

    /// Also [`RepositoryError::NotFound`] when the event names a payment that does not
    /// exist.
    async fn record_event(&self, event: &PaymentEvent) -> Result<(), RepositoryError> {
        event::Entity::insert(event_row(event, event.payment))
            .exec_without_returning(self.conn())
            .await
            .map_err(|e| match event.payment {
                Some(id) if is_foreign_key_violation(&e) => RepositoryError::NotFound(id),
                _ => unavailable(e),
            })?;
        Ok(())
    }

    async fn events(&self, payment: InternalId) -> Result<Vec<PaymentEvent>, RepositoryError> {
        let models = event::Entity::find()
            .filter(event::Column::InternalPaymentId.eq(payment.to_string()))
            .order_by_asc(event::Column::ReceivedAt)
            .order_by_asc(event::Column::Id)
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        rows(models)
    }

    async fn purge_expired_keys(&self, now: Timestamp, limit: u32) -> Result<u64, RepositoryError> {
        // Bounded per call, so one pass never holds SQLite's write lock for long.
        let mut expired = Query::select();
        expired
            .columns([
                idempotency::Column::ClientId,
                idempotency::Column::IdempotencyKey,
            ])
            .from(idempotency::Entity)
            .and_where(idempotency::Column::ExpiresAt.lte(now.unix_seconds()))
            .limit(u64::from(limit));
        let done = idempotency::Entity::delete_many()
            .filter(
                Expr::tuple([
                    Expr::col(idempotency::Column::ClientId),
                    Expr::col(idempotency::Column::IdempotencyKey),
                ])
                .in_subquery(expired),
            )
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected)
    }

    /// Served by the partial index `payments_unknown_idx`.
    async fn count_unknown(&self) -> Result<u64, RepositoryError> {
        payment::Entity::find()
            .filter(payment::Column::CreateOutcome.eq("unknown"))
            .count(self.reader())
            .await
            .map_err(unavailable)
    }
}

#[async_trait::async_trait]
impl WebhookInbox for SeaOrmRepository {
    async fn store_webhook(
        &self,
        webhook: &InboxWebhook,
        next_attempt_at: Timestamp,
    ) -> Result<(), RepositoryError> {
        inbox::Entity::insert(inbox_row(webhook, next_attempt_at))
            .exec_without_returning(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn claim_webhooks(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxWebhook>, RepositoryError> {
        let mut due = Query::select();
        due.column(inbox::Column::Id)
            .from(inbox::Entity)
            .and_where(inbox::Column::NextAttemptAt.lte(now.unix_seconds()))
            .and_where(inbox::Column::QuarantinedAt.is_null())
            .order_by(inbox::Column::ReceivedAt, Order::Asc)
            .order_by(inbox::Column::Id, Order::Asc);
        let columns = (inbox::Column::Id, inbox::Column::NextAttemptAt);
        let leased = self
            .lease(inbox::Entity, columns, now + lease, due, limit)
            .await?;
        let mut claimed = self
            .readable(
                inbox::Entity,
                INBOX_QUARANTINE,
                leased,
                |m| m.id.clone(),
                InboxWebhook::try_from,
            )
            .await?;
        claimed.sort_by_key(|w| (w.received_at, w.id));
        Ok(claimed)
    }

    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<InboxEntry>, RepositoryError> {
        let models = inbox::Entity::find()
            .filter(inbox::Column::QuarantinedAt.is_null())
            .order_by_asc(inbox::Column::ReceivedAt)
            .order_by_asc(inbox::Column::Id)
            .limit(u64::from(limit))
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        models
            .into_iter()
            .map(|m| {
                let next_attempt_at = Timestamp::from_unix_seconds(m.next_attempt_at);
                Ok(InboxEntry {
                    webhook: InboxWebhook::try_from(m)?,
                    next_attempt_at,
                })
            })
            .collect()
    }

    /// `DELETE .. WHERE id = ? AND next_attempt_at = leased_until`: the claim's deadline
    /// is its token.
    async fn finish_webhook(
        &self,
        id: InternalId,
        leased_until: Timestamp,
    ) -> Result<LeaseWrite, RepositoryError> {
        let done = inbox::Entity::delete_many()
            .filter(inbox::Column::Id.eq(id.to_string()))
            .filter(inbox::Column::NextAttemptAt.eq(leased_until.unix_seconds()))
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(lease_write(done.rows_affected))
    }

    async fn retry_webhook(
        &self,
        id: InternalId,
        leased_until: Timestamp,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<LeaseWrite, RepositoryError> {
        let done = inbox::Entity::update_many()
            .col_expr(
                inbox::Column::NextAttemptAt,
                Expr::value(next_attempt_at.unix_seconds()),
            )
            .col_expr(inbox::Column::Attempts, Expr::value(i64::from(attempts)))
            .filter(inbox::Column::Id.eq(id.to_string()))
            .filter(inbox::Column::NextAttemptAt.eq(leased_until.unix_seconds()))
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        Ok(lease_write(done.rows_affected))
    }
}

#[async_trait::async_trait]
impl ReconcileQueue for SeaOrmRepository {
    /// Served by the partial index `payments_initiated_created_at_idx`. Unreadable rows are
    /// quarantined and left out, so a call may return fewer than `limit` while more wait.
    async fn stale_intents(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Payment>, RepositoryError> {
        let models = payment::Entity::find()
            .filter(payment::Column::CreateOutcome.eq(CreateOutcome::Initiated.as_str()))
            .filter(payment::Column::CreatedAt.lt(created_before.unix_seconds()))
            .filter(payment::Column::QuarantinedAt.is_null())
            .order_by_asc(payment::Column::CreatedAt)
            .order_by_asc(payment::Column::Id)
            .limit(u64::from(limit))
            .all(self.reader())
            .await
            .map_err(unavailable)?;
        self.readable(
            payment::Entity,
            PAYMENT_QUARANTINE,
            models,
            |m| m.id.clone(),
            Payment::try_from,
        )
        .await
    }

    /// One leasing statement (see `SeaOrmRepository::lease`) on `payments.next_check_at`:
    /// a row claimed by one claimer is no longer due for the next. Due rows go oldest
    /// schedule first.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedPayment>, RepositoryError> {
        let mut due = Query::select();
        due.column(payment::Column::Id)
            .from(payment::Entity)
            .and_where(payment::Column::Status.is_in(NON_FINAL))
            .and_where(payment::Column::CreateOutcome.eq("created"))
            .and_where(payment::Column::NextCheckAt.lte(now.unix_seconds()))
            .and_where(payment::Column::QuarantinedAt.is_null())
            .order_by(payment::Column::NextCheckAt, Order::Asc)
            .order_by(payment::Column::Id, Order::Asc);
        let columns = (payment::Column::Id, payment::Column::NextCheckAt);
        let models = self
            .lease(payment::Entity, columns, now + lease, due, limit)
            .await?;
        let mut claimed = self
            .readable(
                payment::Entity,
                PAYMENT_QUARANTINE,
                models,
                |m| m.id.clone(),
                |m| {
                    let attempts = u32::try_from(m.check_attempts).map_err(|_| {
                        RepositoryError::Corrupt(format!(
                            "check attempts of {}: {}",
                            m.id, m.check_attempts
                        ))
                    })?;
                    Ok(ClaimedPayment {
                        payment: Payment::try_from(m)?,
                        attempts,
                    })
                },
            )
            .await?;
        claimed.sort_by_key(|c| (c.payment.created_at(), c.payment.id()));
        Ok(claimed)
    }

    async fn count_quarantined(&self) -> Result<u64, RepositoryError> {
        let payments = payment::Entity::find()
            .filter(payment::Column::QuarantinedAt.is_not_null())
            .count(self.reader())
            .await
            .map_err(unavailable)?;
        let webhooks = inbox::Entity::find()
            .filter(inbox::Column::QuarantinedAt.is_not_null())
            .count(self.reader())
            .await
            .map_err(unavailable)?;
        Ok(payments + webhooks)
    }

    async fn count_open(&self, now: Timestamp) -> Result<OpenPayments, RepositoryError> {
        let open = || {
            payment::Entity::find()
                .filter(payment::Column::CreateOutcome.eq(CreateOutcome::Created.as_str()))
                .filter(payment::Column::Status.is_in(NON_FINAL))
                .filter(payment::Column::QuarantinedAt.is_null())
        };
        let now = now.unix_seconds();
        let hour_ago = now - OpenPayments::HOUR;
        let day_ago = now - OpenPayments::DAY;
        let count = |q: sea_orm::Select<payment::Entity>| async move {
            q.count(self.reader()).await.map_err(unavailable)
        };
        Ok(OpenPayments {
            under_an_hour: count(open().filter(payment::Column::CreatedAt.gt(hour_ago))).await?,
            under_a_day: count(
                open()
                    .filter(payment::Column::CreatedAt.lte(hour_ago))
                    .filter(payment::Column::CreatedAt.gt(day_ago)),
            )
            .await?,
            older: count(open().filter(payment::Column::CreatedAt.lte(day_ago))).await?,
        })
    }

    /// `UPDATE .. WHERE id = ? AND next_check_at = leased_until`: the claim's deadline is
    /// its token. Each claim moves it strictly later (a row is claimable only once its
    /// deadline has passed, and leases are at least a second), so a stale claimer's
    /// deadline never matches again.
    async fn schedule_check(
        &self,
        id: InternalId,
        leased_until: Timestamp,
        next_check_at: Option<Timestamp>,
        attempts: u32,
    ) -> Result<LeaseWrite, RepositoryError> {
        let done = payment::Entity::update_many()
            .col_expr(
                payment::Column::NextCheckAt,
                Expr::value(next_check_at.map(Timestamp::unix_seconds)),
            )
            .col_expr(
                payment::Column::CheckAttempts,
                Expr::value(i64::from(attempts)),
            )
            .filter(payment::Column::Id.eq(id.to_string()))
            .filter(payment::Column::NextCheckAt.eq(leased_until.unix_seconds()))
            .exec(self.conn())
            .await
            .map_err(unavailable)?;
        if done.rows_affected > 0 {
            return Ok(LeaseWrite::Written);
        }
        let exists = payment::Entity::find_by_id(id.to_string())
            .count(self.conn())
            .await
            .map_err(unavailable)?
            > 0;
        if exists {
            Ok(LeaseWrite::LeaseLost)
        } else {
            Err(RepositoryError::NotFound(id))
        }
    }
}
