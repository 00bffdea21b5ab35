//! `ivpay-app notifications listen`: for development, as `stripe listen --forward-to`
//! does. It registers a temporary endpoint on the running service pointing at a local
//! listener, prints every notification as it arrives (checking its signature), forwards
//! it to a URL of the developer's choice, and disables the endpoint on Ctrl-C.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ivpay_domain::ClientId;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::remote::{Remote, RemoteArgs, fail};
use crate::settings::Settings;
use crate::startup::StartupError;

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
pub(crate) async fn listen(
    settings: &Settings,
    remote: &RemoteArgs,
    args: ListenArgs,
) -> Result<(), StartupError> {
    let service = Remote::new(settings, remote)?;
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
    let answer = service.post("/admin/endpoints", &body, None).await?;
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
    service
        .post(
            &format!("/admin/endpoints/{id}/disable"),
            &serde_json::json!({}),
            None,
        )
        .await?;
    println!("Endpoint {id} disabled.");
    served.map_err(fail)
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
