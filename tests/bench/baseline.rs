//! `bench-baseline`: the least code that does the service's job, for `just bench` to
//! measure ivpay against. Raw sqlx, no ORM, no layers: a create checks the key, inserts
//! the intent before calling IVPAY and updates it with IVPAY's answer after; a read is a
//! primary-key SELECT (by our id); a webhook is one INSERT. Same database settings as the service
//! (SQLite: WAL, `synchronous=NORMAL`, busy timeout 5 s) and pool size (8, ivpay's default).
//!
//! Environment: `BASELINE_DATABASE_URL` (`sqlite://...` or `postgres://...`),
//! `BASELINE_UPSTREAM` (IVPAY's base URL), `BASELINE_BIND` (default `127.0.0.1:0`).
//! Prints `listening <addr>`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, PgPool, SqlitePool};

const CLIENT_KEY: &str = "bench-client-key";
const IVPAY_KEY: &str = "bench-ivpay-key";

enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs one statement on whichever pool, binding the same values: `$n` placeholders
/// work on both backends.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

struct App {
    db: Db,
    http: reqwest::Client,
    upstream: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn answer(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn refused(status: StatusCode, error: &str) -> Response {
    answer(status, format!(r#"{{"success":false,"error":"{error}"}}"#))
}

fn authorized(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get("x-api-key")
        .is_some_and(|v| v.as_bytes() == key.as_bytes())
}

#[derive(serde::Deserialize)]
struct CreateBody {
    amount_fiat: String,
    currency_fiat: String,
    foreign_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct Upstream {
    data: UpstreamData,
}

#[derive(serde::Deserialize)]
struct UpstreamData {
    payment_id: String,
    payment_url: String,
}

async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, CLIENT_KEY) {
        return refused(StatusCode::UNAUTHORIZED, "Wrong auth parameters");
    }
    let Ok(req) = serde_json::from_slice::<CreateBody>(&body) else {
        return refused(StatusCode::BAD_REQUEST, "bad body");
    };
    let id = uuid::Uuid::now_v7().to_string();
    let at = now();
    let inserted = on_db!(&app.db, |pool| {
        sqlx::query(
        "INSERT INTO payments (id, amount, currency, foreign_id, outcome, status, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, 'initiated', 'CREATED', $5, $5, 1)"
    )
    .bind(&id)
    .bind(&req.amount_fiat)
    .bind(&req.currency_fiat)
    .bind(&req.foreign_id)
    .bind(at)
    .execute(pool)
    .await
    .map(|_| ())
    });
    if inserted.is_err() {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "storage");
    }
    let sent = app
        .http
        .post(format!("{}/payment/create", app.upstream))
        .header("X-API-KEY", IVPAY_KEY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let Ok(res) = sent else {
        return refused(StatusCode::GATEWAY_TIMEOUT, "upstream");
    };
    let Ok(up) = res.json::<Upstream>().await else {
        return refused(StatusCode::GATEWAY_TIMEOUT, "upstream");
    };
    let updated = on_db!(&app.db, |pool| sqlx::query(
        "UPDATE payments SET outcome = 'created', ivpay_payment_id = $1, payment_url = $2, \
         updated_at = $3, version = 2 WHERE id = $4 AND version = 1"
    )
    .bind(&up.data.payment_id)
    .bind(&up.data.payment_url)
    .bind(now())
    .bind(&id)
    .execute(pool)
    .await
    .map(|_| ()));
    if updated.is_err() {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "storage");
    }
    let view = serde_json::json!({
        "success": true,
        "data": {
            "payment_id": up.data.payment_id,
            "payment_url": up.data.payment_url,
            "created_at": at,
            "foreign_id": req.foreign_id,
            "id": id,
            "status": "CREATED",
            "amount_fiat": req.amount_fiat,
            "currency_fiat": req.currency_fiat,
        }
    });
    answer(StatusCode::OK, view.to_string())
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    i64,
);

async fn read(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&headers, CLIENT_KEY) {
        return refused(StatusCode::UNAUTHORIZED, "Wrong auth parameters");
    }
    let sql = "SELECT id, ivpay_payment_id, amount, currency, foreign_id, status, created_at \
               FROM payments WHERE id = $1";
    let found: Result<Option<Row>, _> = on_db!(&app.db, |pool| sqlx::query_as(sql)
        .bind(&id)
        .fetch_optional(pool)
        .await);
    match found {
        Ok(Some((ours, theirs, amount, currency, foreign_id, status, created_at))) => {
            let view = serde_json::json!({
                "success": true,
                "data": {
                    "payment_id": theirs, "id": ours, "amount_fiat": amount,
                    "currency_fiat": currency, "foreign_id": foreign_id, "status": status,
                    "created_at": created_at,
                }
            });
            answer(StatusCode::OK, view.to_string())
        }
        Ok(None) => refused(StatusCode::NOT_FOUND, "not found"),
        Err(_) => refused(StatusCode::SERVICE_UNAVAILABLE, "storage"),
    }
}

async fn webhook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, IVPAY_KEY) {
        return refused(StatusCode::UNAUTHORIZED, "Wrong auth parameters");
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return refused(StatusCode::BAD_REQUEST, "bad body");
    };
    let payment_id = v["payment_id"].as_str().unwrap_or_default().to_owned();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let kept = on_db!(&app.db, |pool| sqlx::query(
        "INSERT INTO webhooks (id, ivpay_payment_id, raw, received_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(payment_id)
    .bind(raw)
    .bind(now())
    .execute(pool)
    .await
    .map(|_| ()));
    match kept {
        Ok(()) => answer(
            StatusCode::OK,
            r#"{"success":true,"data":{"outcome":"queued"}}"#.to_owned(),
        ),
        Err(_) => refused(StatusCode::SERVICE_UNAVAILABLE, "storage"),
    }
}

async fn ready() -> Response {
    answer(
        StatusCode::OK,
        r#"{"success":true,"data":{"database":"ok"}}"#.to_owned(),
    )
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, ivpay_payment_id TEXT UNIQUE, \
     amount TEXT NOT NULL, currency TEXT NOT NULL, foreign_id TEXT, payment_url TEXT, \
     outcome TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL, \
     updated_at BIGINT NOT NULL, version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, ivpay_payment_id TEXT NOT NULL, \
     raw TEXT NOT NULL, received_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS webhooks_payment ON webhooks (ivpay_payment_id)",
];

async fn open(url: &str) -> Result<Db, sqlx::Error> {
    let db = if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        Db::Sqlite(
            SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?,
        )
    } else {
        Db::Postgres(PgPoolOptions::new().max_connections(8).connect(url).await?)
    };
    for statement in SCHEMA {
        on_db!(&db, |pool| sqlx::query(statement)
            .execute(pool)
            .await
            .map(|_| ()))?;
    }
    Ok(db)
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "the address is the program's output")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let db = open(&var("BASELINE_DATABASE_URL")?).await?;
    let app = Arc::new(App {
        db,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?,
        upstream: var("BASELINE_UPSTREAM")?,
    });
    let router = Router::new()
        .route("/payment/create", post(create))
        .route("/payment/{id}", get(read))
        .route("/webhooks/ivpay", post(webhook))
        .route("/readyz", get(ready))
        .with_state(app);
    let bind = std::env::var("BASELINE_BIND").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
