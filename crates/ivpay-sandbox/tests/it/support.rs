//! Shared test pieces: an HTTP client, a webhook receiver, sandbox setups.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxClock, SandboxConfig, SandboxServer};
use serde_json::{Value, json};

pub(crate) const KEY: &str = "test-key";
pub(crate) const START: i64 = 1_726_248_776;

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A client like the real one: no proxy, no redirects. The workspace's reqwest has rustls
/// without a default provider, so give it one.
pub(crate) fn client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A config with one key, a manual clock and fast webhook retries.
pub(crate) fn config() -> SandboxConfig {
    let mut config = SandboxConfig {
        clock: SandboxClock::manual(START),
        ..SandboxConfig::default()
    }
    .with_merchant(MerchantConfig::new(KEY));
    config.webhooks.retry_interval = Duration::from_millis(30);
    // Long, so a held webhook is released by the next one, not by the timer, even on a
    // slow machine; the test of the timer shortens it.
    config.webhooks.reorder_hold = Duration::from_secs(5);
    config
}

pub(crate) async fn spawn() -> SandboxServer {
    Sandbox::spawn(config()).await.expect("sandbox starts")
}

/// A sandbox whose key posts webhooks to a fresh receiver.
pub(crate) async fn spawn_with_receiver(statuses: &[u16]) -> (SandboxServer, Receiver) {
    let receiver = Receiver::start(statuses).await;
    let config = config().with_merchant(MerchantConfig::new(KEY).with_webhook(receiver.url()));
    let sb = Sandbox::spawn(config).await.expect("sandbox starts");
    (sb, receiver)
}

pub(crate) fn order(foreign_id: &str) -> Value {
    json!({
        "amount_fiat": "10.00",
        "currency_fiat": "USD",
        "foreign_id": foreign_id,
        "url_success": "https://shop.example/ok",
        "url_failed": "https://shop.example/failed",
    })
}

pub(crate) async fn post_create(base: &str, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{base}/payment/create"))
        .header("Content-Type", "application/json")
        .header("X-API-KEY", key)
        .body(body.to_string())
        .send()
        .await
        .expect("create answered")
}

pub(crate) async fn get_payment(base: &str, key: &str, id: &str) -> reqwest::Response {
    client()
        .get(format!("{base}/payment/{id}"))
        .header("Content-Type", "application/json")
        .header("X-API-KEY", key)
        .send()
        .await
        .expect("get answered")
}

pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// Creates a payment and returns its id.
pub(crate) async fn create_ok(base: &str, foreign_id: &str) -> String {
    let response = post_create(base, KEY, &order(foreign_id)).await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    body["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned()
}

pub(crate) async fn status_of(base: &str, id: &str) -> String {
    let body = json_of(get_payment(base, KEY, id).await).await;
    body["data"]["status"].as_str().expect("status").to_owned()
}

/// One webhook as received.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub(crate) api_key: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Value,
    pub(crate) raw: String,
}

impl Hit {
    pub(crate) fn status(&self) -> &str {
        self.body["status"].as_str().unwrap_or("")
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    always: Option<u16>,
}

/// A webhook receiver on a free port: records every POST to `/hook`, answers the given
/// statuses in order and then 200. Also serves `GET /thanks` and `GET /sorry` pages for
/// the checkout redirects.
pub(crate) struct Receiver {
    addr: std::net::SocketAddr,
    state: ReceiverState,
}

impl Receiver {
    pub(crate) async fn start(statuses: &[u16]) -> Self {
        Self::start_with(ReceiverState {
            answers: Arc::new(Mutex::new(statuses.iter().copied().collect())),
            ..ReceiverState::default()
        })
        .await
    }

    /// A receiver that answers `status` to everything.
    pub(crate) async fn always(status: u16) -> Self {
        Self::start_with(ReceiverState {
            always: Some(status),
            ..ReceiverState::default()
        })
        .await
    }

    async fn start_with(state: ReceiverState) -> Self {
        let app = Router::new()
            .route("/hook", post(hook))
            .route(
                "/thanks",
                get(|| async { Html("<h1 id=\"thanks\">Thanks</h1>") }),
            )
            .route(
                "/sorry",
                get(|| async { Html("<h1 id=\"sorry\">Sorry</h1>") }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/hook", self.base())
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().expect("hits").clone()
    }

    /// Waits (up to 5 s) until at least `n` webhooks arrived.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Hit> {
        for _ in 0..500 {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} webhooks, got {:?}", self.hits());
    }
}

async fn hook(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let raw = String::from_utf8_lossy(&body).into_owned();
    state.hits.lock().expect("hits").push(Hit {
        api_key: header("x-api-key"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw,
    });
    let code = state
        .always
        .or_else(|| state.answers.lock().expect("answers").pop_front())
        .unwrap_or(200);
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}
