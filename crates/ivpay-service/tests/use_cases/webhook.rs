//! Webhooks: kept in the inbox and answered at once, confirmed by IVPAY's `GET` afterwards.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ivpay_domain::{EventOutcome, PaymentStatus, UpdateSource};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    GatewayError, MockPaymentGateway, PaymentStore, PaymentUseCases, WebhookReceipt,
};
use ivpay_service::{PaymentService, ServiceConfig};

use crate::support::*;

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
