//! ivpay's HTTP API as an axum [`Router`] a team can serve alone or nest in its own server.
//!
//! **Role.** The inbound adapter. It speaks IVPAY's contract to our clients
//! (`POST /payment/create`, `GET /payment/{payment_id}`, the `{success, data | error}`
//! envelope, `X-API-KEY`), adds listing, history, the IVPAY webhook receiver, health,
//! readiness and Prometheus metrics, and maps every error in one place ([`ApiError`]).
//! The OpenAPI document is generated from the handlers (`/openapi.json`, browsable at
//! `/docs`).
//!
//! **May depend on:** `ivpay-domain`, `ivpay-ports` (it holds an
//! `Arc<dyn PaymentUseCases>`), axum and tower-http. Never on storage or the IVPAY client.
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
mod body;
mod error;
mod health;
mod openapi;
mod payment;
mod webhook;

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use ivpay_ports::{CreateError, PaymentUseCases};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::{API_KEY_HEADER, ClientKeys, WebhookKey};
pub use error::ApiError;
pub use openapi::document as openapi_document;
pub use payment::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};

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
    /// `None` for no limit. The work it cut short is safe to cut: an interrupted create
    /// leaves an intent the reconciler settles.
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

impl AppState {
    /// The client whose key is in the headers, within its rate.
    pub(crate) fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<ivpay_domain::ClientId, ApiError> {
        let client = self
            .clients
            .authenticate(headers)
            .ok_or(ApiError::Unauthorized)?;
        if let Some(limiter) = &self.limiter {
            if let Err(not_until) = limiter.check_key(&client) {
                use governor::clock::Clock;
                let now = governor::clock::DefaultClock::default().now();
                metrics::counter!("ivpay_rate_limited_total").increment(1);
                return Err(ApiError::RateLimited {
                    retry_after: not_until.wait_time_from(now),
                });
            }
        }
        Ok(client)
    }
}

/// The metric label of a create failure.
pub(crate) fn error_code(e: &CreateError) -> &'static str {
    match e {
        CreateError::IdempotencyMismatch => "idempotency_mismatch",
        CreateError::InFlight { .. } => "in_flight",
        CreateError::Rejected { .. } => "rejected",
        CreateError::UpstreamUnauthorized => "upstream_unauthorized",
        CreateError::UpstreamUnavailable { .. } => "upstream_unavailable",
        CreateError::OutcomeUnknown { .. } => "unknown",
        CreateError::Storage(_) => "storage_error",
        CreateError::Invariant(_) => "invariant",
    }
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
        .route("/payment/create", post(payment::create))
        .route("/payment/{payment_id}", get(payment::get))
        .route("/payment/{payment_id}/events", get(payment::events))
        .route("/payments", get(payment::list))
        .route("/webhooks/ivpay", post(webhook::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi::document()))
        .layer(DefaultBodyLimit::max(config.body_limit));
    let routes = match config.request_timeout {
        Some(limit) => routes.layer(middleware::from_fn_with_state(limit, limit_time)),
        None => routes,
    };
    routes
        .layer(middleware::from_fn(count_requests))
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
