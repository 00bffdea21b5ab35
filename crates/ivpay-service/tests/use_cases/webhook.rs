//! Webhooks: kept in the inbox and answered at once, confirmed by IVPAY's `GET` afterwards
//! (the inbox worker's pass), one confirmation in flight per payment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivpay_domain::{EventOutcome, PaymentId, PaymentStatus, UpdateSource, UpstreamPayment};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    CreateRequest, GatewayError, InboxReport, MockPaymentGateway, PaymentGateway, PaymentStore,
    PaymentUseCases, RemotePayment, WebhookReceipt,
};
use ivpay_service::{PaymentService, ServiceConfig};
use tokio::sync::Barrier;

use crate::support::*;

const PAID_P11: &str = r#"{"payment_id":"p11","status":"PAID"}"#;

#[tokio::test]
async fn a_webhook_is_kept_and_answered_before_ivpay_is_asked() {
    // No expect_get: a GET while receiving would fail the test.
    let (svc, repo) = service(gateway_creating("p11", 1));
    let p = created(&svc, &repo).await;
    let receipt = svc
        .receive_webhook(hint("p11", Some("PAID"), PAID_P11))
        .await
        .expect("kept");
    assert_eq!(receipt, WebhookReceipt::Queued);
    let kept = repo.inbox();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].hint.raw, PAID_P11, "the raw body is kept verbatim");
    assert_eq!(kept[0].attempts, 0);
    assert!(repo.all_events().is_empty(), "nothing applied yet");
    let stored = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(stored.status(), PaymentStatus::Created);

    // The inbox worker is woken at once, and only once for one webhook.
    tokio::time::timeout(Duration::from_secs(1), svc.webhook_queued())
        .await
        .expect("the worker is woken");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), svc.webhook_queued())
            .await
            .is_err(),
        "no second wake without a second webhook"
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
    svc.receive_webhook(hint("p11", Some("PAID"), PAID_P11))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!(
        report,
        InboxReport {
            claimed: 1,
            processed: 1,
            ..InboxReport::default()
        }
    );
    assert!(
        repo.inbox().is_empty(),
        "a processed webhook leaves the inbox"
    );
    let after = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(after.status(), PaymentStatus::Pending);
    let event = &repo.all_events()[0];
    assert_eq!(event.source, UpdateSource::Webhook);
    assert_eq!(event.outcome, EventOutcome::Applied);
    let evidence = event.evidence.as_ref().expect("kept");
    assert_eq!(
        evidence.webhook(),
        Some(PAID_P11),
        "the webhook's body, verbatim"
    );
    assert_eq!(
        evidence.confirmation(),
        Some(remote("p11", "PENDING").raw.as_str()),
        "IVPAY's answer, verbatim"
    );
    assert_eq!(
        svc.confirm_webhooks().await.expect("pass"),
        InboxReport::default(),
        "nothing left to confirm"
    );
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
    assert!(repo.inbox().is_empty(), "nothing left to confirm");
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
    let ivpay_up = Arc::new(AtomicBool::new(false));
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
    svc.receive_webhook(hint("p12", Some("PAID"), body))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.processed, report.deferred), (0, 1));
    let kept = repo.inbox();
    assert_eq!(kept.len(), 1, "kept even though IVPAY is down");
    assert_eq!(kept[0].hint.raw, body, "the raw body is kept verbatim");
    assert_eq!(kept[0].attempts, 1);
    let stored = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(stored.status(), PaymentStatus::Created);
    assert_eq!(
        svc.confirm_webhooks().await.expect("pass").claimed,
        0,
        "backed off"
    );

    // IVPAY comes back; the reconciler finds the webhook due and applies what GET says.
    ivpay_up.store(true, Ordering::SeqCst);
    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(report.webhooks_processed, 1);
    assert!(repo.inbox().is_empty());
    let stored = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(stored.status(), PaymentStatus::Paid);
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
    assert_eq!(receipt, WebhookReceipt::Queued);
    assert_eq!(svc.confirm_webhooks().await.expect("pass").processed, 1);
    assert!(repo.inbox().is_empty());
    let events = repo.all_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, EventOutcome::UnknownPayment);
    let evidence = events[0].evidence.as_ref().expect("kept");
    assert_eq!(evidence.webhook(), Some(r#"{"payment_id":"forged"}"#));
    assert_eq!(
        (evidence.confirmation(), evidence.note()),
        (None, Some("not found at IVPAY"))
    );
}

/// IVPAY whose `GET` parks until a second `GET` arrives (a barrier of two), counting the
/// GETs in flight for each payment.
#[derive(Clone)]
struct PairedGets {
    barrier: Arc<Barrier>,
    in_flight: Arc<Mutex<HashMap<PaymentId, usize>>>,
    most_at_once: Arc<Mutex<HashMap<PaymentId, usize>>>,
    calls: Arc<AtomicUsize>,
}

impl PairedGets {
    fn new() -> Self {
        Self {
            barrier: Arc::new(Barrier::new(2)),
            in_flight: Arc::default(),
            most_at_once: Arc::default(),
            calls: Arc::default(),
        }
    }
}

#[async_trait::async_trait]
impl PaymentGateway for PairedGets {
    async fn create(&self, _: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        Err(GatewayError::Protocol {
            detail: "not in this test".into(),
        })
    }

    async fn get(&self, id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        {
            let mut in_flight = self.in_flight.lock().expect("lock");
            let now = in_flight.entry(id.clone()).or_default();
            *now += 1;
            let mut most = self.most_at_once.lock().expect("lock");
            let most = most.entry(id.clone()).or_default();
            *most = (*most).max(*now);
        }
        self.barrier.wait().await;
        *self
            .in_flight
            .lock()
            .expect("lock")
            .get_mut(id)
            .expect("counted") -= 1;
        Ok(remote(id.as_str(), "PENDING"))
    }
}

#[tokio::test]
async fn one_confirmation_per_payment_in_flight_and_payments_side_by_side() {
    let gateway = PairedGets::new();
    let svc = PaymentService::new(
        InMemoryRepository::new(),
        gateway.clone(),
        clock(),
        ServiceConfig::default(),
    );
    for n in 0..3 {
        for id in ["pa", "pb"] {
            let body = format!(r#"{{"payment_id":"{id}","status":"PAID","n":{n}}}"#);
            svc.receive_webhook(hint(id, Some("PAID"), &body))
                .await
                .expect("kept");
        }
    }
    // Each GET waits for a second one. With one confirmation in flight per payment, the
    // second is always the other payment's; confirming one webhook at a time overall
    // would never finish.
    let report = tokio::time::timeout(Duration::from_secs(10), svc.confirm_webhooks())
        .await
        .expect("payments are confirmed side by side")
        .expect("pass");
    // No row holds pa or pb: each is confirmed, then kept to wait for its row.
    assert_eq!((report.claimed, report.unmatched), (6, 6));
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 6);
    let most = gateway.most_at_once.lock().expect("lock").clone();
    assert_eq!(
        most,
        HashMap::from([
            ("pa".parse().expect("id"), 1),
            ("pb".parse().expect("id"), 1)
        ]),
        "never two GETs of one payment at once"
    );
}

#[tokio::test]
async fn a_pass_takes_no_more_webhooks_than_it_confirms_at_once() {
    let gateway = PairedGets::new();
    let config = ServiceConfig {
        inbox_concurrency: std::num::NonZeroUsize::new(2).expect("not zero"),
        ..ServiceConfig::default()
    };
    let svc = PaymentService::new(InMemoryRepository::new(), gateway.clone(), clock(), config);
    for id in ["pa", "pb", "pc", "pd"] {
        let body = format!(r#"{{"payment_id":"{id}","status":"PAID"}}"#);
        svc.receive_webhook(hint(id, Some("PAID"), &body))
            .await
            .expect("kept");
    }
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let report = tokio::time::timeout(Duration::from_secs(10), svc.confirm_webhooks())
            .await
            .expect("two at once meet at the barrier")
            .expect("pass");
        claimed.push(report.claimed);
    }
    assert_eq!(claimed, [2, 2, 0], "two per pass, then none left");
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 4);
}

