//! The operator's commands against a running service, as run from a shell: `payments
//! create|get|list|events` and `notifications list|get|redeliver`, both as JSON for
//! scripts and as tables.

mod common;

use common::free_port;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The settings that point the command line at the service on `port`.
fn at(port: u16) -> [(&'static str, String); 1] {
    [("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))]
}

/// Runs `ivpay-app <args>` against the service on `port` (see [`common::cli`]).
fn cli(port: u16, args: &[&str], tables: bool) -> (bool, String) {
    common::cli(args, &at(port), tables)
}

fn json(port: u16, args: &[&str]) -> Value {
    common::cli_json(args, &at(port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_the_delivery_log_from_the_command_line() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _serve = Serving(
        Command::new(env!("CARGO_BIN_EXE_ivpay-app"))
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env(
                "IVPAY_DATABASE__URL",
                format!("sqlite://{}?mode=rwc", dir.path().join("i.db").display()),
            )
            .env("IVPAY_NOTIFY__INTERVAL_MILLIS", "50")
            .env("IVPAY_NOTIFY__RETRY_SCHEDULE_SECS", "3600")
            .env("IVPAY_LOG__FILTER", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    assert!(
        common::ready(&http, &base).await,
        "the service became ready"
    );
    // An endpoint nobody answers, so its notices stay in the log with an error.
    let (status, _) = {
        let r = http
            .post(format!("{base}/admin/endpoints"))
            .header("X-API-KEY", "dev-client-key")
            .json(&serde_json::json!({"client": "dev", "url": "http://127.0.0.1:9/hook"}))
            .send()
            .await
            .expect("answers");
        (r.status().as_u16(), r.text().await.expect("body"))
    };
    assert_eq!(status, 200);

    const CREATE: &[&str] = &[
        "payments",
        "create",
        "--amount",
        "10.5",
        "--currency",
        "usd",
        "--foreign-id",
        "order-9",
        "--idempotency-key",
        "cli-1",
    ];
    let created = json(port, CREATE);
    let id = created["id"].as_str().expect("our id").to_owned();
    // The same key again creates nothing more.
    let again = json(port, CREATE);
    assert_eq!(again["id"], created["id"]);

    let got = json(port, &["payments", "get", &id]);
    assert_eq!(got["amount_fiat"], "10.50");
    assert_eq!(got["status"], "CREATED");
    let listed = json(port, &["payments", "list", "--foreign-id", "order-9"]);
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    let (ok, table) = cli(port, &["payments", "list"], true);
    assert!(ok, "{table}");
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("AMOUNT_FIAT"),
        "{table}"
    );
    assert!(table.contains(&id) && table.contains("10.50"), "{table}");

    // A mistake is the service's own message, and a failure.
    let (ok, text) = cli(port, &["payments", "get", "no-such-payment"], false);
    assert!(!ok && text.contains("404"), "{text}");

    // The notice of the create, tried once (nobody listens), in the log.
    let entry = loop {
        let log = json(port, &["notifications", "list", "--payment", &id]);
        let items = log["items"].as_array().cloned().unwrap_or_default();
        if items.first().is_some_and(|n| n["attempts"] == 1) {
            break items[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(entry["type"], "payment.created");
    assert_eq!(entry["state"], "pending");
    let nid = entry["id"].as_str().expect("id").to_owned();
    let (ok, detail) = cli(port, &["notifications", "get", &nid], true);
    assert!(ok, "{detail}");
    assert!(
        detail.contains("LATENCY_MS") && detail.contains("failed"),
        "{detail}"
    );
    let redelivered = json(port, &["notifications", "redeliver", &nid]);
    assert_eq!(redelivered["id"], nid.as_str());
    let after = loop {
        let one = json(port, &["notifications", "get", &nid]);
        if one["attempts"] == 2 {
            break one;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after["attempt_log"].as_array().map(Vec::len), Some(2));
}
