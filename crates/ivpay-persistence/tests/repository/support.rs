//! The backends for the suite (databases, and the in-memory fake), and small builders for
//! payments and events.

use std::future::Future;
use std::time::Duration;

use ivpay_domain::{
    AccountId, ClientId, EventOutcome, Evidence, InternalId, NewPayment, Payment, PaymentEvent,
    PaymentStatus, ReportedStatus, Timestamp, UpdateSource, UpstreamPayment,
};
use ivpay_persistence::testing::TestDatabase;
use ivpay_persistence::{Database, DatabaseOptions, SeaOrmRepository, connect, migrate_up};
use ivpay_ports::{PaymentStore, ReconcileQueue, WebhookInbox};
use sea_orm::ConnectionTrait;

/// What a behaviour needs of a backend: every storage port, on a handle that tasks share.
/// `SeaOrmRepository` (SQLite, PostgreSQL) and the in-memory fake both qualify.
pub(crate) trait Storage:
    PaymentStore + WebhookInbox + ReconcileQueue + Clone + Send + Sync + 'static
{
}

impl<T> Storage for T where
    T: PaymentStore + WebhookInbox + ReconcileQueue + Clone + Send + Sync + 'static
{
}

/// A migrated database for one test.
#[derive(Clone, Debug)]
pub(crate) struct TestDb {
    pub(crate) db: Database,
    pub(crate) repo: SeaOrmRepository,
    /// Where it is, for tests that reach under the repository (corrupting a row).
    pub(crate) url: String,
}

impl TestDb {
    async fn open(url: String) -> Self {
        let options = DatabaseOptions {
            max_connections: const { std::num::NonZeroU32::new(8).expect("not zero") },
            ..DatabaseOptions::default()
        };
        let db = connect(&url, &options).await.expect("test database opens");
        migrate_up(&db).await.expect("migrations apply");
        let repo = SeaOrmRepository::new(&db);
        Self { db, repo, url }
    }

    /// Runs raw SQL on a separate connection, bypassing the repository.
    pub(crate) async fn execute_raw(&self, sql: &str) {
        let conn = sea_orm::Database::connect(self.url.as_str())
            .await
            .expect("raw connection opens");
        conn.execute_unprepared(sql).await.expect("raw SQL runs");
        conn.close().await.expect("raw connection closes");
    }

    /// Reads the first column of every row `sql` returns, as text (`NULL` as `None`), on a
    /// separate connection.
    pub(crate) async fn query_texts(&self, sql: &str) -> Vec<Option<String>> {
        let conn = sea_orm::Database::connect(self.url.as_str())
            .await
            .expect("raw connection opens");
        let backend = conn.get_database_backend();
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_string(backend, sql))
            .await
            .expect("raw SQL runs");
        conn.close().await.expect("raw connection closes");
        rows.iter()
            .map(|r| {
                r.try_get_by_index::<Option<String>>(0)
                    .expect("a text column")
            })
            .collect()
    }
}

/// Runs `behaviour` on a fresh SQLite file in a temporary directory.
#[cfg(feature = "sqlite")]
pub(crate) async fn on_sqlite<F, Fut>(behaviour: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let file = TestDatabase::sqlite();
    let t = TestDb::open(file.url().to_owned()).await;
    behaviour(t.clone()).await;
    t.db.close().await.expect("pool closes");
}

/// Runs `behaviour` on a fresh PostgreSQL database, or skips (saying so) when no server
/// is configured, or fails when one is required.
#[cfg(feature = "postgres")]
pub(crate) async fn on_postgres<F, Fut>(test: &str, behaviour: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(database) = TestDatabase::postgres("ivpay_t_", &format!("postgres::{test}")).await
    else {
        return;
    };
    let t = TestDb::open(database.url().to_owned()).await;
    behaviour(t.clone()).await;
    t.db.close().await.expect("pool closes");
    database.drop_database().await;
}

/// A fixed id from a number, so tests can name payments.
pub(crate) fn id(n: u128) -> InternalId {
    InternalId::from_uuid(uuid::Uuid::from_u128(n))
}

pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds)
}

/// A new intent for `amount` USD created at `created`.
pub(crate) fn intent(n: u128, amount: &str, created: i64) -> Payment {
    intent_with(n, amount, "USD", None, created)
}

pub(crate) fn intent_with(
    n: u128,
    amount: &str,
    currency: &str,
    foreign_id: Option<&str>,
    created: i64,
) -> Payment {
    let request =
        NewPayment::from_fields(amount, currency, foreign_id, None, None).expect("valid request");
    Payment::initiate(id(n), shop(), AccountId::default(), request, at(created))
}

/// The ids of the first page (up to 100) `filter` lists, newest first.
pub(crate) async fn listed_ids(
    repo: &impl PaymentStore,
    filter: ivpay_ports::PaymentFilter,
) -> Vec<InternalId> {
    let first = ivpay_ports::PageRequest {
        after: None,
        limit: 100,
    };
    repo.list(&filter, first)
        .await
        .expect("listed")
        .items
        .iter()
        .map(Payment::id)
        .collect()
}

/// The client every test payment belongs to.
pub(crate) fn shop() -> ClientId {
    "shop".parse().expect("client")
}

/// What IVPAY answers for payment `n`.
pub(crate) fn upstream(n: u128, created: i64) -> UpstreamPayment {
    UpstreamPayment {
        payment_id: format!("ivpay{n}").parse().expect("valid IVPAY id"),
        payment_url: format!("https://pay.example/ivpay{n}")
            .parse()
            .expect("valid URL"),
        created_at: at(created),
    }
}

/// Stores payment `n` as created upstream, with its first check at `next_check`.
pub(crate) async fn created_upstream(
    repo: &impl PaymentStore,
    n: u128,
    created: i64,
    next_check: Option<i64>,
) -> Payment {
    let mut p = intent(n, "10.00", created);
    repo.insert_intent(&p, None).await.expect("intent stored");
    let read = p.version();
    p.mark_created(upstream(n, created), at(created))
        .expect("initiated settles");
    repo.save_outcome(&p, read, next_check.map(at))
        .await
        .expect("outcome stored");
    p
}

/// The event for applying `to` to `p` (before it was applied: `from` is its status).
pub(crate) fn applied_event(p: &Payment, to: PaymentStatus, evidence: String) -> PaymentEvent {
    PaymentEvent {
        payment: Some(p.id()),
        payment_id: p
            .payment_id()
            .cloned()
            .unwrap_or_else(|| "unlinked".parse().expect("valid IVPAY id")),
        source: UpdateSource::Poll,
        from: Some(p.status()),
        to: ReportedStatus::Known(to),
        outcome: EventOutcome::Applied,
        evidence: Some(Evidence::from_confirmation(evidence)),
        received_at: at(2_000),
    }
}

/// Applies `to` and stores it; panics unless the transition applies and the write wins.
pub(crate) async fn move_to(
    repo: &impl PaymentStore,
    p: &mut Payment,
    to: PaymentStatus,
    now: i64,
) {
    let event = applied_event(p, to, format!("move to {to}"));
    let read = p.version();
    assert_eq!(
        p.apply_status(to, Some(at(now)), at(now)),
        ivpay_domain::Transition::Apply
    );
    repo.update_status(p, read, &event)
        .await
        .expect("status stored");
}

/// The lease used when a test claims.
pub(crate) const LEASE: Duration = Duration::from_secs(60);
