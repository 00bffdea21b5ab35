//! Crash tests: the real binary, killed on purpose at named fault points (`abort`, as
//! under `kill -9`), then restarted on the same database. Nothing accepted may be lost and
//! no payment may be created twice. IVPAY is a sandbox in this test process, so it
//! outlives the service.

mod common;

use common::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ivpay_domain::PaymentStatus;
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig, SandboxServer};
use serde_json::Value;

const MERCHANT_KEY: &str = "merchant-key-for-crash-tests";
const CLIENT_KEY: &str = "client-key-for-crash-tests";
const ORDER: &str = r#"{"amount_fiat":"25.00","currency_fiat":"EUR","foreign_id":"crash-1"}"#;

struct Service {
    child: Child,
    base: String,
}

async fn start(dir: &Path, sandbox: &SandboxServer, port: u16, faults: Option<&str>) -> Service {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivpay-app"));
    cmd.current_dir(dir)
        .env("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "IVPAY_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", dir.join("ivpay.db").display()),
        )
        .env("IVPAY_IVPAY__API_KEY", MERCHANT_KEY)
        .env("IVPAY_IVPAY__BASE_URL", sandbox.base_url())
        .env("IVPAY_IVPAY__ALLOW_HTTP", "true")
        .env("IVPAY_CLIENTS__SHOP", CLIENT_KEY)
        .env("IVPAY_RECONCILER__INTERVAL_SECS", "1")
        .env("IVPAY_RECONCILER__STALE_INTENT_SECS", "1")
        .env("IVPAY_RECONCILER__INBOX_LEASE_SECS", "1")
        .env("IVPAY_LOG__FILTER", "error")
        .env_remove("IVPAY_FAULT_POINTS")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(spec) = faults {
        cmd.env("IVPAY_FAULT_POINTS", spec);
    }
    let child = cmd.spawn().expect("the service binary starts");
    let service = Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = client();
    assert!(
        common::ready(&http, &service.base).await,
        "service did not become ready"
    );
    service
}

impl Service {
    /// Waits for the process to die, and says whether it was killed rather than exiting.
    fn died_abnormally(&mut self) -> bool {
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("process status") {
                return !status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn create(base: &str, key: &str) -> Result<(u16, Value), reqwest::Error> {
    let res = client()
        .post(format!("{base}/payment/create"))
        .header("X-API-KEY", CLIENT_KEY)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(ORDER)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

async fn get(base: &str, path: &str) -> Value {
    client()
        .get(format!("{base}{path}"))
        .header("X-API-KEY", CLIENT_KEY)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON")
}

async fn sandbox() -> SandboxServer {
    Sandbox::spawn(SandboxConfig::default().with_merchant(MerchantConfig::new(MERCHANT_KEY)))
        .await
        .expect("sandbox starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_ivpay_answered_never_leads_to_a_second_payment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sb = sandbox().await;
    let port = free_port();

    let mut doomed = start(
        dir.path(),
        &sb,
        port,
        Some("create.after_upstream_response=crash"),
    )
    .await;
    let answer = create(&doomed.base, "order-crash-1").await;
    assert!(
        answer.is_err(),
        "the process died before answering: {answer:?}"
    );
    assert!(doomed.died_abnormally(), "killed at the fault point");
    assert_eq!(sb.payments().len(), 1, "IVPAY did create the payment");

    // Restarted without faults, the service finds the intent it left behind, settles it as
    // unknown, and the client's retry with the same key gets that answer: no second create.
    let service = start(dir.path(), &sb, port, None).await;
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = get(&service.base, "/payments").await;
        if listed["data"]["items"][0]["outcome"] == "unknown" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let items = listed["data"]["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "the intent survived the crash: {listed}");
    assert_eq!(items[0]["outcome"], "unknown", "{listed}");

    let (status, body) = create(&service.base, "order-crash-1")
        .await
        .expect("answers");
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], "outcome_unknown");
    assert_eq!(body["id"], items[0]["id"]);
    assert_eq!(sb.payments().len(), 1, "still one payment at IVPAY");
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_accepted_before_a_crash_is_applied_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sb = sandbox().await;
    let port = free_port();

    let service = start(dir.path(), &sb, port, None).await;
    let (status, body) = create(&service.base, "order-crash-2")
        .await
        .expect("answers");
    assert_eq!(status, 200, "{body}");
    let payment_id = body["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned();
    service.stop();

    let mut doomed = start(
        dir.path(),
        &sb,
        port,
        Some("webhook.after_inbox_commit=crash"),
    )
    .await;
    sb.set_status(&payment_id, PaymentStatus::Paid, true)
        .expect("paid at IVPAY");
    let notice =
        format!(r#"{{"payment_id":"{payment_id}","status":"PAID","processed_at":1726248785}}"#);
    let delivered = client()
        .post(format!("{}/webhooks/ivpay", doomed.base))
        .header("X-API-KEY", MERCHANT_KEY)
        .header("Content-Type", "application/json")
        .body(notice.clone())
        .send()
        .await;
    assert!(
        delivered.is_err(),
        "no answer: the process died after keeping the webhook"
    );
    assert!(doomed.died_abnormally());

    // No webhook is redelivered and no poll is due yet: only the inbox can make it PAID.
    let service = start(dir.path(), &sb, port, None).await;
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = get(&service.base, &format!("/payment/{payment_id}")).await;
        if seen["data"]["status"] == "PAID" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen["data"]["status"], "PAID", "{seen}");
    let events = get(&service.base, &format!("/payment/{payment_id}/events")).await;
    let applied = events["data"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["outcome"] == "applied")
        .cloned()
        .expect("an applied event");
    assert_eq!(applied["source"], "webhook");
    // The webhook kept before the crash is the evidence of the change made after it.
    assert_eq!(
        applied["evidence"]["webhook"]["processed_at"], 1726248785,
        "{applied}"
    );
    service.stop();
}
