//! ivpay's HTTP API as an axum [`Router`] a team can serve alone or nest in its own server.
//!
//! **Role.** The inbound adapter. It speaks IVPAY's contract to our clients
//! (`POST /payment/create`, `GET /payment/{payment_id}`, the `{success, data | error}`
//! envelope, `X-API-KEY`), adds listing, history, the IVPAY webhook receiver, the
//! operators' `/admin` routes (link or abandon a payment whose create outcome is open), health,
//! readiness and Prometheus metrics, and maps every error in one place ([`ApiError`]).
//! Every answer is one of two types, the success envelope or the error body; bodies are
//! read by one extractor that tolerates IVPAY's trailing commas; clients are recognised
//! (and rate-limited) by one extractor. The OpenAPI document is generated from the same
//! types the handlers read and answer (`/openapi.json`, browsable at `/docs`).
//!
//! **May depend on:** `ivpay-domain`, `ivpay-ports` (it holds an
//! `Arc<dyn PaymentUseCases>`), `ivpay-json` (IVPAY's JSON dialect), axum and
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

mod admin;
mod auth;
mod create;
mod envelope;
mod error;
mod events;
mod health;
mod inbox;
mod json;
mod keys;
mod layers;
mod listing;
mod notify;
mod openapi;
mod payment;
mod policy;
mod schema;
mod state;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use ivpay_ports::PaymentUseCases;

pub use create::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};
pub use error::ApiError;
pub use keys::{
    API_KEY_HEADER, Caller, ClientKeys, DIGEST_PREFIX, KeyDigest, Scope, Scopes, WebhookKeys,
};
pub use openapi::document as openapi_document;
pub use policy::{HostPattern, RedirectPolicy};
pub use state::{ApiConfig, RateLimit};

use layers::{limit_time, no_method, no_route, observe};
use state::AppState;

/// The API's routes, with request ids, tracing, body limits and metrics.
pub fn router(use_cases: Arc<dyn PaymentUseCases>, config: ApiConfig) -> Router {
    let body_limit = config.body_limit;
    let request_timeout = config.request_timeout;
    let state = AppState::new(use_cases, config);
    let routes = Router::new()
        .route("/payment/create", post(create::create))
        .route("/payment/{payment_id}", get(payment::get))
        .route("/payment/{payment_id}/events", get(events::events))
        .route("/payments", get(listing::list))
        .route("/webhooks/ivpay", post(webhook::receive))
        .route("/admin/payments/{id}/link", post(admin::link))
        .route("/admin/payments/{id}/abandon", post(admin::abandon))
        .route("/admin/payments/{id}/replay", post(inbox::replay_stored))
        .route("/admin/payments", get(listing::list_all))
        .route("/admin/webhooks/inbox", get(inbox::inbox))
        .route("/admin/webhooks/replay", post(inbox::replay))
        .route(
            "/admin/endpoints",
            post(notify::add_endpoint).get(notify::list_endpoints),
        )
        .route("/admin/endpoints/{id}", get(notify::get_endpoint))
        .route(
            "/admin/endpoints/{id}/disable",
            post(notify::disable_endpoint),
        )
        .route(
            "/admin/endpoints/{id}/enable",
            post(notify::enable_endpoint),
        )
        .route("/admin/endpoints/{id}/rotate", post(notify::rotate_secret))
        .route("/admin/endpoints/{id}/recover", post(notify::recover))
        .route("/admin/notifications", get(notify::list_notifications))
        .route("/admin/notifications/{id}", get(notify::get_notification))
        .route(
            "/admin/notifications/{id}/redeliver",
            post(notify::redeliver),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi::document()))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(body_limit));
    let routes = match request_timeout {
        Some(limit) => routes.layer(middleware::from_fn_with_state(limit, limit_time)),
        None => routes,
    };
    // Request id, trace span, metrics and `Connection: close` after a refused body, in
    // one layer (`layers::observe`): each of them as a layer of its own cost a fifth of a
    // read.
    routes.layer(middleware::from_fn(observe)).with_state(state)
}
