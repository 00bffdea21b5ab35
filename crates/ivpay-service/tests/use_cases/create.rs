//! Create: intent first, one upstream call, every failure settled, idempotent replays.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ivpay_domain::{ClientId, CreateOutcome, NewPayment, PaymentId, Timestamp, UpstreamPayment};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    CreateError, CreateRequest, Delivery, GatewayError, MockPaymentGateway, PaymentGateway,
    PaymentStore, PaymentUseCases, RemotePayment, RepositoryError,
};
use ivpay_service::{PaymentService, ServiceConfig};

use crate::support::*;

#[tokio::test]
async fn create_stores_the_payment_and_schedules_its_first_check() {
    let (svc, repo) = service(gateway_creating("p1", 1));
    let reply = svc
        .create(client(), None, request("10.5"))
        .await
        .expect("created");
    assert!(!reply.replayed);
    let stored = repo
        .get(reply.payment.id())
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.outcome(), &CreateOutcome::Created);
    assert_eq!(stored.payment_id().map(PaymentId::as_str), Some("p1"));
    assert_eq!(stored.money().amount().to_string(), "10.50");
    let (next, attempts) = repo.schedule_of(stored.id()).expect("row");
    assert!(next.is_some_and(|t| t > Timestamp::from_unix_seconds(T0)));
    assert_eq!(attempts, 0);
}

#[tokio::test]
async fn sends_our_own_id_upstream_when_the_client_gave_no_foreign_id() {
    let mut g = MockPaymentGateway::new();
    g.expect_create()
        .withf(|req| req.foreign_id.as_str().len() == 36)
        .times(1)
        .returning(|_| Ok(upstream("p2")));
    let (svc, _) = service(g);
    let req = NewPayment::from_fields("1", "EUR", None, None, None).expect("valid");
    let reply = svc.create(client(), None, req).await.expect("created");
    assert_eq!(
        reply.payment.upstream_foreign_id().as_str(),
        reply.payment.id().to_string()
    );
}

#[tokio::test]
async fn upstream_timeout_keeps_the_intent_as_unknown_and_says_retry_may_help() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(1).returning(|_| Err(timeout()));
    let (svc, repo) = service(g);
    let err = svc
        .create(client(), key("k1"), request("10"))
        .await
        .expect_err("unknown");
    let CreateError::OutcomeUnknown { id, reason } = &err else {
        panic!("expected OutcomeUnknown, got {err:?}");
    };
    assert!(err.is_retryable());
    assert!(reason.contains("timed out"), "{reason}");
    let stored = repo.get(*id).await.expect("read").expect("payment kept");
    assert!(matches!(stored.outcome(), CreateOutcome::Unknown { .. }));

    // Retrying with the key never creates a second payment upstream (times(1) above).
    let again = svc
        .create(client(), key("k1"), request("10"))
        .await
        .expect_err("still unknown");
    assert!(matches!(again, CreateError::OutcomeUnknown { id: same, .. } if same == *id));
    assert_eq!(repo.len(), 1);
}

#[tokio::test]
async fn garbage_from_upstream_is_an_unknown_outcome_too() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(1).returning(|_| {
        Err(GatewayError::Protocol {
            detail: "expected JSON, got '<html>'".into(),
        })
    });
    let (svc, _) = service(g);
    let err = svc
        .create(client(), None, request("10"))
        .await
        .expect_err("unknown");
    assert!(matches!(err, CreateError::OutcomeUnknown { .. }));
}

#[tokio::test]
async fn upstream_400_is_stored_as_rejected_and_replayed_with_the_same_message() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(1).returning(|_| {
        Err(GatewayError::Rejected {
            status: 400,
            message: "Currency not supported".into(),
        })
    });
    let (svc, repo) = service(g);
    let err = svc
        .create(client(), key("k2"), request("10"))
        .await
        .expect_err("rejected");
    let CreateError::Rejected { message, id } = err else {
        panic!("expected Rejected")
    };
    assert_eq!(message, "Currency not supported");
    let stored = repo.get(id).await.expect("read").expect("kept");
    assert_eq!(
        stored.outcome(),
        &CreateOutcome::Rejected {
            reason: "Currency not supported".into()
        }
    );
    let replay = svc
        .create(client(), key("k2"), request("10"))
        .await
        .expect_err("replayed");
    assert!(
        matches!(replay, CreateError::Rejected { ref message, .. } if message == "Currency not supported")
    );
    assert!(!replay.is_retryable());
}

#[tokio::test]
async fn upstream_401_is_a_service_fault_that_releases_the_key() {
    let mut g = MockPaymentGateway::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    g.expect_create().times(2).returning(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(GatewayError::Unauthorized)
        } else {
            Ok(upstream("p3"))
        }
    });
    let (svc, repo) = service(g);
    let err = svc
        .create(client(), key("k3"), request("10"))
        .await
        .expect_err("401");
    assert!(matches!(err, CreateError::UpstreamUnauthorized));
    assert!(!err.is_retryable());
    // Once the operator fixes the key, the same idempotency key works.
    let ok = svc
        .create(client(), key("k3"), request("10"))
        .await
        .expect("created on retry");
    assert!(!ok.replayed);
    assert_eq!(
        repo.len(),
        2,
        "the refused intent stays on record as abandoned"
    );
}

