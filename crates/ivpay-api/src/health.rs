//! `GET /healthz` (the process answers), `GET /readyz` (storage answers) and
//! `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
pub(crate) async fn healthz() -> Response {
    axum::Json(json!({ "success": true, "data": { "status": "ok" } })).into_response()
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    // Counting unknown payments proves the database answers through the same path
    // requests take, and tells an operator what needs a look.
    match state.use_cases.health().await {
        Ok(health) => {
            metrics::gauge!("ivpay_unknown_payments").set(health.unknown_payments as f64);
            axum::Json(json!({
                "success": true,
                "data": {
                    "database": "ok",
                    "unknown_payments": health.unknown_payments,
                    "storage": state.storage,
                }
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "success": false, "error": "database unavailable", "code": "not_ready" })),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
