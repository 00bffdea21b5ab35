//! `bench-upstream`: IVPAY played as cheaply as possible for `just bench`. It answers a
//! create and a `GET` at once, in IVPAY's envelope, keeps nothing and sends no webhooks,
//! so what the benchmark measures is the server in front of it. It also plays a client's
//! notification endpoint (`POST /hook`, answered 204 at once; `GET /hook` answers how many
//! notices it has taken so far, so the bench can see when delivery caught up). Listens on the address
//! given as its first argument (default `127.0.0.1:0`) and prints `listening <addr>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

static NEXT: AtomicU64 = AtomicU64::new(1);
/// Notices taken at `POST /hook`.
static HOOKS: AtomicU64 = AtomicU64::new(0);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn json(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn create() -> impl IntoResponse {
    // A fresh 32-hex-digit id per payment, as IVPAY's look.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = format!("{:016x}{n:016x}", std::process::id());
    json(format!(
        r#"{{"success":true,"data":{{"payment_id":"{id}","payment_url":"https://pay.example/payment/{id}","created_at":{}}}}}"#,
        now()
    ))
}

async fn read(Path(id): Path<String>) -> impl IntoResponse {
    json(format!(
        r#"{{"success":true,"data":{{"payment_id":"{id}","foreign_id":null,"processed_at":{},"status":"CREATED"}}}}"#,
        now()
    ))
}

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::print_stdout, reason = "the address is the program's output")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let app = Router::new()
        .route("/payment/create", post(create))
        .route("/payment/{id}", get(read))
        .route(
            "/hook",
            post(|| async {
                HOOKS.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            })
            .get(|| async { HOOKS.load(Ordering::Relaxed).to_string() }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
