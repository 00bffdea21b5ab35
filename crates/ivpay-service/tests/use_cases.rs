//! The use cases against mocked and in-memory ports: no network, no database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ivpay_domain::{
    ClientId, CreateOutcome, EventOutcome, Evidence, IdempotencyKey, NewPayment, PaymentId,
    PaymentStatus, RefusalReason, ReportedStatus, StatusUpdate, Timestamp, UpdateSource,
    UpstreamPayment,
};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    CreateError, CreateRequest, Delivery, GatewayError, MockPaymentGateway, PaymentGateway,
    PaymentRef, PaymentStore, PaymentUseCases, RemotePayment, RepositoryError, WebhookReceipt,
};
use ivpay_service::{ManualClock, PaymentService, ServiceConfig};

const T0: i64 = 1_726_248_770;

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_seconds(T0))
}

fn client() -> ClientId {
    "shop".parse().expect("valid client")
}

fn key(k: &str) -> Option<IdempotencyKey> {
    Some(k.parse().expect("valid key"))
}

fn request(amount: &str) -> NewPayment {
    NewPayment::from_fields(amount, "USD", Some("order-1"), None, None).expect("valid request")
}

fn upstream(id: &str) -> UpstreamPayment {
    UpstreamPayment {
        payment_id: id.parse().expect("valid id"),
        payment_url: format!("https://pay.example/{id}")
            .parse()
            .expect("valid url"),
        created_at: Timestamp::from_unix_seconds(T0 + 1),
    }
}

fn remote(id: &str, status: &str) -> RemotePayment {
    RemotePayment {
        payment_id: id.parse().expect("valid id"),
        foreign_id: None,
        status: ReportedStatus::from(status),
        processed_at: Some(Timestamp::from_unix_seconds(T0 + 9)),
        raw: format!(r#"{{"success":true,"data":{{"payment_id":"{id}","status":"{status}"}}}}"#),
    }
}

fn timeout() -> GatewayError {
    GatewayError::Unavailable {
        reason: "request timed out".into(),
        delivery: Delivery::MaybeSent,
        retry_after: None,
    }
}

type Service<G> = PaymentService<InMemoryRepository, G, ManualClock>;

fn service<G: PaymentGateway>(gateway: G) -> (Service<G>, InMemoryRepository) {
    let repo = InMemoryRepository::new();
    let svc = PaymentService::new(repo.clone(), gateway, clock(), ServiceConfig::default());
    (svc, repo)
}

fn gateway_creating(id: &'static str, times: usize) -> MockPaymentGateway {
    let mut g = MockPaymentGateway::new();
    g.expect_create()
        .times(times)
        .returning(move |_| Ok(upstream(id)));
    g
}

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
        Err(CreateError::Storage(RepositoryError::Duplicate { .. }))
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

fn uuid_v4_like() -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0192_e4f5_7c3a_7b1e_9d2a_5f6e_7a8b_9c0d)
}

fn sha_of(req: &NewPayment) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(req.canonical().as_bytes()))
}

async fn created(
    svc: &Service<MockPaymentGateway>,
    repo: &InMemoryRepository,
) -> ivpay_domain::Payment {
    let reply = svc
        .create(client(), None, request("10"))
        .await
        .expect("created");
    repo.get(reply.payment.id())
        .await
        .expect("read")
        .expect("stored")
}

fn update(id: &str, status: &str, source: UpdateSource) -> StatusUpdate {
    StatusUpdate {
        payment_id: id.parse().expect("valid"),
        status: ReportedStatus::from(status),
        processed_at: Some(Timestamp::from_unix_seconds(T0 + 5)),
        source,
        evidence: Some(Evidence::from_confirmation(format!(
            "{{\"status\":\"{status}\"}}"
        ))),
    }
}

