//! Signed outbound notifications over real HTTP: the service, its database, the sandbox
//! as IVPAY, and a receiver of the test's own that answers as each test scripts it
//! (2xx, 500, slowly, 410). Every flow runs on SQLite, and on PostgreSQL when configured.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::support::{Backend, KEY, TestApp, fresh_db, json, spawn_app_with};

on_both_backends!(
    every_change_reaches_a_healthy_receiver_signed_and_in_order,
    a_failing_receiver_is_retried_then_redelivered,
    a_slow_receiver_runs_into_the_time_limit,
    a_410_disables_the_endpoint_and_recover_sends_again,
    private_addresses_are_refused_unless_allowed,
);

const ORDER: &str = r#"{"amount_fiat":"10.50","currency_fiat":"USD","foreign_id":"order-42"}"#;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    Fail,
    Slow,
    Gone,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Script {
    answer: Option<Answer>,
    received: Vec<Received>,
}

/// A receiver on 127.0.0.1 whose answer the test sets.
#[derive(Clone)]
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start(answer: Answer) -> Self {
        let script = Arc::new(Mutex::new(Script {
            answer: Some(answer),
            received: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            script,
        }
    }

    fn answer(&self, answer: Answer) {
        self.script.lock().expect("script").answer = Some(answer);
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().expect("script").received.clone()
    }

    /// Waits until `done` holds for what arrived, or fails after `within`.
    async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver did not get what was expected in {within:?}; got {:?}",
                got.iter().map(Received::json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let answer = {
        let mut s = script.lock().expect("script");
        s.received.push(Received { headers, body });
        s.answer.unwrap_or(Answer::Ok)
    };
    match answer {
        Answer::Ok => (StatusCode::NO_CONTENT, ""),
        Answer::Fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "receiver broke: try later",
        ),
        Answer::Gone => (StatusCode::GONE, "no such hook"),
        Answer::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::NO_CONTENT, "")
        }
    }
}

/// The service with quick delivery: attempts every 50 ms, a 1 s time limit and a retry
/// schedule of `schedule` seconds.
async fn app_with(
    backend: Backend,
    schedule: &[u64],
    allow_private: Option<bool>,
) -> Option<(TestApp, ivpay_persistence::testing::TestDatabase)> {
    let db = fresh_db(backend).await?;
    let schedule: Vec<Duration> = schedule.iter().map(|s| Duration::from_secs(*s)).collect();
    let app = spawn_app_with(db.url(), |s| {
        s.notify.interval = Duration::from_millis(50);
        s.notify.timeout = Duration::from_secs(1);
        s.notify.retry_schedule = schedule;
        s.notify.allow_private_targets = allow_private;
    })
    .await;
    Some((app, db))
}

