//! The metrics that tell webhook truth from fiction, each made to move by the situation it
//! names, in a process of its own (so no other test counts into them): a webhook whose
//! status IVPAY's `GET` contradicts (`disagreeing`), a change only the poll found (`lost`),
//! a webhook for a change already applied (`late`), PAID then TIMEOUT at IVPAY (a final
//! conflict, refused), an unknown outcome shown by its gauge with nobody reading
//! `/readyz`, open payments by age, and a quarantined row.

mod common;

use common::wait_until;
use std::time::Duration;

use ivpay_app::{App, SANDBOX_MERCHANT_KEY, Settings};
use ivpay_domain::PaymentStatus;
use ivpay_sandbox::MerchantConfig;
use serde_json::Value;

/// The value of one series on the `/metrics` page, 0 when absent.
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_truth_metric_moves_for_the_situation_it_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().expect("address");
    let db_url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    settings.database.url = db_url.parse().expect("a database URL");
    settings.reconciler.first_check = Duration::from_secs(1);
    settings.reconciler.interval = Duration::from_secs(1);
    settings.reconciler.max_delay = Duration::from_secs(1);
    let app = App::build(settings).await.expect("starts");
    let base = app.info().service_url.clone();
    let sandbox = app.sandbox().expect("embedded sandbox").sandbox().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let metrics = async || {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let create = async |order: &str| -> (String, String) {
        let v: Value = http
            .post(format!("{base}/payment/create"))
            .header("X-API-KEY", "dev-client-key")
            .json(&serde_json::json!({"amount_fiat": "5.00", "currency_fiat": "EUR", "foreign_id": order}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        (
            v["data"]["id"].as_str().expect("id").to_owned(),
            v["data"]["payment_id"]
                .as_str()
                .expect("ivpay id")
                .to_owned(),
        )
    };
    let status = async |id: &str| -> String {
        let v: Value = http
            .get(format!("{base}/payment/{id}"))
            .header("X-API-KEY", "dev-client-key")
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        v["data"]["status"].as_str().unwrap_or_default().to_owned()
    };
    let truth = |verdict: &str| format!("ivpay_webhook_truth_total{{verdict=\"{verdict}\"}}");

    // A webhook claiming PAID for a payment IVPAY still has CREATED.
    let (a_ours, a) = create("truth-a").await;
    let answer = http
        .post(format!("{base}/webhooks/ivpay"))
        .header("X-API-KEY", SANDBOX_MERCHANT_KEY)
        .json(&serde_json::json!({"payment_id": a, "status": "PAID"}))
        .send()
        .await
        .expect("webhook");
    assert!(answer.status().is_success());
    wait_until("the contradicted webhook", async || {
        value(&metrics().await, &truth("disagreeing")) >= 1.0
    })
    .await;

    // Webhooks off: B is paid at IVPAY and only the poll finds it.
    let webhooks_on =
        MerchantConfig::new(SANDBOX_MERCHANT_KEY).with_webhook(format!("{base}/webhooks/ivpay"));
    sandbox
        .set_merchant(MerchantConfig::new(SANDBOX_MERCHANT_KEY))
        .expect("webhooks off");
    let (b_ours, b) = create("truth-b").await;
    sandbox
        .set_status(&b, PaymentStatus::Paid, false)
        .expect("paid at IVPAY");
    wait_until("the poll to find the payment", async || {
        status(&b_ours).await == "PAID"
    })
    .await;
    assert!(value(&metrics().await, &truth("lost")) >= 1.0);
    let timely_before = value(&metrics().await, &truth("timely"));

    // Webhooks on again: IVPAY's PAID webhook for B now comes after the poll.
    sandbox.set_merchant(webhooks_on).expect("webhooks on");
    sandbox.redeliver(&b).expect("redelivered");
    wait_until("the late webhook", async || {
        value(&metrics().await, &truth("late")) >= 1.0
    })
    .await;

    // IVPAY moves B from PAID to TIMEOUT: refused, and counted.
    sandbox
        .set_status(&b, PaymentStatus::Timeout, true)
        .expect("forced at IVPAY");
    wait_until("the conflict", async || {
        value(
            &metrics().await,
            "ivpay_final_conflicts_total{source=\"webhook\"}",
        ) + value(
            &metrics().await,
            "ivpay_final_conflicts_total{source=\"poll\"}",
        ) >= 1.0
    })
    .await;
    assert_eq!(
        status(&b_ours).await,
        "PAID",
        "a final status never changes"
    );
    let page = metrics().await;
    assert_eq!(
        value(&page, &truth("disagreeing")),
        1.0,
        "only A's webhook was contradicted"
    );
    assert_eq!(
        value(&page, &truth("timely")),
        timely_before,
        "nothing here came in time"
    );

    // A is still open at IVPAY: the reconciler's passes count it by age.
    wait_until("the open payments gauge", async || {
        value(
            &metrics().await,
            "ivpay_open_payments{age=\"under_an_hour\"}",
        ) >= 1.0
    })
    .await;
    assert_eq!(
        value(&metrics().await, "ivpay_open_payments{age=\"older\"}"),
        0.0,
        "nothing here is older than a day"
    );

    // A's stored row stops reading (a currency no library knows): the reconciler sets it
    // aside, and both the gauge and the counter say so.
    assert_eq!(value(&metrics().await, "ivpay_quarantined_rows"), 0.0);
    let raw = sea_orm::Database::connect(db_url.as_str())
        .await
        .expect("a second connection");
    sea_orm::ConnectionTrait::execute_unprepared(
        &raw,
        &format!("UPDATE payments SET currency = 'ZZZ' WHERE id = '{a_ours}'"),
    )
    .await
    .expect("corrupted");
    wait_until("the quarantine", async || {
        let page = metrics().await;
        value(&page, "ivpay_quarantined_rows") == 1.0
            && value(&page, "ivpay_quarantined_rows_total{table=\"payments\"}") == 1.0
    })
    .await;

    let _ = stop.send(());
    running.await.expect("task").expect("clean stop");
}
