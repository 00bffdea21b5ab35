//! A create outlives its request: when the request time limit fires, or the client hangs
//! up, while IVPAY is slow, the service still stores IVPAY's answer, and the client's
//! retry with its `Idempotency-Key` gets the created payment (replayed), not 409 or 504.

use std::time::Duration;

use ivpay_sandbox::{FaultPlan, HttpFault, RouteFaults};

use crate::support::{Backend, KEY, TestApp, fresh_db, json, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    a_create_cut_short_is_stored_and_replayed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    a_create_cut_short_is_stored_and_replayed(Backend::Postgres).await;
}

const ORDER: &str = r#"{"amount_fiat":"12.00","currency_fiat":"USD"}"#;

/// IVPAY takes this long to answer a create: longer than the request may run.
const SLOW: Duration = Duration::from_millis(2_500);

/// A retry after the first request is gone: answered from storage.
async fn replayed(app: &TestApp, key: &str) -> serde_json::Value {
    let res = app
        .http
        .post(format!("{}/payment/create", app.base))
        .header("X-API-KEY", KEY)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(ORDER)
        .send()
        .await
        .expect("retry answers");
    let status = res.status().as_u16();
    let replay = res
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.text().await.expect("body");
    assert_eq!(status, 200, "{key}: {body}");
    assert_eq!(
        replay.as_deref(),
        Some("true"),
        "{key}: answered from storage"
    );
    json(&body)
}

async fn a_create_cut_short_is_stored_and_replayed(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app_with(db.url(), |s| {
        s.server.request_timeout = Duration::from_secs(1);
        // Must stay below the time limit; a retry that finds the first request running
        // answers 409 at once.
        s.idempotency.wait = Duration::ZERO;
    })
    .await;
    let slow = HttpFault::Latency {
        ms: u64::try_from(SLOW.as_millis()).expect("small"),
    };
    app.sandbox
        .set_faults(FaultPlan {
            create: RouteFaults::script([slow.clone(), slow]),
            ..FaultPlan::default()
        })
        .expect("faults set");

    // The request time limit fires while IVPAY is still thinking.
    let (status, body) = app.create(ORDER, Some("cut-by-time-limit")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["code"], "timeout", "{body}");

    // The client hangs up while IVPAY is still thinking.
    let hung_up = app
        .http
        .post(format!("{}/payment/create", app.base))
        .header("X-API-KEY", KEY)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", "client-hung-up")
        .body(ORDER)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up first");

    // Both creates finish on their own; the retries get the payments.
    tokio::time::sleep(SLOW + Duration::from_millis(500)).await;
    let mut upstream_ids = Vec::new();
    for key in ["cut-by-time-limit", "client-hung-up"] {
        let v = replayed(&app, key).await;
        let payment_id = v["data"]["payment_id"].as_str().expect("payment_id");
        assert!(
            app.sandbox.payment(payment_id).is_some(),
            "{key}: the payment IVPAY made"
        );
        let stored = app.get(&format!("/payment/{payment_id}")).await;
        assert_eq!(stored["data"]["outcome"], "created", "{key}: {stored}");
        upstream_ids.push(payment_id.to_owned());
    }
    assert_ne!(upstream_ids[0], upstream_ids[1]);
    assert_eq!(app.sandbox.payments().len(), 2, "one upstream call per key");
    app.stop().await;
}