#[tokio::test]
async fn duplicate_and_out_of_order_updates_never_reverse_a_final_state() {
    let (svc, repo) = service(gateway_creating("p8", 1));
    let p = created(&svc, &repo).await;
    let steps = [
        ("PAID", EventOutcome::Applied),
        ("PAID", EventOutcome::Duplicate),
        (
            "PENDING",
            EventOutcome::Refused(RefusalReason::AlreadyFinal),
        ),
        (
            "TIMEOUT",
            EventOutcome::Refused(RefusalReason::ConflictingFinal),
        ),
        (
            "CREATED",
            EventOutcome::Refused(RefusalReason::AlreadyFinal),
        ),
    ];
    for (status, expected) in steps {
        let got = svc
            .apply_update(update("p8", status, UpdateSource::Webhook))
            .await
            .expect("handled");
        assert_eq!(got, expected, "{status}");
    }
    let after = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(after.status(), PaymentStatus::Paid);
    assert_eq!(
        after.version(),
        p.version() + 1,
        "only the first PAID changed it"
    );
    let events = svc
        .events(PaymentRef::Internal(p.id()))
        .await
        .expect("history");
    assert_eq!(
        events.len(),
        5,
        "every update is on record with its evidence"
    );
    assert!(events.iter().all(|e| e.evidence.is_some()));
    assert_eq!(
        repo.schedule_of(p.id()).map(|s| s.0),
        Some(None),
        "final leaves the schedule"
    );
}

#[tokio::test]
async fn update_for_an_unknown_payment_is_recorded_not_failed() {
    let (svc, repo) = service(MockPaymentGateway::new());
    let got = svc
        .apply_update(update("nobody", "PAID", UpdateSource::Webhook))
        .await
        .expect("handled");
    assert_eq!(got, EventOutcome::UnknownPayment);
    let events = repo.all_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payment, None);
    assert_eq!(events[0].payment_id.as_str(), "nobody");
}

#[tokio::test]
async fn an_unrecognized_status_is_recorded_and_changes_nothing() {
    let (svc, repo) = service(gateway_creating("p9", 1));
    let p = created(&svc, &repo).await;
    let got = svc
        .apply_update(update("p9", "CANCELED", UpdateSource::Poll))
        .await
        .expect("handled");
    assert_eq!(got, EventOutcome::UnrecognizedStatus);
    let after = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(after.status(), PaymentStatus::Created);
    assert_eq!(
        repo.all_events()[0].to,
        ReportedStatus::Unknown("CANCELED".into())
    );
}

#[tokio::test]
async fn a_webhook_is_a_hint_and_get_decides() {
    let mut g = gateway_creating("p11", 1);
    // The webhook claims PAID; IVPAY's GET says PENDING. PENDING is what gets applied.
    g.expect_get()
        .times(1)
        .returning(|_| Ok(remote("p11", "PENDING")));
    let (svc, repo) = service(g);
    let p = created(&svc, &repo).await;
    let outcome = svc
        .receive_webhook(hint(
            "p11",
            Some("PAID"),
            r#"{"payment_id":"p11","status":"PAID"}"#,
        ))
        .await
        .expect("confirmed");
    assert_eq!(outcome, WebhookReceipt::Processed(EventOutcome::Applied));
    assert!(
        repo.inbox().is_empty(),
        "a processed webhook leaves the inbox"
    );
    let after = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(after.status(), PaymentStatus::Pending);
    let event = &repo.all_events()[0];
    assert_eq!(event.source, UpdateSource::Webhook);
    let evidence = event.evidence.as_ref().expect("kept");
    assert_eq!(
        evidence.webhook(),
        Some(r#"{"payment_id":"p11","status":"PAID"}"#),
        "the webhook's body, verbatim"
    );
    assert_eq!(
        evidence.confirmation(),
        Some(remote("p11", "PENDING").raw.as_str()),
        "IVPAY's answer, verbatim"
    );
}

fn hint(id: &str, status: Option<&str>, raw: &str) -> ivpay_domain::WebhookHint {
    ivpay_domain::WebhookHint {
        payment_id: id.parse().expect("valid"),
        status: status.map(ReportedStatus::from),
        raw: raw.into(),
    }
}

#[tokio::test]
async fn a_hint_claiming_the_current_status_is_a_duplicate_without_a_get() {
    // expect_get is not set: any GET would fail the test.
    let (svc, repo) = service(gateway_creating("p14", 1));
    let p = created(&svc, &repo).await;
    let outcome = svc
        .receive_webhook(hint(
            "p14",
            Some("CREATED"),
            r#"{"payment_id":"p14","status":"CREATED"}"#,
        ))
        .await
        .expect("handled");
    assert_eq!(outcome, WebhookReceipt::Processed(EventOutcome::Duplicate));
    let events = repo.all_events();
    assert_eq!(events.len(), 1, "the duplicate is on record");
    assert_eq!(events[0].payment, Some(p.id()));
    let evidence = events[0].evidence.as_ref().expect("kept");
    assert_eq!(
        evidence.webhook(),
        Some(r#"{"payment_id":"p14","status":"CREATED"}"#)
    );
    assert_eq!(evidence.confirmation(), None, "IVPAY was not asked");
}

#[tokio::test]
async fn a_webhook_ivpay_cannot_confirm_is_kept_and_applied_later() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = gateway_creating("p12", 1);
    let ivpay_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = ivpay_up.clone();
    g.expect_get().returning(move |_| {
        if up.load(Ordering::SeqCst) {
            Ok(remote("p12", "PAID"))
        } else {
            Err(timeout())
        }
    });
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), ServiceConfig::default());
    let p = created(&svc, &repo).await;
    let body = r#"{"payment_id":"p12","status":"PAID"}"#;
    let receipt = svc
        .receive_webhook(hint("p12", Some("PAID"), body))
        .await
        .expect("kept even though IVPAY is down");
    assert_eq!(receipt, WebhookReceipt::Queued);
    let kept = repo.inbox();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].hint.raw, body, "the raw body is kept verbatim");
    assert_eq!(kept[0].attempts, 1);
    assert_eq!(
        repo.get(p.id())
            .await
            .expect("read")
            .expect("stored")
            .status(),
        PaymentStatus::Created
    );

    // IVPAY comes back; the reconciler finds the webhook due and applies what GET says.
    ivpay_up.store(true, Ordering::SeqCst);
    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(report.webhooks_processed, 1);
    assert!(repo.inbox().is_empty());
    assert_eq!(
        repo.get(p.id())
            .await
            .expect("read")
            .expect("stored")
            .status(),
        PaymentStatus::Paid
    );
}

