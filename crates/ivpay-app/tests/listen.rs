//! `ivpay-app notifications listen`, as a developer runs it: the real binary serving in
//! sandbox mode, a second one listening with `--forward-to` a receiver of this test; the
//! README's walkthrough (create, pay on the checkout page) must reach the receiver signed,
//! be printed as it arrives, and Ctrl-C (here SIGTERM) must disable the endpoint.

mod common;

use common::free_port;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

const KEY: &str = "dev-client-key";

/// A child process stopped (SIGTERM, then killed) when dropped.
struct Process(Child);

impl Process {
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
    }

    /// Waits up to `within` for the process to exit on its own.
    fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.terminate();
        if !self.wait_exit(Duration::from_secs(5)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The lines a child prints, as they come.
fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("piped stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    lines
}

async fn wait_until<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {within:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receive(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    got.lock().expect("received").push((headers, body));
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_and_forwards_the_walkthroughs_notices_signed_then_disables_its_endpoint() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ivpay.db").display()
    );
    let _serve = Process(
        Command::new(env!("CARGO_BIN_EXE_ivpay-app"))
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("IVPAY_DATABASE__URL", &db)
            .env("IVPAY_NOTIFY__INTERVAL_MILLIS", "50")
            .env("IVPAY_LOG__FILTER", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts"),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    assert!(
        common::ready(&http, &base).await,
        "the service became ready"
    );

    // The developer's own receiver.
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = format!("http://{}/hook", listener.local_addr().expect("address"));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut listen = Process(
        Command::new(env!("CARGO_BIN_EXE_ivpay-app"))
            .args(["notifications", "listen", "--forward-to", &receiver])
            .current_dir(dir.path())
            .env_clear()
            .env("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("IVPAY_LOG__FILTER", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("listen starts"),
    );
    let printed = collect_lines(&mut listen.0);
    let secret = wait_until("the signing secret", Duration::from_secs(10), || {
        printed
            .lock()
            .expect("lines")
            .iter()
            .find_map(|l| l.strip_prefix("Signing secret: ").map(str::to_owned))
    })
    .await;
    let secret = ivpay_signing::SigningSecret::parse(&secret).expect("a whsec_ secret");

    // The walkthrough: create, choose a coin, pay.
    let created: Value = http
        .post(format!("{base}/payment/create"))
        .header("X-API-KEY", KEY)
        .json(&serde_json::json!({"amount_fiat": "10.00", "currency_fiat": "USD"}))
        .send()
        .await
        .expect("create answers")
        .json()
        .await
        .expect("JSON");
    let id = created["data"]["id"].as_str().expect("our id").to_owned();
    let url = created["data"]["payment_url"]
        .as_str()
        .expect("url")
        .to_owned();
    for (action, form) in [("coin", vec![("coin", "USDT")]), ("pay", vec![])] {
        let status = http
            .post(format!("{url}/{action}"))
            .form(&form)
            .send()
            .await
            .expect("checkout answers")
            .status();
        assert_eq!(status.as_u16(), 303, "{action}");
    }

    let got = wait_until(
        "payment.paid at the receiver",
        Duration::from_secs(15),
        || {
            let got = received.lock().expect("received").clone();
            got.iter()
                .any(|(_, b)| {
                    serde_json::from_slice::<Value>(b).is_ok_and(|v| v["type"] == "payment.paid")
                })
                .then_some(got)
        },
    )
    .await;
    for (headers, body) in &got {
        ivpay_signing::verify_now(std::slice::from_ref(&secret), headers, body)
            .expect("forwarded with its signature intact");
        let notice: Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(notice["data"]["id"], id);
    }
    let kinds: Vec<String> = got
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).expect("JSON")["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("payment.created"),
        "{kinds:?}"
    );

    let lines = printed.lock().expect("lines").clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("payment.paid") && l.contains(&id) && l.contains("[signature ok]")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&receiver) && l.contains("204")),
        "each forward's answer is printed: {lines:#?}"
    );

    // Ctrl-C: the endpoint is disabled and the command ends.
    listen.terminate();
    assert!(listen.wait_exit(Duration::from_secs(10)), "listen exits");
    let endpoints: Value = http
        .get(format!("{base}/admin/endpoints"))
        .header("X-API-KEY", KEY)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let all = endpoints["data"].as_array().expect("endpoints");
    assert_eq!(all.len(), 1, "{endpoints}");
    assert_eq!(all[0]["enabled"], false, "{endpoints}");
    assert_eq!(all[0]["description"], "ivpay-app notifications listen");
}
