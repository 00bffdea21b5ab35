//! `spawn_app`: the real service on port 0 with a fresh database and its embedded sandbox
//! as IVPAY. SQLite in a temporary file by default; PostgreSQL (a fresh database on the
//! server at `IVPAY_TEST_DATABASE_URL`) for the `_on_postgres` variants.

use std::time::Duration;

use ivpay_app::{App, Settings};
use ivpay_persistence::testing::TestDatabase;
use ivpay_sandbox::{Sandbox, SandboxServer};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const KEY: &str = ivpay_app::DEV_CLIENT_KEY;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for `backend`, or `None` (saying so) when PostgreSQL is not
/// configured. With `IVPAY_REQUIRE_POSTGRES=1` a missing server fails the test instead.
pub(crate) async fn fresh_db(backend: Backend) -> Option<TestDatabase> {
    match backend {
        Backend::Sqlite => Some(TestDatabase::sqlite()),
        Backend::Postgres => TestDatabase::postgres("ivpay_e2e_", "an e2e flow").await,
    }
}

/// A running service.
pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) sandbox: Sandbox,
    /// Where the embedded sandbox listens (its checkout pages are under it).
    pub(crate) sandbox_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the service on `db_url` with quick reconciliation (first check after 1 s).
pub(crate) async fn spawn_app(db_url: &str) -> TestApp {
    spawn_app_with(db_url, |_| {}).await
}

/// As [`spawn_app`], with `adjust` applied to the settings last.
pub(crate) async fn spawn_app_with(db_url: &str, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let app = App::build(quick_settings(db_url, adjust))
        .await
        .expect("service starts");
    let sandbox_url = app.info().sandbox_url.clone().expect("embedded sandbox");
    let sandbox = app.sandbox().expect("embedded sandbox").sandbox().clone();
    run(app, sandbox, sandbox_url)
}

/// The service in live mode against `upstream`, a sandbox of the test's own (several
/// merchants, say), with `adjust` applied last; `ivpay.api_key` must be one of its keys.
pub(crate) async fn spawn_app_against(
    db_url: &str,
    upstream: &SandboxServer,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let settings = quick_settings(db_url, |s| {
        s.ivpay.base_url = upstream.base_url().parse().expect("sandbox URL");
        s.ivpay.allow_http = true;
        adjust(s);
    });
    let app = App::build(settings).await.expect("service starts");
    run(
        app,
        upstream.sandbox().clone(),
        upstream.base_url().to_owned(),
    )
}

fn quick_settings(db_url: &str, adjust: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().expect("address");
    settings.database.url = db_url.parse().expect("a database URL");
    settings.reconciler.first_check = Duration::from_secs(1);
    settings.reconciler.interval = Duration::from_secs(1);
    settings.reconciler.max_delay = Duration::from_secs(2);
    adjust(&mut settings);
    settings
}

fn run(app: App, sandbox: Sandbox, sandbox_url: String) -> TestApp {
    let base = app.info().service_url.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("service runs");
    });
    TestApp {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        sandbox,
        sandbox_url,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the service the way SIGTERM would and waits until it is down.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("service task");
        }
    }

    pub(crate) async fn create(&self, body: &str, key: Option<&str>) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/payment/create", self.base))
            .header("X-API-KEY", KEY)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.expect("create answers");
        (res.status().as_u16(), res.text().await.expect("body"))
    }

    /// A request to our API with `key` as `X-API-KEY`: status and body.
    pub(crate) async fn send_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-API-KEY", key);
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_owned());
        }
        let res = req.send().await.expect("answers");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .header("X-API-KEY", KEY)
            .send()
            .await
            .expect("get answers")
            .json()
            .await
            .expect("JSON")
    }

    /// A payment's history, oldest first.
    pub(crate) async fn events(&self, payment_id: &str) -> Vec<Value> {
        let events = self.get(&format!("/payment/{payment_id}/events")).await;
        events["data"]
            .as_array()
            .unwrap_or_else(|| panic!("events of {payment_id}: {events}"))
            .clone()
    }

    /// Presses a button on the sandbox's checkout page, as a browser's form post would.
    pub(crate) async fn checkout(
        &self,
        payment_url: &str,
        action: &str,
        form: &[(&str, &str)],
    ) -> u16 {
        self.http
            .post(format!("{payment_url}/{action}"))
            .form(form)
            .send()
            .await
            .expect("checkout answers")
            .status()
            .as_u16()
    }

    /// Polls our API until the payment has `status`, or gives up after `within`.
    pub(crate) async fn wait_for_status(
        &self,
        payment_id: &str,
        status: &str,
        within: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.get(&format!("/payment/{payment_id}")).await;
            if v["data"]["status"] == status || tokio::time::Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON body")
}
