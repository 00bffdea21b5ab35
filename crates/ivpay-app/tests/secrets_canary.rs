//! Secrets never leak. The real binary runs with trace logging and distinctive canary
//! secrets (two clients' keys, the admin key, the IVPAY keys of two merchant accounts, a
//! notification endpoint's signing secret, the key that seals it in the database and, on
//! PostgreSQL, the database password; all in [`SECRETS`]), IVPAY is a sandbox in this
//! process that knows both canary merchant keys, and every flow runs over HTTP: creates,
//! replays, reads, listing, history, refresh, webhooks sent by the sandbox and forged ones,
//! wrong keys everywhere, another client's payment, the admin routes, upstream failures,
//! the operations routes and invalid bodies. Then no canary may appear in the logs (stdout
//! and stderr), in any response body or header (`/metrics` included), or in the database:
//! every row of every table read as text through SQL, and on SQLite the raw bytes of the
//! database file, its WAL and its shared-memory file. A start that fails (a bad setting, a
//! database the server does not have) must not print one either.
//!
//! In the same file, webhook authentication against the binary: a webhook with a wrong key
//! as long as the merchant key, with a client's key, with the admin key, with an empty
//! key or with none is answered 401 and writes nothing (rows counted in `webhook_inbox`
//! and `payment_events` through SQL; the payment's status and history unchanged), while
//! the same notices with the merchant key are written, so the counting is shown to see a
//! write.
//!
//! All run on SQLite, and on PostgreSQL when `IVPAY_TEST_DATABASE_URL` is set (a fresh
//! database each; `IVPAY_REQUIRE_POSTGRES=1` fails instead of skipping).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ivpay_domain::PaymentStatus;
use ivpay_persistence::testing::TestDatabase;
use ivpay_sandbox::{
    FaultPlan, HttpFault, MerchantConfig, RouteFaults, Sandbox, SandboxConfig, SandboxServer,
    WebhookPolicy,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

const CLIENT_KEY: &str = "cnry-client-key-4b1d7e9a2f6c";
/// The key of a second client, `kiosk`, whose payments go through IVPAY account `pos2`.
const KIOSK_KEY: &str = "cnry-kiosk-key-6d2a8f0c3e9b";
const ADMIN_KEY: &str = "cnry-admin-key-8e3f0a5c1d7b";
const MERCHANT_KEY: &str = "cnry-merchant-key-2c9e6b4f0a1d";
/// The IVPAY key of the merchant's second account, `pos2`.
const POS2_KEY: &str = "cnry-pos2-merchant-key-5e8b1f7a0c4d";
/// The signing secret of notification endpoint `hooks` (base64 of
/// `cnry-endpoint-secret-9f3a7c0e`).
const ENDPOINT_SECRET: &str = "whsec_Y25yeS1lbmRwb2ludC1zZWNyZXQtOWYzYTdjMGU=";
/// The key that seals endpoint secrets in the database (base64 of 32 bytes
/// `cnry-sealing-key-3b7e1d9f0a5c42d`).
const SEALING_KEY: &str = "Y25yeS1zZWFsaW5nLWtleS0zYjdlMWQ5ZjBhNWM0MmQ=";
/// Put in the PostgreSQL URL (the local server trusts, so any password connects).
const DB_PASSWORD: &str = "cnry-db-password-7a0f3e5d9c2b";

/// Every secret the service is given, by what it is. Each is looked for everywhere; add
/// new ones here.
const SECRETS: &[(&str, &str)] = &[
    ("client key (clients.shop)", CLIENT_KEY),
    ("client key (clients.kiosk.key)", KIOSK_KEY),
    ("admin key (admin.key)", ADMIN_KEY),
    ("IVPAY merchant key (ivpay.api_key)", MERCHANT_KEY),
    (
        "IVPAY key of account pos2 (ivpay.accounts.pos2.api_key)",
        POS2_KEY,
    ),
    ("database password (database.url)", DB_PASSWORD),
    (
        "endpoint signing secret (notify.endpoints.hooks.secret)",
        ENDPOINT_SECRET,
    ),
    ("sealing key (notify.secrets_keys)", SEALING_KEY),
];

/// The settings that hand the service its secrets (the database password aside).
const SECRET_SETTINGS: &[(&str, &str)] = &[
    ("IVPAY_IVPAY__API_KEY", MERCHANT_KEY),
    ("IVPAY_IVPAY__ACCOUNTS__POS2__API_KEY", POS2_KEY),
    ("IVPAY_CLIENTS__SHOP", CLIENT_KEY),
    ("IVPAY_CLIENTS__KIOSK__KEY", KIOSK_KEY),
    ("IVPAY_CLIENTS__KIOSK__ACCOUNT", "pos2"),
    ("IVPAY_ADMIN__KEY", ADMIN_KEY),
    // An endpoint that hears every notice and refuses the connection: each is signed
    // and attempted; its secret is sealed in the database.
    ("IVPAY_NOTIFY__ENDPOINTS__HOOKS__CLIENT", "shop"),
    (
        "IVPAY_NOTIFY__ENDPOINTS__HOOKS__URL",
        "http://127.0.0.1:9/hook",
    ),
    ("IVPAY_NOTIFY__ENDPOINTS__HOOKS__SECRET", ENDPOINT_SECRET),
    ("IVPAY_NOTIFY__ALLOW_PRIVATE_TARGETS", "true"),
    ("IVPAY_NOTIFY__SECRETS_KEYS", SEALING_KEY),
];

const API_KEY: &str = "X-API-KEY";
const JSON: &str = "application/json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_on_sqlite() {
    no_secret_leaks(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_on_postgres() {
    no_secret_leaks(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_the_merchant_key_is_refused_and_writes_nothing_on_sqlite() {
    refused_webhooks_write_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_the_merchant_key_is_refused_and_writes_nothing_on_postgres() {
    refused_webhooks_write_nothing(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// the canary run

async fn no_secret_leaks(backend: Backend) {
    let Some(db) = fresh_db(backend, "the secrets canary").await else {
        return;
    };
    let service_url = service_db_url(&db, backend);
    if backend == Backend::Postgres {
        assert!(
            service_url.contains(DB_PASSWORD),
            "the canary password is in the URL the service gets"
        );
    }
    let sandbox = sandbox().await;
    let mut service = Service::start(
        &service_url,
        &sandbox,
        &[
            ("IVPAY_RECONCILER__INTERVAL_SECS", "1"),
            ("IVPAY_RECONCILER__FIRST_CHECK_SECS", "1"),
            ("IVPAY_RECONCILER__MAX_DELAY_SECS", "2"),
        ],
    )
    .await;
    // IVPAY's webhooks (with the account's canary key in X-API-KEY) go to the service.
    for key in [MERCHANT_KEY, POS2_KEY] {
        sandbox
            .set_merchant(
                MerchantConfig::new(key).with_webhook(format!("{}/webhooks/ivpay", service.base)),
            )
            .expect("webhook URL set");
    }
    let mut http = Http::new(&service.base);
    let ivpay = sandbox.sandbox();

    // ---- creates
    let keyed = order(Some("canary-order-1"));
    let first = http
        .send(
            "create with Idempotency-Key",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .header("Idempotency-Key", "canary-order-1")
                .body(keyed.clone()),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let pid1 = first.json()["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned();
    let id1 = first.json()["data"]["id"].as_str().expect("id").to_owned();
    let replay = http
        .send(
            "create replayed with the same Idempotency-Key",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .header("Idempotency-Key", "canary-order-1")
                .body(keyed),
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let mismatch = http
        .send(
            "the same Idempotency-Key with another body",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .header("Idempotency-Key", "canary-order-1")
                .body(order(Some("another-order"))),
        )
        .await;
    assert!(mismatch.is_client_error(), "{}", mismatch.text);
    let second = http
        .send(
            "create without Idempotency-Key nor foreign_id",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .body(order(None)),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let pid2 = second.json()["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned();

    // ---- reads
    for (what, path) in [
        ("read by IVPAY's id", format!("/payment/{pid1}")),
        ("read by our id", format!("/payment/{id1}")),
        ("read with refresh", format!("/payment/{pid1}?refresh=true")),
        ("history", format!("/payment/{pid1}/events")),
        ("list", "/payments".to_owned()),
        (
            "list filtered",
            "/payments?status=CREATED&limit=1".to_owned(),
        ),
    ] {
        let answer = http.get_as(what, CLIENT_KEY, &path).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.text);
        if let Some(cursor) = answer.json()["data"]["next_cursor"].as_str() {
            let next = http
                .send(
                    "list, next page",
                    http.get(&format!("/payments?limit=1&cursor={cursor}"))
                        .header(API_KEY, CLIENT_KEY),
                )
                .await;
            assert_eq!(next.status, 200, "{}", next.text);
        }
    }

    // ---- a webhook sent by the sandbox: the customer pays
    ivpay
        .set_status(&pid1, PaymentStatus::Paid, false)
        .expect("paid at IVPAY");
    let delivered = ivpay
        .wait_for_deliveries(Duration::from_secs(15), |log| {
            log.iter().any(|d| {
                d.payment_id == pid1 && d.status == PaymentStatus::Paid && d.outcome.is_delivered()
            })
        })
        .await;
    assert!(
        delivered.is_some(),
        "the sandbox's PAID webhook was accepted: {:?}",
        ivpay.deliveries()
    );
    let paid = wait_for_status(&mut http, CLIENT_KEY, &pid1, "PAID").await;
    assert_eq!(paid["data"]["status"], "PAID", "{paid}");
    let events = http
        .get_as(
            "history after the webhook",
            CLIENT_KEY,
            &format!("/payment/{pid1}/events"),
        )
        .await;
    assert!(
        events.json()["data"].as_array().is_some_and(|all| all
            .iter()
            .any(|e| e["source"] == "webhook" && e["to"] == "PAID")),
        "the webhook is in the history: {}",
        events.text
    );

    // ---- the second client, through the second IVPAY account (its key on the create, the
    // confirming GET and the webhook)
    let kiosk = http
        .send(
            "kiosk: create",
            http.post("/payment/create")
                .header(API_KEY, KIOSK_KEY)
                .header("Idempotency-Key", "kiosk-order-1")
                .body(order(Some("kiosk-order-1"))),
        )
        .await;
    assert_eq!(kiosk.status, 200, "{}", kiosk.text);
    let pid3 = kiosk.json()["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned();
    let foreign = http
        .get_as(
            "shop reads the kiosk's payment",
            CLIENT_KEY,
            &format!("/payment/{pid3}"),
        )
        .await;
    assert_eq!(
        foreign.status, 404,
        "another client's payment: {}",
        foreign.text
    );
    ivpay
        .set_status(&pid3, PaymentStatus::Paid, false)
        .expect("paid at IVPAY");
    let paid = wait_for_status(&mut http, KIOSK_KEY, &pid3, "PAID").await;
    assert_eq!(paid["data"]["status"], "PAID", "{paid}");
    for (what, path) in [
        (
            "kiosk: read with refresh",
            format!("/payment/{pid3}?refresh=true"),
        ),
        ("kiosk: history", format!("/payment/{pid3}/events")),
    ] {
        let answer = http.get_as(what, KIOSK_KEY, &path).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.text);
    }
    let listed = http.get_as("kiosk: list", KIOSK_KEY, "/payments").await;
    assert_eq!(listed.status, 200, "{}", listed.text);

    // ---- forged webhooks: wrong keys, the other secrets in IVPAY's place
    let notice =
        json!({"payment_id": pid1, "status": "PAID", "processed_at": 1_726_248_785}).to_string();
    for (what, key) in [
        (
            "webhook with a wrong key",
            Some(same_length_wrong(MERCHANT_KEY)),
        ),
        ("webhook with the client key", Some(CLIENT_KEY.to_owned())),
        ("webhook with the kiosk's key", Some(KIOSK_KEY.to_owned())),
        ("webhook with the admin key", Some(ADMIN_KEY.to_owned())),
        ("webhook without a key", None),
    ] {
        let mut request = http.post("/webhooks/ivpay").body(notice.clone());
        if let Some(key) = key {
            request = request.header(API_KEY, key);
        }
        let answer = http.send(what, request).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
    }

    // ---- our API with wrong keys, the other secrets in a client's place
    // An unknown key is 401; the admin key, known but without the `read` scope, 403.
    for (what, key, status) in [
        (
            "list with a wrong client key",
            Some(same_length_wrong(CLIENT_KEY)),
            401,
        ),
        (
            "list with the merchant key",
            Some(MERCHANT_KEY.to_owned()),
            401,
        ),
        ("list with the pos2 key", Some(POS2_KEY.to_owned()), 401),
        ("list with the admin key", Some(ADMIN_KEY.to_owned()), 403),
        ("list without a key", None, 401),
    ] {
        let mut request = http.get("/payments");
        if let Some(key) = key {
            request = request.header(API_KEY, key);
        }
        let answer = http.send(what, request).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
    }
    for (what, key) in [
        (
            "create with a wrong client key",
            same_length_wrong(CLIENT_KEY),
        ),
        ("create with the merchant key", MERCHANT_KEY.to_owned()),
    ] {
        let answer = http
            .send(
                what,
                http.post("/payment/create")
                    .header(API_KEY, key)
                    .body(order(None)),
            )
            .await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
    }
    let read = http
        .get_as(
            "read with the merchant key",
            MERCHANT_KEY,
            &format!("/payment/{pid1}"),
        )
        .await;
    assert_eq!(read.status, 401, "{}", read.text);

    // ---- upstream failures: IVPAY refuses our key, fails, answers garbage
    ivpay
        .set_faults(FaultPlan {
            create: RouteFaults::script([
                HttpFault::Unauthorized,
                HttpFault::ServerError { status: 503 },
            ]),
            ..FaultPlan::default()
        })
        .expect("faults set");
    let refused = http
        .send(
            "create IVPAY refuses (our key)",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .body(order(Some("canary-refused"))),
        )
        .await;
    assert!(refused.status >= 400, "{}", refused.text);
    let unknown = http
        .send(
            "create IVPAY fails (outcome unknown)",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .header("Idempotency-Key", "canary-unknown")
                .body(order(Some("canary-unknown"))),
        )
        .await;
    assert_eq!(unknown.status, 504, "{}", unknown.text);
    let unknown_id = unknown.json()["id"].as_str().expect("our id").to_owned();
    ivpay
        .set_faults(FaultPlan {
            get: RouteFaults::script([HttpFault::Unauthorized, HttpFault::Garbage]),
            ..FaultPlan::default()
        })
        .expect("faults set");
    for what in [
        "refresh while IVPAY refuses our key",
        "refresh while IVPAY answers garbage",
    ] {
        let answer = http
            .get_as(what, CLIENT_KEY, &format!("/payment/{pid2}?refresh=true"))
            .await;
        // 200 when the reconciler's GET took the fault first; else IVPAY's failure, 502.
        assert!(
            answer.status == 200 || answer.status == 502,
            "{what}: {}",
            answer.text
        );
    }
    ivpay
        .set_faults(FaultPlan::default())
        .expect("faults cleared");

    // ---- the admin routes
    let abandoned = http
        .send(
            "admin: abandon the unknown payment",
            http.post(&format!("/admin/payments/{unknown_id}/abandon"))
                .header(API_KEY, ADMIN_KEY),
        )
        .await;
    assert_eq!(abandoned.status, 200, "{}", abandoned.text);
    let not_open = http
        .send(
            "admin: abandon a created payment",
            http.post(&format!("/admin/payments/{id1}/abandon"))
                .header(API_KEY, ADMIN_KEY),
        )
        .await;
    assert!(not_open.is_client_error(), "{}", not_open.text);
    let link = http
        .send(
            "admin: link without a payment_id",
            http.post(&format!("/admin/payments/{id1}/link"))
                .header(API_KEY, ADMIN_KEY)
                .body("{}"),
        )
        .await;
    assert!(link.is_client_error(), "{}", link.text);
    for (what, key, status) in [
        ("admin with the client key", CLIENT_KEY, 403),
        ("admin with the merchant key", MERCHANT_KEY, 401),
    ] {
        let answer = http
            .send(
                what,
                http.post(&format!("/admin/payments/{id1}/abandon"))
                    .header(API_KEY, key),
            )
            .await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
    }

    // ---- invalid requests, so error bodies are written
    let big = format!(
        r#"{{"amount_fiat":"1.00","currency_fiat":"USD","foreign_id":"{}"}}"#,
        "x".repeat(70_000)
    );
    for (what, body, content_type) in [
        ("create, not JSON", "{".to_owned(), JSON),
        (
            "create, amount as a number",
            r#"{"amount_fiat":10.5,"currency_fiat":"USD"}"#.to_owned(),
            JSON,
        ),
        (
            "create, three decimals",
            r#"{"amount_fiat":"10.505","currency_fiat":"USD"}"#.to_owned(),
            JSON,
        ),
        ("create, empty object", "{}".to_owned(), JSON),
        ("create, not an object", "[1,2]".to_owned(), JSON),
        ("create, text/plain", order(None), "text/plain"),
        ("create, over the body limit", big, JSON),
    ] {
        let answer = http
            .send(
                what,
                http.client
                    .post(format!("{}/payment/create", http.base))
                    .header(API_KEY, CLIENT_KEY)
                    .header("Content-Type", content_type)
                    .body(body),
            )
            .await;
        assert!(answer.is_client_error(), "{what}: {}", answer.text);
    }
    let bad_key = http
        .send(
            "create, unusable Idempotency-Key",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .header("Idempotency-Key", "k".repeat(300))
                .body(order(None)),
        )
        .await;
    assert!(bad_key.is_client_error(), "{}", bad_key.text);
    for (what, body) in [
        ("webhook, not JSON", "not json"),
        ("webhook, no payment_id", "{}"),
        ("webhook, unusable payment_id", r#"{"payment_id":true}"#),
    ] {
        let answer = http
            .send(
                what,
                http.post("/webhooks/ivpay")
                    .header(API_KEY, MERCHANT_KEY)
                    .body(body),
            )
            .await;
        assert!(answer.is_client_error(), "{what}: {}", answer.text);
    }
    let stranger = http
        .send(
            "webhook for a payment nobody knows",
            http.post("/webhooks/ivpay")
                .header(API_KEY, MERCHANT_KEY)
                .body(r#"{"payment_id":"feedfacefeedfacefeedfacefeedface","status":"PAID",}"#),
        )
        .await;
    assert_eq!(stranger.status, 200, "{}", stranger.text);
    for (what, path) in [
        ("read, unusable id", "/payment/..%2Fetc".to_owned()),
        (
            "read, refresh not a boolean",
            format!("/payment/{pid1}?refresh=maybe"),
        ),
        (
            "read, unknown payment",
            "/payment/0123456789abcdef0123456789abcdef".to_owned(),
        ),
        ("list, unknown filter", "/payments?colour=red".to_owned()),
        ("list, limit 0", "/payments?limit=0".to_owned()),
        ("list, bad cursor", "/payments?cursor=%%%".to_owned()),
        ("no such route", "/nothing/here".to_owned()),
    ] {
        let answer = http.get_as(what, CLIENT_KEY, &path).await;
        assert!(answer.is_client_error(), "{what}: {}", answer.text);
    }
    let wrong_method = http
        .send(
            "wrong method",
            http.client
                .delete(format!("{}/payments", http.base))
                .header(API_KEY, CLIENT_KEY),
        )
        .await;
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.text);

    // ---- the operations routes
    for (what, path) in [
        ("healthz", "/healthz"),
        ("readyz", "/readyz"),
        ("openapi", "/openapi.json"),
        ("docs page", "/docs/"),
    ] {
        let answer = http.send(what, http.get(path)).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.text);
    }
    // Let the reconciler look at the payments (its GETs, its logs) before the last look.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let metrics = http.send("metrics", http.get("/metrics")).await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    assert!(
        metrics.text.contains("ivpay_webhooks_total")
            && metrics.text.contains("ivpay_creates_total"),
        "the metrics page counts what happened: {}",
        metrics.text
    );

    // ---- look everywhere
    let mut findings = Vec::new();
    scan(&mut findings, "the /metrics body", metrics.text.as_bytes());
    for exchange in &http.seen {
        scan(
            &mut findings,
            &format!(
                "the headers of the answer to \"{}\" ({})",
                exchange.what, exchange.status
            ),
            exchange.headers.as_bytes(),
        );
        scan(
            &mut findings,
            &format!(
                "the body of the answer to \"{}\" ({})",
                exchange.what, exchange.status
            ),
            exchange.text.as_bytes(),
        );
    }
    let sqlite_files = sqlite_path(db.url());
    if let Some(path) = &sqlite_files {
        scan_sqlite_files(
            &mut findings,
            path,
            "while the service runs",
            &[&pid1, &pid2],
        );
    }
    let dump = dump_database(db.url()).await;
    assert!(
        dump.contains(&pid1) && dump.contains(&pid2) && dump.contains("feedface"),
        "the dump holds the payments and the inbox: {}",
        &dump[..dump.len().min(2_000)]
    );
    scan(
        &mut findings,
        "the database's rows (SQL dump)",
        dump.as_bytes(),
    );
    scan_encoded(
        &mut findings,
        "the database's rows (SQL dump), hex-encoded",
        dump.as_bytes(),
    );

    let exit = service.stop();
    let logs = service.logs();
    if let Some(path) = &sqlite_files {
        scan_sqlite_files(
            &mut findings,
            path,
            "after the service stopped",
            &[&pid1, &pid2],
        );
    }
    scan(
        &mut findings,
        "the logs (stdout and stderr)",
        logs.as_bytes(),
    );

    // The logs are real: trace filter on, the flows above in them.
    assert!(
        exit.is_some_and(|s| s.success()),
        "the service stopped cleanly on SIGTERM ({exit:?}); logs:\n{}",
        tail(&logs)
    );
    assert!(
        logs.lines()
            .any(|l| l.contains(" DEBUG ") || l.contains(" TRACE ")),
        "debug or trace lines are logged:\n{}",
        tail(&logs)
    );
    for needle in [
        pid1.as_str(),
        pid2.as_str(),
        pid3.as_str(),
        "payment created",
        "webhook read",
        "status applied",
        "request refused",
    ] {
        assert!(
            logs.contains(needle),
            "the logs mention {needle:?}:\n{}",
            tail(&logs)
        );
    }
    assert!(
        logs.lines().count() > 100,
        "{} log lines:\n{logs}",
        logs.lines().count()
    );

    assert!(
        findings.is_empty(),
        "{} secret(s) leaked on {backend:?}:\n{}",
        findings.len(),
        findings.join("\n")
    );
    drop(sandbox);
    if backend == Backend::Postgres {
        db.drop_database().await;
    }
}

/// Polls our API until the payment has `status` (15 s at most); returns the last answer.
async fn wait_for_status(http: &mut Http, key: &str, payment_id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = http
            .get_as("read while waiting", key, &format!("/payment/{payment_id}"))
            .await;
        let value = answer.json();
        if value["data"]["status"] == status || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// webhook authentication

/// What a refused webhook must leave as it was.
#[derive(Debug, PartialEq)]
struct Footprint {
    inbox_rows: i64,
    event_rows: i64,
    status: Value,
    version: Value,
    history: Value,
}

async fn footprint(conn: &DatabaseConnection, http: &mut Http, id: &str) -> Footprint {
    let payment = http
        .get_as("read", CLIENT_KEY, &format!("/payment/{id}"))
        .await
        .json();
    let history = http
        .get_as("history", CLIENT_KEY, &format!("/payment/{id}/events"))
        .await
        .json();
    Footprint {
        inbox_rows: count(conn, "webhook_inbox").await,
        event_rows: count(conn, "payment_events").await,
        status: payment["data"]["status"].clone(),
        version: payment["data"]["version"].clone(),
        history: history["data"].clone(),
    }
}

async fn refused_webhooks_write_nothing(backend: Backend) {
    let Some(db) = fresh_db(backend, "webhook authentication").await else {
        return;
    };
    // No webhook URL: the only notices the service gets are the ones sent below. No
    // reconciler: only an accepted webhook can move the payment.
    let sandbox = sandbox().await;
    let mut service = Service::start(
        &service_db_url(&db, backend),
        &sandbox,
        &[("IVPAY_RECONCILER__ENABLED", "false")],
    )
    .await;
    let mut http = Http::new(&service.base);
    let created = http
        .send(
            "create",
            http.post("/payment/create")
                .header(API_KEY, CLIENT_KEY)
                .body(order(Some("auth-order-1"))),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let pid = created.json()["data"]["payment_id"]
        .as_str()
        .expect("payment_id")
        .to_owned();
    // IVPAY says PAID: a forged PAID notice that got through would be confirmed and applied.
    sandbox
        .sandbox()
        .set_status(&pid, PaymentStatus::Paid, false)
        .expect("paid at IVPAY");
    let conn = sea_orm::Database::connect(db.url())
        .await
        .expect("the test reads the service's database");
    let before = footprint(&conn, &mut http, &pid).await;
    assert_eq!(before.status, "CREATED", "{before:?}");
    let unauthorized_before = metric(&http, "outcome=\"unauthorized\"").await;

    let wrong = same_length_wrong(MERCHANT_KEY);
    assert_eq!(wrong.len(), MERCHANT_KEY.len());
    assert_ne!(wrong, MERCHANT_KEY);
    let keys: [(&str, Option<&str>); 5] = [
        (
            "a wrong key as long as the merchant key",
            Some(wrong.as_str()),
        ),
        ("a client's key", Some(CLIENT_KEY)),
        ("the admin key", Some(ADMIN_KEY)),
        ("an empty key", Some("")),
        ("no key", None),
    ];
    // Accepted, each would write at once: the first an event (it claims the status we
    // hold: recorded as a duplicate in the request), the others an inbox row (then the
    // PAID the sandbox confirms).
    let notices = [
        json!({"payment_id": pid, "status": "CREATED", "processed_at": 1_726_248_700}).to_string(),
        json!({"payment_id": pid, "status": "PAID", "processed_at": 1_726_248_785}).to_string(),
        r#"{"payment_id":"deadbeefdeadbeefdeadbeefdeadbeef","status":"PAID"}"#.to_owned(),
    ];
    let mut refused = 0;
    for (what, key) in keys {
        for notice in &notices {
            let mut request = http.post("/webhooks/ivpay").body(notice.clone());
            if let Some(key) = key {
                request = request.header(API_KEY, key);
            }
            let answer = http.send(what, request).await;
            assert_eq!(answer.status, 401, "{what}, {notice}: {}", answer.text);
            assert_eq!(answer.json()["code"], "unauthorized", "{}", answer.text);
            refused += 1;
            assert_eq!(
                (
                    count(&conn, "webhook_inbox").await,
                    count(&conn, "payment_events").await
                ),
                (before.inbox_rows, before.event_rows),
                "{what}, {notice}: nothing written"
            );
        }
    }
    // The inbox worker, woken by any queued webhook, would have applied one by now.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = footprint(&conn, &mut http, &pid).await;
    assert_eq!(after, before, "refused webhooks changed nothing");
    assert_eq!(
        metric(&http, "outcome=\"unauthorized\"").await - unauthorized_before,
        refused,
        "every refusal counted"
    );

    // The control: the same notices with the merchant key are written, and the count sees it.
    let duplicate = http
        .send(
            "webhook with the merchant key, the status we hold",
            http.post("/webhooks/ivpay")
                .header(API_KEY, MERCHANT_KEY)
                .body(notices[0].clone()),
        )
        .await;
    assert_eq!(duplicate.status, 200, "{}", duplicate.text);
    assert_eq!(
        count(&conn, "payment_events").await,
        before.event_rows + 1,
        "an accepted webhook is written: {}",
        duplicate.text
    );
    let accepted = http
        .send(
            "webhook with the merchant key, PAID",
            http.post("/webhooks/ivpay")
                .header(API_KEY, MERCHANT_KEY)
                .body(notices[1].clone()),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    let paid = wait_for_status(&mut http, CLIENT_KEY, &pid, "PAID").await;
    assert_eq!(paid["data"]["status"], "PAID", "{paid}");

    let _ = conn.close().await;
    let exit = service.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "clean stop: {exit:?}\n{}",
        tail(&service.logs())
    );
    drop(sandbox);
    if backend == Backend::Postgres {
        db.drop_database().await;
    }
}

// ---------------------------------------------------------------------------------------
// start-up failures

/// A service that cannot start says why, on stderr, naming the setting, and repeats no
/// secret: a bad setting next to the secrets, and (on PostgreSQL) a database the server
/// does not have, reached with the canary password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_prints_no_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ivpay.db").display()
    );
    let mut cases = vec![(
        "a bad setting",
        vec![
            ("IVPAY_DATABASE__URL", sqlite.clone()),
            ("IVPAY_SERVER__BIND", "not-an-address".to_owned()),
        ],
        "server.bind",
    )];
    cases.push((
        "a sealing key of the wrong length after a good one",
        vec![
            ("IVPAY_DATABASE__URL", sqlite.clone()),
            (
                "IVPAY_NOTIFY__SECRETS_KEYS",
                format!("{SEALING_KEY},c2hvcnQ="),
            ),
        ],
        "notify.secrets_keys",
    ));
    let admin = std::env::var(ivpay_persistence::testing::DATABASE_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty());
    match admin {
        Some(admin) => {
            let mut url = url::Url::parse(&admin).expect("a database URL");
            url.set_password(Some(DB_PASSWORD)).expect("a password");
            url.set_path("/ivpay_canary_no_such_database");
            cases.push((
                "a database the server does not have",
                vec![("IVPAY_DATABASE__URL", url.to_string())],
                "database.url",
            ));
        }
        None => {
            let required = std::env::var(ivpay_persistence::testing::REQUIRE_POSTGRES_VAR)
                .is_ok_and(|v| v == "1");
            assert!(!required, "PostgreSQL required but not configured");
            // Straight to stderr: libtest hides `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED a failed start on PostgreSQL: {} is not set",
                ivpay_persistence::testing::DATABASE_URL_VAR
            );
        }
    }
    let mut findings = Vec::new();
    for (what, env, key) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivpay-app"));
        cmd.arg("serve").current_dir(dir.path());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("IVPAY_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env_remove("RUST_LOG")
            .envs(SECRET_SETTINGS.iter().copied())
            .env("IVPAY_LOG__FILTER", "trace")
            .envs(env)
            .stdin(Stdio::null());
        let output = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("task")
            .expect("the binary runs");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{what}: it started:\n{printed}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("ivpay: {key}")),
            "{what}: the error names {key}:\n{printed}"
        );
        scan(
            &mut findings,
            &format!("the output of a start with {what}"),
            printed.as_bytes(),
        );
    }
    assert!(
        findings.is_empty(),
        "secrets printed:\n{}",
        findings.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// the service, the sandbox, the database

/// A fresh database for `backend`, or `None` (said on stderr) when PostgreSQL is not
/// configured; with `IVPAY_REQUIRE_POSTGRES=1` that fails instead.
async fn fresh_db(backend: Backend, test: &str) -> Option<TestDatabase> {
    match backend {
        Backend::Sqlite => Some(TestDatabase::sqlite()),
        Backend::Postgres => TestDatabase::postgres("ivpay_canary_", test).await,
    }
}

/// The URL the service gets: on PostgreSQL with the canary password in it.
fn service_db_url(db: &TestDatabase, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => db.url().to_owned(),
        Backend::Postgres => {
            let mut url = url::Url::parse(db.url()).expect("a database URL");
            url.set_password(Some(DB_PASSWORD)).expect("a password");
            url.to_string()
        }
    }
}

/// The IVPAY sandbox, knowing the canary keys of both accounts (and no webhook URL yet);
/// webhooks retried quickly.
async fn sandbox() -> SandboxServer {
    Sandbox::spawn(SandboxConfig {
        merchants: vec![
            MerchantConfig::new(MERCHANT_KEY),
            MerchantConfig::new(POS2_KEY),
        ],
        webhooks: WebhookPolicy {
            retry_interval: Duration::from_millis(200),
            ..WebhookPolicy::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// The real binary, `serve`, its output in files.
struct Service {
    child: Child,
    base: String,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts it on a port of its choosing (read from its banner) and waits until ready.
    async fn start(db_url: &str, sandbox: &SandboxServer, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stdout = dir.path().join("stdout.log");
        let stderr = dir.path().join("stderr.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivpay-app"));
        cmd.arg("serve").current_dir(dir.path());
        // Settings come from here only: nothing inherited may add or change one.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("IVPAY_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env("IVPAY_SERVER__BIND", "127.0.0.1:0")
            .env("IVPAY_DATABASE__URL", db_url)
            .envs(SECRET_SETTINGS.iter().copied())
            .env("IVPAY_IVPAY__BASE_URL", sandbox.base_url())
            .env("IVPAY_IVPAY__ALLOW_HTTP", "true")
            .env("IVPAY_LOG__FILTER", "trace")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let child = cmd.spawn().expect("the service binary starts");
        let mut service = Self {
            child,
            base: String::new(),
            stdout,
            stderr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        service.base = loop {
            let logs = service.logs();
            if let Some(url) = logs
                .lines()
                .find_map(|l| l.strip_prefix("ivpay is listening on "))
            {
                break url.trim().to_owned();
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("the service exited ({status}):\n{logs}");
            }
            assert!(Instant::now() < deadline, "no banner within 30 s:\n{logs}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let http = client();
        for _ in 0..200 {
            if http
                .get(format!("{}/readyz", service.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not become ready:\n{}", service.logs());
    }

    /// Everything it wrote, stdout then stderr.
    fn logs(&self) -> String {
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        format!("{}{}", read(&self.stdout), read(&self.stderr))
    }

    /// SIGTERM, as an operator stops it; killed if still up after 20 s. Its exit status.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// One answer the test received, kept to be searched.
struct Exchange {
    what: String,
    status: u16,
    /// Every header, `name: value` a line.
    headers: String,
    text: String,
}

impl Exchange {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.headers
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }
}

/// Sends requests to the service and keeps every answer.
struct Http {
    client: reqwest::Client,
    base: String,
    seen: Vec<Exchange>,
}

impl Http {
    fn new(base: &str) -> Self {
        Self {
            client: client(),
            base: base.to_owned(),
            seen: Vec::new(),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    /// A POST with a JSON content type.
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", JSON)
    }

    /// A GET of `path` with `key` as `X-API-KEY`: the shape most of the flows take.
    async fn get_as(&mut self, what: &str, key: &str, path: &str) -> &Exchange {
        let request = self.get(path).header(API_KEY, key);
        self.send(what, request).await
    }

    async fn send(&mut self, what: &str, request: reqwest::RequestBuilder) -> &Exchange {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: body: {e}"));
        self.seen.push(Exchange {
            what: what.to_owned(),
            status,
            headers,
            text,
        });
        self.seen.last().expect("just pushed")
    }
}

/// The sum of the `ivpay_webhooks_total` lines with `label` on the service's `/metrics`.
async fn metric(http: &Http, label: &str) -> u64 {
    let page = http
        .get("/metrics")
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
    page.lines()
        .filter(|l| l.starts_with("ivpay_webhooks_total{") && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn order(foreign_id: Option<&str>) -> String {
    let mut body = json!({
        "amount_fiat": "12.34",
        "currency_fiat": "USD",
        "url_success": "https://shop.example/ok",
        "url_failed": "https://shop.example/failed",
    });
    if let Some(f) = foreign_id {
        body["foreign_id"] = json!(f);
    }
    body.to_string()
}

/// `key` with its last character changed: as long as the key, and wrong.
fn same_length_wrong(key: &str) -> String {
    let mut wrong: Vec<char> = key.chars().collect();
    if let Some(last) = wrong.last_mut() {
        *last = if *last == 'x' { 'y' } else { 'x' };
    }
    wrong.into_iter().collect()
}

async fn rows(conn: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(conn: &DatabaseConnection, table: &str) -> i64 {
    rows(conn, &format!("SELECT COUNT(*) FROM {table}"))
        .await
        .first()
        .and_then(|r| r.try_get_by_index::<i64>(0).ok())
        .unwrap_or_else(|| panic!("count of {table}"))
}

/// Every row of every table as text, one line a row, each line naming its table. SQLite:
/// the tables in `sqlite_master` (itself included: the schema), each column cast to text.
/// PostgreSQL: every table of the `public` schema, each row as `row_to_json`.
async fn dump_database(url: &str) -> String {
    let conn = sea_orm::Database::connect(url)
        .await
        .expect("the test reads the service's database");
    let postgres = url.starts_with("postgres");
    let tables: Vec<String> = if postgres {
        rows(
            &conn,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
        )
        .await
    } else {
        rows(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        )
        .await
    }
    .iter()
    .map(|r| r.try_get_by_index::<String>(0).expect("a table name"))
    .chain((!postgres).then(|| "sqlite_master".to_owned()))
    .collect();
    assert!(
        ["payments", "payment_events", "webhook_inbox"]
            .iter()
            .all(|t| tables.iter().any(|n| n == t)),
        "the service's tables: {tables:?}"
    );
    let mut dump = String::new();
    for table in &tables {
        let select = if postgres {
            format!("SELECT row_to_json(t)::text FROM public.\"{table}\" t")
        } else {
            let columns: Vec<String> = rows(
                &conn,
                &format!("SELECT name FROM pragma_table_info('{table}')"),
            )
            .await
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("a column name"))
            .collect();
            assert!(!columns.is_empty(), "columns of {table}");
            let cells: Vec<String> = columns
                .iter()
                .map(|c| format!("'{c}=' || COALESCE(CAST(\"{c}\" AS TEXT), 'NULL')"))
                .collect();
            format!("SELECT {} FROM \"{table}\"", cells.join(" || ' | ' || "))
        };
        for row in rows(&conn, &select).await {
            let text: Option<String> = row.try_get_by_index(0).expect("a row as text");
            dump.push_str(&format!("{table}: {}\n", text.unwrap_or_default()));
        }
    }
    let _ = conn.close().await;
    dump
}

/// The database file of a SQLite URL (`sqlite://PATH?mode=rwc`).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

/// The raw bytes of the database file, its WAL, its shared memory and any rollback
/// journal, as far as they exist. Together they must hold every one of `holds` (while the
/// service runs, the rows may be in the WAL only): proof the bytes searched are the data.
fn scan_sqlite_files(findings: &mut Vec<String>, db: &Path, when: &str, holds: &[&str]) {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::read(&path) {
            Ok(bytes) => {
                scan(
                    findings,
                    &format!("the SQLite file {} ({when})", path.display()),
                    &bytes,
                );
                all.extend_from_slice(&bytes);
            }
            Err(e) => assert!(!suffix.is_empty(), "{}: {e}", path.display()),
        }
    }
    for needle in holds {
        assert!(
            all.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the SQLite files ({when}) hold {needle}"
        );
    }
}

/// Notes every secret found in `haystack`, with what surrounds it.
fn scan(findings: &mut Vec<String>, place: &str, haystack: &[u8]) {
    for (name, secret) in SECRETS {
        scan_for(findings, place, haystack, name, secret.as_bytes());
    }
}

/// The same for the secrets spelt in hex (how a dump shows a binary column).
fn scan_encoded(findings: &mut Vec<String>, place: &str, haystack: &[u8]) {
    for (name, secret) in SECRETS {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        scan_for(findings, place, haystack, name, hex.as_bytes());
    }
}

fn scan_for(findings: &mut Vec<String>, place: &str, haystack: &[u8], name: &str, needle: &[u8]) {
    if let Some(at) = haystack.windows(needle.len()).position(|w| w == needle) {
        let from = at.saturating_sub(120);
        let to = (at + needle.len() + 120).min(haystack.len());
        // Printable, on one line: the context may be binary (a database page).
        let context: String = String::from_utf8_lossy(&haystack[from..to])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        findings.push(format!("- the {name} is in {place}: ...{context}..."));
    }
}

/// The end of a long log, for a failure message.
fn tail(logs: &str) -> &str {
    let start = logs.len().saturating_sub(6_000);
    let start = (start..logs.len())
        .find(|&i| logs.is_char_boundary(i))
        .unwrap_or(logs.len());
    &logs[start..]
}
