//! The payment flows over real HTTP: our service, its database, and the sandbox as IVPAY.
//! Each flow runs on SQLite, and on PostgreSQL when one is configured.

use std::time::Duration;

use ivpay_domain::PaymentStatus;
use ivpay_sandbox::{Chance, FaultPlan, RouteFaults, WebhookFault};

use crate::support::{Backend, fresh_db, json, spawn_app, spawn_app_with};

on_both_backends!(
    pay_on_checkout_then_webhook_makes_it_paid,
    the_inbox_worker_confirms_a_webhook_without_the_reconciler,
    a_dropped_webhook_is_caught_by_the_reconciler,
    duplicated_and_reordered_webhooks_never_reverse_a_final_state,
    concurrent_creates_with_one_key_make_one_upstream_payment,
    a_restart_loses_nothing,
);

const ORDER: &str = r#"{"amount_fiat":"10.50","currency_fiat":"USD","foreign_id":"order-42","url_success":"https://shop.example/ok","url_failed":"https://shop.example/failed"}"#;

fn ids(created: &serde_json::Value) -> (String, String) {
    (
        created["data"]["payment_id"]
            .as_str()
            .expect("payment_id")
            .to_owned(),
        created["data"]["payment_url"]
            .as_str()
            .expect("payment_url")
            .to_owned(),
    )
}

