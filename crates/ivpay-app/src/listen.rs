//! `ivpay-app notifications listen`: for development, as `stripe listen --forward-to`
//! does. It registers a temporary endpoint on the running service pointing at a local
//! listener, prints every notification as it arrives (checking its signature), forwards
//! it to a URL of the developer's choice, and disables the endpoint on Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ivpay_domain::ClientId;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::settings::Settings;
use crate::startup::{DEV_CLIENT_KEY, StartupError};

/// What `notifications listen` was told.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// The client whose payments to hear about. Default: `dev` in development (no clients
    /// configured), or the only configured client.
    #[arg(long)]
    pub client: Option<ClientId>,
    /// Where to forward each notification (headers and body unchanged), e.g.
    /// `http://localhost:3000/webhooks/ivpay`.
    #[arg(long)]
    pub forward_to: Option<reqwest::Url>,
    /// The types to hear (comma-separated); all by default.
    #[arg(long, default_value = "*")]
    pub events: String,
    /// The running service; default: `server.bind` of the settings.
    #[arg(long)]
    pub service: Option<reqwest::Url>,
    /// A key with the admin scope; default: `admin.key` of the settings, or the
    /// development key in development.
    #[arg(long, env = "IVPAY_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

/// Why listening failed.
fn fail(what: impl std::fmt::Display) -> StartupError {
    StartupError::Config(format!("notifications listen: {what}"))
}

/// The service's URL from where it binds (a wildcard address is reached on loopback).
fn service_url(bind: SocketAddr) -> String {
    let host = match bind {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_owned(),
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!("http://{host}:{}", bind.port())
}

struct Listening {
    secret: String,
    forward_to: Option<reqwest::Url>,
    http: reqwest::Client,
}

/// Registers the endpoint, serves until Ctrl-C, then disables it.
///
/// # Errors
///
/// [`StartupError::Config`] when the service cannot be reached or refuses the key.
#[allow(
    clippy::print_stdout,
    reason = "the developer who ran the command reads what arrives"
)]
pub(crate) async fn listen(settings: &Settings, args: ListenArgs) -> Result<(), StartupError> {
    let service = args
        .service
        .map_or_else(|| service_url(settings.server.bind), |u| u.to_string());
    let service = service.trim_end_matches('/').to_owned();
    let key = match (&args.admin_key, &settings.admin.key) {
        (Some(k), _) => k.clone(),
        (None, Some(k)) if !k.expose_secret().starts_with("sha256:") => {
            k.expose_secret().to_owned()
        }
        (None, _) if settings.clients.is_empty() => DEV_CLIENT_KEY.to_owned(),
        (None, _) => {
            return Err(fail(
                "give a key with the admin scope (--admin-key or IVPAY_ADMIN_KEY)",
            ));
        }
    };
    let client = match (args.client, settings.clients.len()) {
        (Some(c), _) => c,
        (None, 0) => "dev".parse().map_err(fail)?,
        (None, 1) => settings
            .clients
            .keys()
            .next()
            .cloned()
            .ok_or_else(|| fail("no client"))?,
        (None, _) => {
            return Err(fail(
                "several clients are configured: name one with --client",
            ));
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
    let local = format!("http://{}/", listener.local_addr().map_err(fail)?);
    // reqwest is built without a crypto provider (crates.md): the IVPAY client's, ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(fail)?;
    let events: Vec<&str> = args
        .events
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "*")
        .collect();
    let body = serde_json::json!({
        "client": client.as_str(),
        "url": local,
        "events": events,
        "description": "ivpay-app notifications listen",
    });
    let answer = admin(
        &http,
        &key,
        format!("{service}/admin/endpoints"),
        Some(body),
    )
    .await?;
    let id = answer["id"].as_str().unwrap_or_default().to_owned();
    let secret = answer["secret"].as_str().unwrap_or_default().to_owned();
    println!("Ready: notifications of {client}'s payments arrive at {local} (endpoint {id}).");
    println!("Signing secret: {secret}");
    if let Some(to) = &args.forward_to {
        println!("Forwarding each one to {to}");
    }
    println!("Ctrl-C stops listening and disables the endpoint.");
    let state = Arc::new(Listening {
        secret,
        forward_to: args.forward_to,
        http: http.clone(),
    });
    let app = axum::Router::new()
        .route("/", post(arrived))
        .with_state(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(crate::startup::shutdown_signal())
        .await;
    admin(
        &http,
        &key,
        format!("{service}/admin/endpoints/{id}/disable"),
        None,
    )
    .await?;
    println!("Endpoint {id} disabled.");
    served.map_err(fail)
}

/// One admin call; answers `data` of the envelope.
async fn admin(
    http: &reqwest::Client,
    key: &str,
    url: String,
    body: Option<Value>,
) -> Result<Value, StartupError> {
    let request = http
        .post(&url)
        .header("X-API-KEY", key)
        .json(&body.unwrap_or_else(|| serde_json::json!({})));
    let response = request
        .send()
        .await
        .map_err(|e| fail(format!("{url}: is the service running? {e}")))?;
    let status = response.status();
    let envelope: Value = response
        .json()
        .await
        .map_err(|e| fail(format!("{url}: {status}: {e}")))?;
    if !status.is_success() {
        return Err(fail(format!(
            "{url}: {status}: {}",
            envelope["error"].as_str().unwrap_or("no message")
        )));
    }
    Ok(envelope["data"].clone())
}

/// A notification arrived: print it, check its signature, forward it.
#[allow(
    clippy::print_stdout,
    reason = "the developer who ran the command reads what arrives"
)]
async fn arrived(
    State(state): State<Arc<Listening>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let verified = match verify(&state.secret, &headers, &body) {
        Ok(()) => "signature ok".to_owned(),
        Err(e) => format!("SIGNATURE INVALID: {e}"),
    };
    println!(
        "{}  {:<18} payment {}  status {}  sequence {}  [{verified}]",
        parsed["timestamp"].as_str().unwrap_or("?"),
        parsed["type"].as_str().unwrap_or("?"),
        parsed["data"]["id"].as_str().unwrap_or("?"),
        parsed["data"]["status"].as_str().unwrap_or("?"),
        parsed["sequence"],
    );
    let Some(to) = &state.forward_to else {
        return StatusCode::NO_CONTENT;
    };
    let mut forward = state.http.post(to.clone()).body(body);
    for name in [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
    ] {
        if let Some(value) = headers.get(name) {
            forward = forward.header(name, value);
        }
    }
    match forward.send().await {
        Ok(answer) => {
            let status = answer.status();
            println!("  -> {to}: {status}");
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        Err(e) => {
            println!("  -> {to}: not delivered: {e}");
            StatusCode::BAD_GATEWAY
        }
    }
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let secret = ivpay_signing::SigningSecret::parse(secret).map_err(|e| e.to_string())?;
    ivpay_signing::verify_now(&[secret], headers, body).map_err(|e| e.to_string())
}
