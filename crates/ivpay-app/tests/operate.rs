//! The operator's commands for what needs a person, run as the real binary against a
//! running service: `unknown list|link|abandon` on payments whose create outcome IVPAY left
//! open, and `webhooks inbox|replay` (raw bodies from files, with progress on a terminal,
//! and the bodies stored with a payment).

mod common;

use common::wait_until;
use std::process::Command;
use std::time::Duration;

use ivpay_app::{App, SANDBOX_MERCHANT_KEY, Settings};
use ivpay_sandbox::{FaultPlan, HttpFault, MerchantConfig, RouteFaults};
use serde_json::{Value, json};

/// Runs `ivpay-app <args> --service <service>` with the development key (see
/// [`common::cli`]).
fn cli(service: &str, args: &[&str], tables: bool) -> (bool, String) {
    common::cli(&[args, &["--service", service]].concat(), &[], tables)
}

fn json_of(service: &str, args: &[&str]) -> Value {
    common::cli_json(&[args, &["--service", service]].concat(), &[])
}

fn ids(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcomes_and_webhooks_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().expect("address");
    settings.database.url = format!("sqlite://{}?mode=rwc", dir.path().join("o.db").display())
        .parse()
        .expect("a database URL");
    // The inbox retries every second.
    settings.reconciler.first_check = Duration::from_secs(1);
    settings.reconciler.max_delay = Duration::from_secs(1);
    let app = App::build(settings).await.expect("starts");
    let base = app.info().service_url.clone();
    let base = base.trim_end_matches('/').to_owned();
    let sandbox = app.sandbox().expect("embedded sandbox").sandbox().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();

    // IVPAY makes two payments but the connection breaks before its answer, and sends
    // no webhook that could link them: two unknown outcomes.
    sandbox
        .set_merchant(MerchantConfig::new(SANDBOX_MERCHANT_KEY))
        .expect("webhooks off");
    sandbox
        .set_faults(FaultPlan {
            create: RouteFaults::script([HttpFault::Reset, HttpFault::Reset]),
            ..FaultPlan::default()
        })
        .expect("faults");
    let create = async |order: &str| -> Value {
        http.post(format!("{base}/payment/create"))
            .header("X-API-KEY", "dev-client-key")
            .json(&json!({"amount_fiat": "7.25", "currency_fiat": "EUR", "foreign_id": order}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json")
    };
    let mut unknown = Vec::new();
    for order in ["op-1", "op-2"] {
        let answer = create(order).await;
        assert_eq!(answer["success"], false, "{answer}");
        let listed = json_of(&base, &["payments", "list", "--foreign-id", order]);
        unknown.push(ids(&listed)[0].clone());
    }
    // A payment IVPAY did answer is not for the operator.
    let fine = create("op-3").await;
    let fine_id = fine["data"]["id"].as_str().expect("id").to_owned();

    let open = json_of(&base, &["unknown", "list"]);
    assert_eq!(
        ids(&open),
        vec![unknown[1].clone(), unknown[0].clone()],
        "both unknown outcomes, newest first, and nothing else: {open}"
    );
    assert_eq!(open["items"][0]["client"], "dev");
    assert_eq!(open["items"][0]["outcome"], "unknown");
    let (ok, table) = cli(&base, &["unknown", "list"], true);
    assert!(ok, "{table}");
    assert!(
        table.starts_with("ID") && table.contains("OUTCOME_REASON") && table.contains(&unknown[0]),
        "{table}"
    );

    // The operator finds op-1 at IVPAY and links it; states IVPAY has none for op-2.
    let at_ivpay = sandbox
        .payments()
        .into_iter()
        .find(|p| p.foreign_id.as_deref() == Some("op-1"))
        .expect("IVPAY made op-1");
    let linked = json_of(
        &base,
        &["unknown", "link", &unknown[0], &at_ivpay.payment_id],
    );
    assert_eq!(linked["outcome"], "created", "{linked}");
    assert_eq!(linked["payment_id"], at_ivpay.payment_id.as_str());
    // Linking it to another payment of IVPAY's is refused with the service's reason.
    let (ok, refused) = cli(
        &base,
        &["unknown", "link", &unknown[1], &at_ivpay.payment_id],
        false,
    );
    assert!(!ok, "{refused}");
    let abandoned = json_of(&base, &["unknown", "abandon", &unknown[1]]);
    assert_eq!(abandoned["outcome"], "abandoned", "{abandoned}");
    let (ok, text) = cli(&base, &["unknown", "abandon", &fine_id], false);
    assert!(
        !ok && text.contains("409"),
        "a created payment is not open: {text}"
    );
    assert!(ids(&json_of(&base, &["unknown", "list"])).is_empty());

    // IVPAY cannot answer its GET for a while: a replayed webhook waits in the inbox.
    sandbox
        .set_faults(FaultPlan {
            get: RouteFaults::script(vec![HttpFault::ServerError { status: 503 }; 10_000]),
            ..FaultPlan::default()
        })
        .expect("faults");
    let raw = dir.path().join("paid.json");
    std::fs::write(
        &raw,
        format!(
            "{{\"payment_id\": \"{}\", \"status\": \"PAID\",}}\n",
            at_ivpay.payment_id
        ),
    )
    .expect("write");
    let raw_path = raw.display().to_string();
    let replayed = json_of(&base, &["webhooks", "replay", &raw_path]);
    assert_eq!(replayed[0]["outcome"], "queued", "{replayed}");
    let inbox = json_of(&base, &["webhooks", "inbox"]);
    assert_eq!(inbox.as_array().map(Vec::len), Some(1), "{inbox}");
    assert_eq!(inbox[0]["payment_id"], at_ivpay.payment_id.as_str());
    assert_eq!(inbox[0]["claimed_status"], "PAID");
    assert_eq!(
        inbox[0]["body"],
        std::fs::read_to_string(&raw).expect("read").as_str(),
        "kept verbatim"
    );
    let (ok, table) = cli(&base, &["webhooks", "inbox"], true);
    assert!(
        ok && table.contains("CLAIMED_STATUS") && table.contains("PAID"),
        "{table}"
    );

    // IVPAY answers again, and the payment is paid there: the webhook is confirmed.
    sandbox
        .set_faults(FaultPlan::default())
        .expect("faults off");
    sandbox
        .set_status(
            &at_ivpay.payment_id,
            ivpay_domain::PaymentStatus::Paid,
            false,
        )
        .expect("paid at IVPAY");
    wait_until("the inbox to empty", async || {
        json_of(&base, &["webhooks", "inbox"])
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    let got = json_of(&base, &["payments", "get", &unknown[0]]);
    assert_eq!(got["status"], "PAID", "{got}");

    // The stored webhook again: it claims what the payment has, so it is a duplicate.
    let stored = json_of(&base, &["webhooks", "replay", "--payment", &unknown[0]]);
    assert_eq!(stored["replayed"], 1, "{stored}");
    assert_eq!(stored["outcomes"], json!(["duplicate"]));

    // Many bodies on a terminal: progress on one line, then the results.
    let many = dir.path().join("many.jsonl");
    let line = format!(
        "{{\"payment_id\":\"{}\",\"status\":\"PAID\"}}\n",
        at_ivpay.payment_id
    );
    std::fs::write(&many, line.repeat(3) + "not json\n").expect("write");
    let bin = env!("CARGO_BIN_EXE_ivpay-app");
    let command = format!(
        "IVPAY_LOG__FILTER=error {bin} webhooks replay --service {base} {}",
        many.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("IVPAY_TABLES")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("replaying webhooks: 1/4")
            && shown.contains("replaying webhooks: 4/4 (1 failed)"),
        "{shown}"
    );
    assert!(
        !out.status.success(),
        "a failed replay fails the command: {shown}"
    );
    assert!(
        shown.contains("duplicate") && shown.contains("1 of 4 webhook(s) could not be replayed"),
        "{shown}"
    );

    let page = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("ivpay_webhook_replays_total{outcome=\"duplicate\"} 4"),
        "one stored and three raw replays were duplicates"
    );

    let _ = stop.send(());
    running.await.expect("task").expect("clean stop");
}