#[tokio::test]
async fn a_webhook_for_a_payment_ivpay_does_not_know_is_recorded_and_dropped() {
    let mut g = MockPaymentGateway::new();
    g.expect_get()
        .times(1)
        .returning(|id| Err(GatewayError::NotFound(id.clone())));
    let (svc, repo) = service(g);
    let receipt = svc
        .receive_webhook(hint("forged", Some("PAID"), r#"{"payment_id":"forged"}"#))
        .await
        .expect("handled");
    assert_eq!(
        receipt,
        WebhookReceipt::Processed(EventOutcome::UnknownPayment)
    );
    assert!(repo.inbox().is_empty());
    let events = repo.all_events();
    assert_eq!(events.len(), 1);
    let evidence = events[0].evidence.as_ref().expect("kept");
    assert_eq!(evidence.webhook(), Some(r#"{"payment_id":"forged"}"#));
    assert_eq!(
        (evidence.confirmation(), evidence.note()),
        (None, Some("not found at IVPAY"))
    );
}

#[tokio::test]
async fn get_with_refresh_applies_what_ivpay_says() {
    let mut g = gateway_creating("p13", 1);
    g.expect_get()
        .times(1)
        .returning(|_| Ok(remote("p13", "PAID")));
    let (svc, repo) = service(g);
    let p = created(&svc, &repo).await;
    let plain = svc
        .get(PaymentRef::Internal(p.id()), false)
        .await
        .expect("found");
    assert_eq!(plain.status(), PaymentStatus::Created);
    let fresh = svc
        .get(PaymentRef::Ivpay("p13".parse().expect("valid")), true)
        .await
        .expect("refreshed");
    assert_eq!(fresh.status(), PaymentStatus::Paid);
    // Final now: a second refresh does not call IVPAY again (times(1)).
    let again = svc
        .get(PaymentRef::Internal(p.id()), true)
        .await
        .expect("found");
    assert_eq!(again.status(), PaymentStatus::Paid);
    assert!(matches!(
        svc.get(PaymentRef::Ivpay("missing".parse().expect("valid")), false)
            .await,
        Err(ivpay_ports::QueryError::NotFound(_))
    ));
}

#[tokio::test]
async fn reconcile_polls_due_payments_and_backs_off_the_rest() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = MockPaymentGateway::new();
    let n = Arc::new(AtomicUsize::new(0));
    let counter = n.clone();
    g.expect_create().times(3).returning(move |_| {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        Ok(upstream(&format!("r{i}")))
    });
    g.expect_get().returning(|id| match id.as_str() {
        "r0" => Ok(remote("r0", "PAID")),
        "r1" => Ok(remote("r1", "PENDING")),
        _ => Err(timeout()),
    });
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), ServiceConfig::default());
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            svc.create(client(), None, request("10"))
                .await
                .expect("created")
                .payment
                .id(),
        );
    }
    let nothing_due = svc.reconcile_once().await.expect("pass");
    assert_eq!(nothing_due.claimed, 0, "first checks are in the future");

    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(
        (
            report.claimed,
            report.applied,
            report.finalized,
            report.failed
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(
        repo.schedule_of(ids[0]),
        Some((None, 1)),
        "paid: no more checks"
    );
    let (next1, attempts1) = repo.schedule_of(ids[1]).expect("row");
    assert_eq!(attempts1, 1);
    assert!(
        next1.is_some_and(|t| t > clk_now(&clk)),
        "pending: checked again later"
    );
    assert!(
        repo.schedule_of(ids[2]).expect("row").0.is_some(),
        "failed: retried later"
    );
    let events = repo.all_events();
    assert!(events.iter().all(|e| e.source == UpdateSource::Poll));

    let right_after = svc.reconcile_once().await.expect("pass");
    assert_eq!(right_after.claimed, 0, "back-off holds");
}

fn clk_now(c: &ManualClock) -> Timestamp {
    use ivpay_ports::Clock;
    c.now()
}

#[tokio::test]
async fn an_intent_left_initiated_by_a_dead_request_is_settled_as_unknown() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let svc = PaymentService::new(
        repo.clone(),
        MockPaymentGateway::new(),
        clk.clone(),
        ServiceConfig {
            in_flight_wait: Duration::from_millis(20),
            in_flight_poll: Duration::from_millis(10),
            ..ServiceConfig::default()
        },
    );
    // A request recorded its intent and key, then the process died before IVPAY answered.
    let stuck = ivpay_domain::Payment::initiate(
        ivpay_domain::InternalId::from_uuid(uuid_v4_like()),
        request("10"),
        Timestamp::from_unix_seconds(T0),
    );
    let claim = ivpay_ports::IdempotencyClaim {
        client: client(),
        key: "died".parse().expect("valid"),
        fingerprint: sha_of(&request("10")),
        expires_at: Timestamp::from_unix_seconds(T0 + 86_400),
    };
    repo.insert_intent(&stuck, Some(claim))
        .await
        .expect("stored");

    let early = svc.reconcile_once().await.expect("pass");
    assert_eq!(early.recovered, 0, "a young intent may still be in flight");
    let waiting = svc
        .create(client(), key("died"), request("10"))
        .await
        .expect_err("in flight");
    assert!(matches!(waiting, CreateError::InFlight { .. }));

    clk.advance(Duration::from_secs(301));
    let later = svc.reconcile_once().await.expect("pass");
    assert_eq!(later.recovered, 1);
    let settled = repo.get(stuck.id()).await.expect("read").expect("kept");
    assert!(matches!(settled.outcome(), CreateOutcome::Unknown { .. }));
    // The client's retry now learns the truth instead of waiting forever, and nothing is re-sent.
    let retry = svc
        .create(client(), key("died"), request("10"))
        .await
        .expect_err("unknown");
    assert!(matches!(retry, CreateError::OutcomeUnknown { id, .. } if id == stuck.id()));
}

#[tokio::test]
async fn the_reconciler_purges_idempotency_keys_past_their_retention() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = gateway_creating("p20", 1);
    // The payment itself comes due for a poll after a day; IVPAY says it is still CREATED.
    g.expect_get().returning(|_| Ok(remote("p20", "CREATED")));
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), ServiceConfig::default());
    svc.create(client(), key("kept-a-day"), request("10"))
        .await
        .expect("created");
    assert_eq!(
        svc.reconcile_once().await.expect("pass").keys_purged,
        0,
        "within retention"
    );
    clk.advance(Duration::from_secs(24 * 3600));
    assert_eq!(svc.reconcile_once().await.expect("pass").keys_purged, 1);
    assert_eq!(svc.reconcile_once().await.expect("pass").keys_purged, 0);
}
