//! ivpay's HTTP API as an axum [`Router`] a team can serve alone or nest in its own server.
//!
//! **Role.** The inbound adapter. It speaks IVPAY's contract to our clients
//! (`POST /payment/create`, `GET /payment/{payment_id}`, the `{success, data | error}`
//! envelope, `X-API-KEY`), adds listing, history, the IVPAY webhook receiver, health,
//! readiness and Prometheus metrics, and maps every error in one place ([`ApiError`]).
//! Every answer is one of two types, the success envelope or the error body; bodies are
//! read by one extractor that tolerates IVPAY's trailing commas; clients are recognised
//! (and rate-limited) by one extractor. The OpenAPI document is generated from the same
//! types the handlers read and answer (`/openapi.json`, browsable at `/docs`).
//!
//! **May depend on:** `ivpay-domain`, `ivpay-ports` (it holds an
//! `Arc<dyn PaymentUseCases>`), `ivpay-json` (IVPAY's JSON dialect), axum, tower-http and
//! utoipa. Never on storage or the IVPAY client.
//!
//! ```
//! use std::sync::Arc;
//! use ivpay_api::{ApiConfig, ClientKeys, router};
//! use ivpay_ports::{MockPaymentUseCases, PaymentUseCases};
//! use secrecy::SecretString;
//!
//! let use_cases: Arc<dyn PaymentUseCases> = Arc::new(MockPaymentUseCases::new());
//! let clients = ClientKeys::new().with("shop".parse()?, &SecretString::from("dev-key"));
//! let app: axum::Router = router(use_cases, ApiConfig::new(clients));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod create;
mod envelope;
mod error;
mod events;
mod health;
mod json;
mod listing;
mod openapi;
mod payment;
mod schema;
mod webhook;

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use ivpay_ports::PaymentUseCases;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::{API_KEY_HEADER, ClientKeys, WebhookKey};
pub use create::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};
pub use error::ApiError;
pub use openapi::document as openapi_document;

/// Settings of the router.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Our clients and their keys.
    pub clients: ClientKeys,
    /// IVPAY's key, which IVPAY echoes on webhooks; `None` refuses every webhook.
    pub webhook_key: Option<WebhookKey>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Where `/metrics` reads from; `None` answers 404 there.
    pub metrics: Option<PrometheusHandle>,
    /// Requests per second allowed to each client, with a burst; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Longest a request may run before it is answered 503 (`timeout`) in the envelope;
    /// `None` for no limit. A create cut short after its intent was stored leaves the
    /// intent *initiated*, even if IVPAY did create the payment. The reconciler settles it
    /// as *unknown* only later (`stale_intent_secs`), and cannot tell whether IVPAY created
    /// it. Meanwhile a retry with the same `Idempotency-Key` is answered 409, afterwards
    /// 504 `outcome_unknown`: the key stays tied to that unknown outcome, and the client
    /// needs a new key to try again.
    pub request_timeout: Option<std::time::Duration>,
    /// The storage's effective settings, shown by `/readyz` (e.g. SQLite's journal mode
    /// and `synchronous`), so a misconfigured deployment is visible.
    pub storage: Option<serde_json::Value>,
}

/// A per-client request rate: `per_second` on average, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

type Limiter = governor::DefaultKeyedRateLimiter<ivpay_domain::ClientId>;

impl ApiConfig {
    /// Defaults: no webhook key, 64 KiB bodies, no metrics.
    pub fn new(clients: ClientKeys) -> Self {
        Self {
            clients,
            webhook_key: None,
            body_limit: 64 * 1024,
            metrics: None,
            rate_limit: None,
            request_timeout: None,
            storage: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    use_cases: Arc<dyn PaymentUseCases>,
    clients: Arc<ClientKeys>,
    webhook_key: Option<Arc<WebhookKey>>,
    body_limit: usize,
    metrics: Option<PrometheusHandle>,
    limiter: Option<Arc<Limiter>>,
    storage: Option<serde_json::Value>,
}

/// Closes the connection after an error answer to a request that has a body. An error
/// may be answered before the body is read (401 and 415 come first, 413 stops reading);
/// the server then cannot reuse the connection and drops it, and a client that was not
/// told would send its next request into a closed socket.
async fn close_after_refused_body(request: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("ivpay_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("ivpay_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn limit_time(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout { limit }.into_response(),
    }
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such route")
}

async fn no_method() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The API's routes, with request ids, tracing, body limits and metrics.
pub fn router(use_cases: Arc<dyn PaymentUseCases>, config: ApiConfig) -> Router {
    let state = AppState {
        use_cases,
        clients: Arc::new(config.clients),
        webhook_key: config.webhook_key.map(Arc::new),
        body_limit: config.body_limit,
        metrics: config.metrics,
        storage: config.storage,
        limiter: config.rate_limit.map(|r| {
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(r.per_second).allow_burst(r.burst),
            ))
        }),
    };
    let routes = Router::new()
        .route("/payment/create", post(create::create))
        .route("/payment/{payment_id}", get(payment::get))
        .route("/payment/{payment_id}/events", get(events::events))
        .route("/payments", get(listing::list))
        .route("/webhooks/ivpay", post(webhook::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi::document()))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(config.body_limit));
    let routes = match config.request_timeout {
        Some(limit) => routes.layer(middleware::from_fn_with_state(limit, limit_time)),
        None => routes,
    };
    routes
        .layer(middleware::from_fn(count_requests))
        .layer(middleware::from_fn(close_after_refused_body))
        .with_state(state)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        })
        // One line per request at INFO (status and latency, inside the span above).
        .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
