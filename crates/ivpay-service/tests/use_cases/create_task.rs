//! A create outlives its request: the upstream call and the write of its answer run in a
//! task of their own, and what IVPAY turns away unprocessed is abandoned. (The retried
//! write of the answer is tested next to the code, in `src/create.rs`, with a mocked store.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ivpay_domain::{CreateOutcome, PaymentId, UpstreamPayment};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    CreateError, CreateRequest, Delivery, GatewayError, MockPaymentGateway, PaymentGateway,
    PaymentStore, PaymentUseCases, RemotePayment,
};
use ivpay_service::{PaymentService, ServiceConfig};
use tokio::sync::Notify;

use crate::support::*;

/// A gateway whose create parks until the test releases it, and says when it is parked.
#[derive(Clone, Default)]
struct ParkedGateway {
    entered: Arc<Notify>,
    release: Arc<Notify>,
    creates: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl PaymentGateway for ParkedGateway {
    async fn create(&self, _: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.entered.notify_one();
        self.release.notified().await;
        Ok(upstream("parked1"))
    }
    async fn get(&self, id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        Err(GatewayError::NotFound(id.clone()))
    }
}

/// Every payment stored (a few, in these tests).
async fn stored_payments(repo: &InMemoryRepository) -> Vec<ivpay_domain::Payment> {
    let first_page = ivpay_ports::PageRequest {
        after: None,
        limit: 100,
    };
    repo.list(&Default::default(), first_page)
        .await
        .expect("listed")
        .items
}

#[tokio::test]
async fn a_create_whose_request_is_dropped_still_ends_created_and_replays() {
    let gateway = ParkedGateway::default();
    let repo = InMemoryRepository::new();
    let svc = PaymentService::new(
        repo.clone(),
        gateway.clone(),
        clock(),
        ServiceConfig::default(),
    );
    let tasks = svc.create_tasks();
    {
        // The request is dropped while IVPAY is still thinking (client gone, time limit).
        let request_future = svc.create(client(), key("gone"), request("10"));
        tokio::select! {
            _ = request_future => panic!("the gateway is parked; the request cannot answer"),
            () = gateway.entered.notified() => {}
        }
    }
    assert_eq!(tasks.len(), 1, "the create is still in flight");
    gateway.release.notify_one();
    tasks.close();
    tasks.wait().await;

    let payments = stored_payments(&repo).await;
    let [stored] = payments.as_slice() else {
        panic!("one payment expected, got {payments:?}");
    };
    assert_eq!(stored.outcome(), &CreateOutcome::Created);
    assert_eq!(stored.payment_id().map(PaymentId::as_str), Some("parked1"));

    // The client comes back with its key: the payment, not 409 and then 504.
    let again = svc
        .create(client(), key("gone"), request("10"))
        .await
        .expect("replayed");
    assert!(again.replayed);
    assert_eq!(again.payment.id(), stored.id());
    assert_eq!(gateway.creates.load(Ordering::SeqCst), 1);
}

fn rate_limited(retry_after: Duration) -> GatewayError {
    GatewayError::Unavailable {
        reason: "HTTP 429".into(),
        delivery: Delivery::Refused,
        retry_after: Some(retry_after),
    }
}

#[tokio::test]
async fn a_rate_limited_create_is_abandoned_and_its_key_released() {
    let mut g = MockPaymentGateway::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    g.expect_create().times(2).returning(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(rate_limited(Duration::from_secs(5)))
        } else {
            Ok(upstream("after-429"))
        }
    });
    let (svc, repo) = service(g);
    let err = svc
        .create(client(), key("k429"), request("10"))
        .await
        .expect_err("rate limited");
    assert!(
        matches!(err, CreateError::UpstreamUnavailable { retry_after: Some(d), .. } if d == Duration::from_secs(5)),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(repo.len(), 1);
    assert_eq!(
        repo.get_by_payment_id(&"after-429".parse().expect("id"))
            .await
            .expect("read"),
        None
    );

    // Not unknown: the same key goes upstream again and gets the payment.
    let ok = svc
        .create(client(), key("k429"), request("10"))
        .await
        .expect("created on retry");
    assert!(!ok.replayed);
    assert_eq!(repo.len(), 2);
    let abandoned = stored_payments(&repo)
        .await
        .into_iter()
        .find(|p| p.id() != ok.payment.id())
        .expect("the first intent is kept");
    assert!(
        matches!(abandoned.outcome(), CreateOutcome::Abandoned { reason } if reason.contains("429")),
        "{:?}",
        abandoned.outcome()
    );
}

#[tokio::test]
async fn retry_after_from_ivpay_is_capped_before_it_reaches_the_client() {
    let mut g = MockPaymentGateway::new();
    g.expect_create()
        .times(1)
        .returning(|_| Err(rate_limited(Duration::from_secs(86_400))));
    let (svc, _) = service(g);
    let err = svc
        .create(client(), None, request("10"))
        .await
        .expect_err("rate limited");
    let cap = ServiceConfig::default().max_retry_after;
    assert!(
        matches!(err, CreateError::UpstreamUnavailable { retry_after: Some(d), .. } if d == cap),
        "{err:?}"
    );
}