/// While IVPAY cannot confirm a webhook it is retried, but not forever: after the
/// configured number of failed attempts it is recorded as unconfirmed, with its body, and
/// leaves the inbox.
#[tokio::test]
async fn a_webhook_ivpay_never_confirms_is_given_up_after_the_configured_attempts() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = gateway_creating("p14", 1);
    g.expect_get().times(3).returning(|_| Err(timeout()));
    let config = ServiceConfig {
        inbox_max_attempts: std::num::NonZeroU32::new(3).expect("not zero"),
        ..ServiceConfig::default()
    };
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), config);
    let p = created(&svc, &repo).await;
    let body = r#"{"payment_id":"p14","status":"PAID"}"#;
    svc.receive_webhook(hint("p14", Some("PAID"), body))
        .await
        .expect("kept");
    for attempt in 1..=2 {
        let report = svc.confirm_webhooks().await.expect("pass");
        assert_eq!((report.deferred, report.unconfirmed), (1, 0), "{attempt}");
        assert_eq!(repo.inbox()[0].attempts, attempt);
        clk.advance(Duration::from_secs(2 * 3600));
    }
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.deferred, report.unconfirmed), (0, 1));
    assert!(repo.inbox().is_empty(), "given up: out of the inbox");
    let events = repo.events(p.id()).await.expect("read");
    let given_up = events
        .iter()
        .find(|e| e.outcome == EventOutcome::Unconfirmed)
        .expect("recorded as unconfirmed");
    let evidence = given_up.evidence.as_ref().expect("evidence");
    assert_eq!(evidence.webhook(), Some(body), "the body kept verbatim");
    assert!(
        evidence.note().is_some_and(|n| n.contains("3 attempts")),
        "{evidence:?}"
    );
    let stored = repo.get(p.id()).await.expect("read").expect("stored");
    assert_eq!(
        stored.status(),
        PaymentStatus::Created,
        "a hint applies nothing"
    );
    assert_eq!(
        svc.confirm_webhooks().await.expect("pass").claimed,
        0,
        "not tried again"
    );
}

/// A confirmation that outlives its inbox lease (IVPAY slow, another worker takes the
/// webhook over) must not reschedule the webhook under the new holder.
#[tokio::test]
async fn a_confirmation_that_outlives_its_lease_leaves_the_webhook_to_the_new_holder() {
    use futures_util::FutureExt;
    use ivpay_ports::WebhookInbox;

    let repo = InMemoryRepository::new();
    let clk = clock();
    let config = ServiceConfig::default();
    let lease = config.inbox_lease;
    let mut g = gateway_creating("p15", 1);
    let (other, other_clock) = (repo.clone(), clk.clone());
    g.expect_get().times(1).returning(move |_| {
        other_clock.advance(lease + Duration::from_secs(1));
        let taken = other
            .claim_webhooks(clk_now(&other_clock), lease, 10)
            .now_or_never()
            .expect("the fake answers at once")
            .expect("claimed");
        assert_eq!(taken.len(), 1, "due again once the lease ran out");
        Err(timeout())
    });
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), config);
    created(&svc, &repo).await;
    svc.receive_webhook(hint("p15", Some("PAID"), PAID_P11))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.deferred, report.lease_lost), (0, 1));
    assert_eq!(
        repo.inbox()[0].attempts,
        0,
        "the late retry was not written over the new holder's claim"
    );
}
