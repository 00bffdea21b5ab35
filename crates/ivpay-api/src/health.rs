//! `GET /healthz` (the process answers), `GET /readyz` (storage answers) and
//! `GET /metrics` (Prometheus text).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ivpay_ports::{QueryError, RepositoryError};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, ToSchema};

use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::error::samples;
use crate::state::AppState;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Storage answers, and what an operator should watch.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Always `ok`.
    #[schema(example = "ok")]
    database: &'static str,
    /// Payments whose create outcome at IVPAY is unknown.
    unknown_payments: u64,
    /// Stored rows set aside because they no longer read (see `docs/operations.md`); each
    /// needs an operator.
    quarantined_rows: u64,
    /// The storage's effective settings (SQLite journal mode, `synchronous`, ...).
    #[schema(schema_with = crate::schema::any)]
    storage: Option<std::sync::Arc<serde_json::Value>>,
    /// What plays IVPAY: `live` (IVPAY itself) or `sandbox` (a simulator: its payment
    /// pages take no money). Absent when the embedding application did not say.
    #[schema(example = "live")]
    mode: Option<&'static str>,
}

/// Every answer of a route that only the server's time limit can refuse.
pub(crate) struct AnyRouteErrors;

impl IntoResponses for AnyRouteErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        crate::error::responses(&samples::any_route())
    }
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Envelope<Liveness>), AnyRouteErrors))]
pub(crate) async fn healthz() -> Envelope<Liveness> {
    Envelope::new(Liveness { status: "ok" })
}

/// Every answer of `GET /readyz` but 200.
pub(crate) struct ReadyErrors;

impl IntoResponses for ReadyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = vec![ApiError::NotReady(QueryError::Storage(
            RepositoryError::Corrupt(String::new()),
        ))];
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Envelope<Readiness>), ReadyErrors))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Envelope<Readiness>, ApiError> {
    // Counting unknown payments proves the database answers through the same path
    // requests take, and tells an operator what needs a look.
    let health = state.use_cases.health().await.map_err(ApiError::NotReady)?;
    metrics::gauge!("ivpay_unknown_payments").set(health.unknown_payments as f64);
    metrics::gauge!("ivpay_quarantined_rows").set(health.quarantined_rows as f64);
    Ok(Envelope::new(Readiness {
        database: "ok",
        unknown_payments: health.unknown_payments,
        quarantined_rows: health.quarantined_rows,
        storage: state.storage.clone(),
        mode: state.mode,
    }))
}

/// Every answer of `GET /metrics` but 200.
pub(crate) struct MetricsErrors;

impl IntoResponses for MetricsErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = vec![ApiError::NotFound(METRICS_OFF)];
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

const METRICS_OFF: &str = "metrics are not enabled";

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String, content_type = "text/plain"), MetricsErrors))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let handle = state
        .metrics
        .as_ref()
        .ok_or(ApiError::NotFound(METRICS_OFF))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}
