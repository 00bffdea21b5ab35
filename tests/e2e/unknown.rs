//! Unknown outcomes resolved over real HTTP: IVPAY (the sandbox) creates the payment but
//! answers garbage, so our create's outcome is unknown; IVPAY's CREATED webhook then names
//! an id no row holds, and the row that sent its foreign id is linked. With two such rows,
//! neither is guessed: an operator links one through `/admin`, and the other follows.

use std::time::Duration;

use ivpay_domain::PaymentStatus;
use ivpay_sandbox::{FaultPlan, HttpFault, RouteFaults, WebhookFault};
use serde_json::Value;

use crate::support::{Backend, TestApp, fresh_db, json, spawn_app_with};

on_both_backends!(
    a_created_webhook_links_the_unknown_row_and_later_ones_apply,
    an_operator_resolves_an_ambiguous_match,
);

const ADMIN_KEY: &str = "e2e-operator-key";
const ORDER: &str =
    r#"{"amount_fiat":"12.00","currency_fiat":"USD","foreign_id":"order-unknown-1"}"#;

/// Our id of a create IVPAY handled but answered with garbage: 504 `outcome_unknown`, or
/// 200 when the CREATED webhook linked the row before the create's own save.
async fn garbled_create(app: &TestApp, body: &str) -> String {
    app.sandbox
        .set_faults(FaultPlan {
            create: RouteFaults::script([HttpFault::Garbage]),
            ..FaultPlan::default()
        })
        .expect("faults set");
    let (status, out) = app.create(body, None).await;
    let v = json(&out);
    match status {
        504 => {
            assert_eq!(v["code"], "outcome_unknown", "{v}");
            v["id"].as_str().expect("our id").to_owned()
        }
        200 => v["data"]["id"].as_str().expect("our id").to_owned(),
        other => panic!("create answered {other}: {v}"),
    }
}

async fn wait_for(app: &TestApp, id: &str, field: &str, value: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v = app.get(&format!("/payment/{id}")).await;
        if v["data"][field] == value || tokio::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn admin(app: &TestApp, id: &str, action: &str, body: &str) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}/admin/payments/{id}/{action}", app.base))
        .header("X-API-KEY", ADMIN_KEY)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("admin answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON"))
}

async fn a_created_webhook_links_the_unknown_row_and_later_ones_apply(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app_with(db.url(), |_| {}).await;
    let id = garbled_create(&app, ORDER).await;
    let upstream = app.sandbox.payments();
    assert_eq!(upstream.len(), 1, "IVPAY did create it");
    let payment_id = upstream[0].payment_id.clone();

    let v = wait_for(&app, &id, "outcome", "created").await;
    assert_eq!(v["data"]["outcome"], "created", "{v}");
    assert_eq!(v["data"]["payment_id"], payment_id.as_str());
    // The template in force: the embedded sandbox's checkout page.
    assert_eq!(
        v["data"]["payment_url"],
        format!("{}/checkout/{payment_id}", app.sandbox_url)
    );

    // From now on it is a payment like any other: IVPAY's next webhook applies.
    app.sandbox
        .set_status(&payment_id, PaymentStatus::Paid, true)
        .expect("paid upstream");
    let v = wait_for(&app, &id, "status", "PAID").await;
    assert_eq!(v["data"]["status"], "PAID", "{v}");
    app.stop().await;
}

async fn an_operator_resolves_an_ambiguous_match(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app_with(db.url(), |s| {
        s.admin.key = Some(ADMIN_KEY.into());
    })
    .await;
    // Two creates with one foreign id, both garbled, their CREATED webhooks held back
    // until both rows are unknown: each webhook then finds two candidates.
    app.sandbox
        .set_faults(FaultPlan {
            create: RouteFaults::script([HttpFault::Garbage, HttpFault::Garbage]),
            webhook: RouteFaults::script([
                WebhookFault::Delay { ms: 1500 },
                WebhookFault::Delay { ms: 1500 },
            ]),
            ..FaultPlan::default()
        })
        .expect("faults set");
    let mut ours = Vec::new();
    for _ in 0..2 {
        let (status, out) = app.create(ORDER, None).await;
        assert_eq!(status, 504, "{out}");
        ours.push(json(&out)["id"].as_str().expect("our id").to_owned());
    }
    let upstream: Vec<String> = app
        .sandbox
        .payments()
        .into_iter()
        .map(|p| p.payment_id)
        .collect();
    assert_eq!(upstream.len(), 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &ours {
        let v = app.get(&format!("/payment/{id}")).await;
        assert_eq!(
            v["data"]["outcome"], "unknown",
            "not guessed between two: {v}"
        );
    }

    // The operator links the first; the second webhook is left one candidate and links
    // the second row by itself.
    let body = format!(r#"{{"payment_id":"{}"}}"#, upstream[0]);
    let (status, v) = admin(&app, &ours[0], "link", &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["payment_id"], upstream[0].as_str());
    let v = wait_for(&app, &ours[1], "outcome", "created").await;
    assert_eq!(v["data"]["payment_id"], upstream[1].as_str(), "{v}");
    // Both settled: nothing left to abandon.
    let (status, v) = admin(&app, &ours[1], "abandon", "").await;
    assert_eq!(
        (status, v["code"].clone()),
        (409, "outcome_settled".into()),
        "{v}"
    );
    app.stop().await;
}
