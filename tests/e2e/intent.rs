//! "Intent before upstream", seen the way a crash would see it: while IVPAY's create is in
//! flight, the payment and its idempotency key are already committed, visible from another
//! connection pool. An in-memory fake cannot show this (it has no uncommitted state), so it
//! runs on the real repository, on SQLite and PostgreSQL.

use std::time::Duration;

use ivpay_domain::{NewPayment, PaymentId, Timestamp, UpstreamPayment};
use ivpay_persistence::{DatabaseOptions, SeaOrmRepository, connect, migrate_up};
use ivpay_ports::{
    CreateRequest, GatewayError, PageRequest, PaymentFilter, PaymentGateway, PaymentStore,
    PaymentUseCases, RemotePayment,
};
use ivpay_service::{PaymentService, ServiceConfig, SystemClock};
use tokio::sync::{mpsc, oneshot};

use crate::support::{Backend, fresh_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    the_intent_is_committed_before_the_upstream_call(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    the_intent_is_committed_before_the_upstream_call(Backend::Postgres).await;
}

/// IVPAY whose create says when it was called, then waits until the test lets it answer.
struct ParkedCreate {
    called: mpsc::Sender<()>,
    release: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

#[async_trait::async_trait]
impl PaymentGateway for ParkedCreate {
    async fn create(&self, _: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        let _ = self.called.send(()).await;
        if let Some(release) = self.release.lock().await.take() {
            let _ = release.await;
        }
        Ok(UpstreamPayment {
            payment_id: "parked1".parse().expect("valid id"),
            payment_url: "https://pay.example/parked1".parse().expect("valid url"),
            created_at: Timestamp::from_unix_seconds(1_726_248_776),
        })
    }

    async fn get(&self, id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        Err(GatewayError::NotFound(id.clone()))
    }
}

async fn the_intent_is_committed_before_the_upstream_call(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let options = DatabaseOptions::default();
    let service_db = connect(db.url(), &options).await.expect("opens");
    migrate_up(&service_db).await.expect("migrates");
    // Another pool: it sees only what the service's transactions have committed.
    let observer_db = connect(db.url(), &options).await.expect("opens");
    let observer = SeaOrmRepository::new(&observer_db);

    let (called_tx, mut called) = mpsc::channel(1);
    let (release, parked) = oneshot::channel();
    let gateway = ParkedCreate {
        called: called_tx,
        release: tokio::sync::Mutex::new(Some(parked)),
    };
    let service = PaymentService::new(
        SeaOrmRepository::new(&service_db),
        gateway,
        SystemClock,
        ServiceConfig::default(),
    );
    let request = NewPayment::from_fields("10.00", "USD", Some("order-1"), None, None)
        .expect("valid request");
    let create = tokio::spawn(async move {
        service
            .create(
                "shop".parse().expect("client"),
                Some("k-1".parse().expect("key")),
                request,
            )
            .await
    });
    tokio::time::timeout(Duration::from_secs(10), called.recv())
        .await
        .expect("IVPAY was called")
        .expect("gateway alive");

    let all = PageRequest {
        after: None,
        limit: 10,
    };
    let seen = observer
        .list(&PaymentFilter::default(), all)
        .await
        .expect("listed");
    assert_eq!(
        seen.items.len(),
        1,
        "the intent is visible while IVPAY is asked"
    );
    assert_eq!(seen.items[0].outcome().as_str(), "initiated");
    assert_eq!(seen.items[0].money().amount().to_string(), "10.00");

    release.send(()).expect("the create is still parked");
    let reply = create.await.expect("task").expect("created");
    let after = observer
        .get(reply.payment.id())
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(after.outcome().as_str(), "created");
    observer_db.close().await.expect("closes");
}