#[tokio::test]
async fn a_request_that_never_left_is_retryable_with_the_same_key() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(2).returning(|_| {
        Err(GatewayError::Unavailable {
            reason: "connection refused".into(),
            delivery: Delivery::NotSent,
            retry_after: Some(Duration::from_secs(3)),
        })
    });
    let (svc, _) = service(g);
    for _ in 0..2 {
        let err = svc
            .create(client(), key("k4"), request("10"))
            .await
            .expect_err("down");
        assert!(matches!(
            err,
            CreateError::UpstreamUnavailable { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn same_key_same_request_replays_without_a_second_upstream_call() {
    let (svc, _) = service(gateway_creating("p5", 1));
    let first = svc
        .create(client(), key("k5"), request("10.5"))
        .await
        .expect("created");
    // "10.50" means the same as "10.5": same canonical request.
    let second = svc
        .create(client(), key("k5"), request("10.50"))
        .await
        .expect("replayed");
    assert!(second.replayed);
    assert_eq!(second.payment, first.payment);
}

#[tokio::test]
async fn same_key_different_request_is_refused_without_an_upstream_call() {
    let (svc, _) = service(gateway_creating("p6", 1));
    svc.create(client(), key("k6"), request("10"))
        .await
        .expect("created");
    let err = svc
        .create(client(), key("k6"), request("11"))
        .await
        .expect_err("mismatch");
    assert!(matches!(err, CreateError::IdempotencyMismatch));
}

#[tokio::test]
async fn keys_are_scoped_per_client() {
    let (svc, _) = service(gateway_creating("p7", 2));
    let other: ClientId = "other-shop".parse().expect("valid");
    svc.create(client(), key("k7"), request("10"))
        .await
        .expect("first client");
    // The second client's call reaches upstream; the mock returns the same id, which the
    // repository refuses to link twice: the point is that it was called (times(2)).
    let second = svc.create(other, key("k7"), request("10")).await;
    assert!(matches!(
        second,
        Err(CreateError::NotRecorded {
            source: RepositoryError::Duplicate { .. },
            ..
        })
    ));
}

/// A gateway that takes a while and counts its creates.
#[derive(Clone, Default)]
struct SlowGateway {
    creates: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl PaymentGateway for SlowGateway {
    async fn create(&self, _: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        let n = self.creates.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(upstream(&format!("slow{n}")))
    }
    async fn get(&self, id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        Err(GatewayError::NotFound(id.clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_make_one_upstream_call() {
    let gateway = SlowGateway::default();
    let repo = InMemoryRepository::new();
    let config = ServiceConfig {
        in_flight_poll: Duration::from_millis(5),
        ..ServiceConfig::default()
    };
    let svc = Arc::new(PaymentService::new(
        repo.clone(),
        gateway.clone(),
        ivpay_service::SystemClock,
        config,
    ));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.create(client(), key("race"), request("5")).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let reply = t
            .await
            .expect("task")
            .expect("every request gets the payment");
        ids.insert(reply.payment.id());
    }
    assert_eq!(gateway.creates.load(Ordering::SeqCst), 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(repo.len(), 1);
}

#[tokio::test]
async fn a_request_waiting_too_long_for_the_first_gets_in_flight() {
    let repo = InMemoryRepository::new();
    // A first request that recorded its intent and then died before settling.
    let payment = ivpay_domain::Payment::initiate(
        ivpay_domain::InternalId::from_uuid(uuid_v4_like()),
        "shop".parse().expect("client"),
        ivpay_domain::AccountId::default(),
        request("10"),
        Timestamp::from_unix_seconds(T0),
    );
    let fingerprint_svc = PaymentService::new(
        repo.clone(),
        MockPaymentGateway::new(),
        clock(),
        ServiceConfig {
            in_flight_wait: Duration::from_millis(100),
            in_flight_poll: Duration::from_millis(10),
            ..ServiceConfig::default()
        },
    );
    // Claim the key through a create that cannot reach upstream in time: simplest is to
    // insert the record the way the service does.
    let claim = ivpay_ports::IdempotencyClaim {
        client: client(),
        key: "stuck".parse().expect("valid"),
        fingerprint: sha_of(&request("10")),
        expires_at: Timestamp::from_unix_seconds(T0 + 3600),
    };
    repo.insert_intent(&payment, Some(claim))
        .await
        .expect("stored");
    let err = fingerprint_svc
        .create(client(), key("stuck"), request("10"))
        .await
        .expect_err("in flight");
    assert!(
        matches!(err, CreateError::InFlight { retry_after } if retry_after == Duration::from_secs(1))
    );
}
