//! Status updates through the state machine: recorded whatever the outcome.

use ivpay_domain::{EventOutcome, PaymentStatus, RefusalReason, ReportedStatus, UpdateSource};
use ivpay_ports::{MockPaymentGateway, PaymentRef, PaymentStore, PaymentUseCases};

use crate::support::*;

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
        .events(client(), PaymentRef::Internal(p.id()))
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

/// A status IVPAY never documented is contract drift, counted by where it was seen.
#[test]
fn an_unrecognized_status_is_counted_as_contract_drift() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                let (svc, repo) = service(gateway_creating("p9", 1));
                created(&svc, &repo).await;
                svc.apply_update(update("p9", "CANCELED", UpdateSource::Poll))
                    .await
                    .expect("handled");
                svc.apply_update(update("p9", "PENDING", UpdateSource::Poll))
                    .await
                    .expect("handled");
            });
    });
    let page = handle.render();
    assert!(
        page.lines()
            .any(|l| l == "ivpay_contract_drift_total{kind=\"status\",source=\"poll\"} 1"),
        "{page}"
    );
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