async fn pay_on_checkout_then_webhook_makes_it_paid(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(db.url()).await;
    let (status, body) = app.create(ORDER, None).await;
    assert_eq!(status, 200, "{body}");
    let (payment_id, payment_url) = ids(&json(&body));

    assert_eq!(
        app.checkout(&payment_url, "coin", &[("coin", "USDT")])
            .await,
        303
    );
    assert_eq!(app.checkout(&payment_url, "pay", &[]).await, 303);

    let v = app
        .wait_for_status(&payment_id, "PAID", Duration::from_secs(10))
        .await;
    assert_eq!(v["data"]["status"], "PAID", "{v}");
    assert_eq!(v["data"]["amount_fiat"], "10.50");
    let events = app.events(&payment_id).await;
    let applied: Vec<_> = events
        .iter()
        .filter(|e| e["outcome"] == "applied")
        .map(|e| e["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        applied.last().map(String::as_str),
        Some("PAID"),
        "{events:?}"
    );
    app.stop().await;
}

async fn the_inbox_worker_confirms_a_webhook_without_the_reconciler(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    // No reconciler, and an idle inbox worker sleeps an hour: only the wake-up a queued
    // webhook gives the worker can make the payment PAID within the test's patience.
    let app = spawn_app_with(db.url(), |s| {
        s.reconciler.enabled = false;
        s.reconciler.interval = Duration::from_secs(3600);
    })
    .await;
    let (status, body) = app.create(ORDER, None).await;
    assert_eq!(status, 200, "{body}");
    let (payment_id, payment_url) = ids(&json(&body));
    assert_eq!(app.checkout(&payment_url, "pay", &[]).await, 303);

    let v = app
        .wait_for_status(&payment_id, "PAID", Duration::from_secs(10))
        .await;
    assert_eq!(v["data"]["status"], "PAID", "{v}");
    let events = app.events(&payment_id).await;
    let applied: Vec<_> = events
        .iter()
        .filter(|e| e["outcome"] == "applied")
        .collect();
    assert!(!applied.is_empty(), "{events:?}");
    assert!(
        applied.iter().all(|e| e["source"] == "webhook"),
        "confirmed from the inbox: {events:?}"
    );
    app.stop().await;
}

async fn a_dropped_webhook_is_caught_by_the_reconciler(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(db.url()).await;
    app.sandbox
        .set_faults(FaultPlan {
            webhook: RouteFaults {
                script: vec![],
                random: vec![Chance {
                    probability: 1.0,
                    fault: WebhookFault::Drop,
                }],
            },
            ..FaultPlan::default()
        })
        .expect("faults set");
    let (status, body) = app.create(ORDER, None).await;
    assert_eq!(status, 200, "{body}");
    let (payment_id, payment_url) = ids(&json(&body));
    assert_eq!(app.checkout(&payment_url, "pay", &[]).await, 303);
    assert_eq!(
        app.sandbox.payment(&payment_id).map(|p| p.status),
        Some(PaymentStatus::Paid),
        "the sandbox knows it is paid"
    );

    let v = app
        .wait_for_status(&payment_id, "PAID", Duration::from_secs(20))
        .await;
    assert_eq!(v["data"]["status"], "PAID", "{v}");
    let events = app.events(&payment_id).await;
    let sources: Vec<_> = events.iter().map(|e| e["source"].clone()).collect();
    assert!(
        sources.iter().all(|s| s == "poll"),
        "no webhook got through: {sources:?}"
    );
    app.stop().await;
}

async fn duplicated_and_reordered_webhooks_never_reverse_a_final_state(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(db.url()).await;
    app.sandbox
        .set_faults(FaultPlan {
            seed: 7,
            webhook: RouteFaults {
                script: vec![],
                random: vec![
                    Chance {
                        probability: 0.4,
                        fault: WebhookFault::Duplicate,
                    },
                    Chance {
                        probability: 0.4,
                        fault: WebhookFault::Reorder,
                    },
                ],
            },
            ..FaultPlan::default()
        })
        .expect("faults set");
    let mut paid = Vec::new();
    for i in 0..4 {
        let body = format!(r#"{{"amount_fiat":"{i}.99","currency_fiat":"EUR"}}"#);
        let (status, text) = app.create(&body, None).await;
        assert_eq!(status, 200, "{text}");
        let (payment_id, payment_url) = ids(&json(&text));
        app.checkout(&payment_url, "coin", &[("coin", "BTC")]).await;
        app.checkout(&payment_url, "pay", &[]).await;
        // Late, out-of-order and repeated notices of PENDING and CREATED follow PAID.
        app.sandbox.redeliver(&payment_id).expect("redelivered");
        paid.push(payment_id);
    }
    for payment_id in &paid {
        let v = app
            .wait_for_status(payment_id, "PAID", Duration::from_secs(20))
            .await;
        assert_eq!(v["data"]["status"], "PAID", "{v}");
    }
    // Let every straggler arrive, then check nothing moved.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for payment_id in &paid {
        let v = app.get(&format!("/payment/{payment_id}")).await;
        assert_eq!(v["data"]["status"], "PAID", "{v}");
        let events = app.events(payment_id).await;
        let to_paid = events
            .iter()
            .filter(|e| e["outcome"] == "applied" && e["to"] == "PAID")
            .count();
        assert_eq!(to_paid, 1, "PAID applied exactly once: {events:?}");
    }
    app.stop().await;
}

async fn concurrent_creates_with_one_key_make_one_upstream_payment(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = std::sync::Arc::new(spawn_app(db.url()).await);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.create(ORDER, Some("one-key-for-all")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert!(
        answers.windows(2).all(|w| w[0].1 == w[1].1),
        "32 identical answers"
    );
    assert_eq!(app.sandbox.payments().len(), 1, "one upstream payment");
    let app = std::sync::Arc::into_inner(app).expect("only owner");
    app.stop().await;
}

async fn a_restart_loses_nothing(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(db.url()).await;
    let mut created = Vec::new();
    for i in 1..=5 {
        let (status, body) = app
            .create(
                &format!(r#"{{"amount_fiat":"{i}","currency_fiat":"JPY","foreign_id":"r-{i}"}}"#),
                Some(&format!("k{i}")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        created.push(body);
    }
    let (_, first_url) = ids(&json(&created[0]));
    app.checkout(&first_url, "pay", &[]).await;
    let first_id = ids(&json(&created[0])).0;
    app.wait_for_status(&first_id, "PAID", Duration::from_secs(10))
        .await;
    app.stop().await;

    let again = spawn_app(db.url()).await;
    for (i, body) in created.iter().enumerate() {
        let (payment_id, _) = ids(&json(body));
        let v = again.get(&format!("/payment/{payment_id}")).await;
        assert_eq!(v["success"], true, "{v}");
        assert_eq!(v["data"]["amount_fiat"], format!("{}", i + 1));
        // The idempotency record survived too: the same key replays the same answer.
        let n = i + 1;
        let (status, replay) = again
            .create(
                &format!(r#"{{"amount_fiat":"{n}","currency_fiat":"JPY","foreign_id":"r-{n}"}}"#),
                Some(&format!("k{n}")),
            )
            .await;
        assert_eq!((status, &replay), (200, body));
    }
    let paid = again.get(&format!("/payment/{first_id}")).await;
    assert_eq!(paid["data"]["status"], "PAID");
    again.stop().await;
}