/// Adds an endpoint for the development client; answers its id and secret.
async fn add_endpoint(app: &TestApp, url: &str, events: Option<&[&str]>) -> (String, String) {
    let mut body = serde_json::json!({"client": "dev", "url": url});
    if let Some(events) = events {
        body["events"] = serde_json::json!(events);
    }
    let (status, answer) = app
        .send_as(
            KEY,
            reqwest::Method::POST,
            "/admin/endpoints",
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let data = &answer["data"];
    assert!(
        data["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{answer}"
    );
    (
        data["id"].as_str().expect("id").to_owned(),
        data["secret"].as_str().expect("secret").to_owned(),
    )
}

/// Creates a payment, picks a coin and pays on the sandbox's checkout page; answers our id.
async fn create_and_pay(app: &TestApp) -> String {
    let (status, body) = app.create(ORDER, None).await;
    assert_eq!(status, 200, "{body}");
    let created = json(&body);
    let url = created["data"]["payment_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(app.checkout(&url, "coin", &[("coin", "USDT")]).await, 303);
    assert_eq!(app.checkout(&url, "pay", &[]).await, 303);
    created["data"]["id"].as_str().expect("our id").to_owned()
}

/// The delivery log of one endpoint, newest first.
async fn log(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let (status, page) = app
        .send_as(
            KEY,
            reqwest::Method::GET,
            &format!("/admin/notifications?endpoint={endpoint}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["data"]["items"].as_array().expect("items").clone()
}

fn verified(secret: &str, r: &Received) -> bool {
    ivpay_signing::verify_now(
        &[ivpay_signing::SigningSecret::parse(secret).expect("a secret")],
        &r.headers,
        &r.body,
    )
    .is_ok()
}

async fn every_change_reaches_a_healthy_receiver_signed_and_in_order(backend: Backend) {
    let Some((app, _db)) = app_with(backend, &[1], None).await else {
        return;
    };
    let receiver = Receiver::start(Answer::Ok).await;
    let (endpoint, secret) = add_endpoint(&app, &receiver.url, None).await;
    let id = create_and_pay(&app).await;
    app.wait_for_status(&id, "PAID", Duration::from_secs(10))
        .await;
    let got = receiver
        .wait_for(Duration::from_secs(10), |r| {
            r.iter().any(|r| r.json()["type"] == "payment.paid")
        })
        .await;
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        types.first().map(String::as_str),
        Some("payment.created"),
        "{types:?}"
    );
    assert!(types.contains(&"payment.paid".to_owned()), "{types:?}");
    for r in &got {
        assert!(verified(&secret, r), "a valid signature on {:?}", r.json());
        assert!(r.header("webhook-id").starts_with("msg_"));
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.json()["data"]["id"], id);
    }
    // A receiver orders them by sequence; within one payment it only grows.
    let sequences: Vec<u64> = got
        .iter()
        .map(|r| r.json()["sequence"].as_u64().expect("sequence"))
        .collect();
    let mut sorted = sequences.clone();
    sorted.sort_unstable();
    assert_eq!(
        sequences, sorted,
        "delivered in the order of the changes here"
    );
    // The last notice carries the payment as the API shows it.
    let read = app.get(&format!("/payment/{id}")).await;
    let paid = got
        .iter()
        .rev()
        .find(|r| r.json()["type"] == "payment.paid")
        .expect("paid");
    assert_eq!(paid.json()["data"], read["data"]);
    // And the log says every one was delivered, at the first attempt.
    let entries = log(&app, &endpoint).await;
    assert_eq!(entries.len(), got.len(), "{entries:?}");
    for e in &entries {
        assert_eq!(e["state"], "delivered", "{e}");
        assert_eq!(e["attempts"], 1, "{e}");
    }
    // A second endpoint that wants only `payment.paid` gets nothing else.
    let picky = Receiver::start(Answer::Ok).await;
    let (_, picky_secret) = add_endpoint(&app, &picky.url, Some(&["payment.paid"])).await;
    let second = create_and_pay(&app).await;
    picky
        .wait_for(Duration::from_secs(10), |r| !r.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_all = picky.received();
    assert_eq!(got_all.len(), 1, "only the paid notice");
    assert_eq!(got_all[0].json()["type"], "payment.paid");
    assert_eq!(got_all[0].json()["data"]["id"], second);
    assert!(verified(&picky_secret, &got_all[0]));
    app.stop().await;
}

async fn a_failing_receiver_is_retried_then_redelivered(backend: Backend) {
    // One retry after a second, then failed.
    let Some((app, _db)) = app_with(backend, &[1], None).await else {
        return;
    };
    let receiver = Receiver::start(Answer::Fail).await;
    let (endpoint, secret) = add_endpoint(&app, &receiver.url, Some(&["payment.created"])).await;
    let (status, body) = app.create(ORDER, None).await;
    assert_eq!(status, 200, "{body}");
    let got = receiver
        .wait_for(Duration::from_secs(10), |r| r.len() >= 2)
        .await;
    // The same message both times: one webhook-id, one body.
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let failed = loop {
        let entries = log(&app, &endpoint).await;
        if entries.first().is_some_and(|e| e["state"] == "failed") {
            break entries[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed["attempts"], 2, "{failed}");
    assert_eq!(failed["last_status"], 500, "{failed}");
    let id = failed["id"].as_str().expect("id");
    let (status, detail) = app
        .send_as(
            KEY,
            reqwest::Method::GET,
            &format!("/admin/notifications/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let attempts = detail["data"]["attempt_log"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["excerpt"], "receiver broke: try later");
    let gap = attempts[1]["at"].as_i64().expect("at") - attempts[0]["at"].as_i64().expect("at");
    assert!(
        (1..=3).contains(&gap),
        "the retry waited the schedule's second: {gap}"
    );

    receiver.answer(Answer::Ok);
    let (status, again) = app
        .send_as(
            KEY,
            reqwest::Method::POST,
            &format!("/admin/notifications/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let got = receiver
        .wait_for(Duration::from_secs(10), |r| r.len() >= 3)
        .await;
    assert!(verified(&secret, &got[2]));
    assert_eq!(got[2].header("webhook-id"), got[0].header("webhook-id"));
    let delivered = loop {
        let entries = log(&app, &endpoint).await;
        if entries[0]["state"] == "delivered" {
            break entries[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(delivered["attempts"], 3, "{delivered}");
    app.stop().await;
}

async fn a_slow_receiver_runs_into_the_time_limit(backend: Backend) {
    let Some((app, _db)) = app_with(backend, &[60], None).await else {
        return;
    };
    let receiver = Receiver::start(Answer::Slow).await;
    let (endpoint, _) = add_endpoint(&app, &receiver.url, Some(&["payment.created"])).await;
    let (status, body) = app.create(ORDER, None).await;
    assert_eq!(status, 200, "{body}");
    let entry = loop {
        let entries = log(&app, &endpoint).await;
        if entries.first().is_some_and(|e| e["attempts"] == 1) {
            break entries[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(entry["state"], "pending", "retried later: {entry}");
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out")),
        "{entry}"
    );
    let next = entry["next_attempt_at"].as_i64().expect("next attempt");
    let written = entry["created_at"].as_i64().expect("created");
    assert!(
        next - written >= 50,
        "the next attempt follows the schedule: {entry}"
    );
    app.stop().await;
}

async fn a_410_disables_the_endpoint_and_recover_sends_again(backend: Backend) {
    let Some((app, _db)) = app_with(backend, &[1], None).await else {
        return;
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 1;
    let receiver = Receiver::start(Answer::Gone).await;
    let (endpoint, _) = add_endpoint(&app, &receiver.url, Some(&["payment.created"])).await;
    app.create(ORDER, None).await;
    receiver
        .wait_for(Duration::from_secs(10), |r| r.len() == 1)
        .await;
    let shown = loop {
        let (_, shown) = app
            .send_as(
                KEY,
                reqwest::Method::GET,
                &format!("/admin/endpoints/{endpoint}"),
                None,
            )
            .await;
        if shown["data"]["enabled"] == false {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shown["data"]["disabled_reason"], "gone", "{shown}");
    // Disabled: the next payment's notice is not sent.
    app.create(ORDER, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing sent to a disabled endpoint"
    );

    // The receiver is back: enable, recover everything since before the first.
    receiver.answer(Answer::Ok);
    let (status, _) = app
        .send_as(
            KEY,
            reqwest::Method::POST,
            &format!("/admin/endpoints/{endpoint}/enable"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, recovered) = app
        .send_as(
            KEY,
            reqwest::Method::POST,
            &format!("/admin/endpoints/{endpoint}/recover"),
            Some(&format!(r#"{{"since":{since}}}"#)),
        )
        .await;
    assert_eq!(status, 200, "{recovered}");
    assert_eq!(recovered["data"]["resent"], 2, "{recovered}");
    receiver
        .wait_for(Duration::from_secs(10), |r| r.len() == 3)
        .await;
    app.stop().await;
}

async fn private_addresses_are_refused_unless_allowed(backend: Backend) {
    let Some((app, _db)) = app_with(backend, &[60], Some(false)).await else {
        return;
    };
    let receiver = Receiver::start(Answer::Ok).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let (literal, _) = add_endpoint(&app, &receiver.url, Some(&["payment.created"])).await;
    let (named, _) = add_endpoint(&app, &by_name, Some(&["payment.created"])).await;
    app.create(ORDER, None).await;
    for endpoint in [&literal, &named] {
        let entry = loop {
            let entries = log(&app, endpoint).await;
            if entries.first().is_some_and(|e| e["attempts"] == 1) {
                break entries[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            entry["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("refused")),
            "{entry}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    app.stop().await;
}
