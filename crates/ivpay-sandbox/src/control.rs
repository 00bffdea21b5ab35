//! The control API under `/sandbox/`: outside IVPAY's contract, for tests and people to
//! steer the sandbox and read its truth. Plain JSON, no envelope, no authentication (a
//! sandbox is never exposed beyond the machine).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use ivpay_domain::PaymentStatus;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::MerchantConfig;
use crate::error::{ControlError, error_chain};
use crate::fault::FaultPlan;
use crate::payment::{ChangeOutcome, PaymentSnapshot};
use crate::response::json_response;
use crate::state::Sandbox;

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/sandbox/payments", get(list_payments))
        .route("/sandbox/payments/{payment_id}", get(one_payment))
        .route("/sandbox/payments/{payment_id}/status", post(set_status))
        .route("/sandbox/payments/{payment_id}/redeliver", post(redeliver))
        .route(
            "/sandbox/deliveries",
            get(list_deliveries).delete(clear_deliveries),
        )
        .route(
            "/sandbox/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/sandbox/faults/injected", get(faults_injected))
        .route("/sandbox/clock", get(clock))
        .route("/sandbox/clock/advance", post(advance_clock))
        .route("/sandbox/merchants", put(put_merchant))
}

/// An error of the control API, rendered as `{"error": "..."}`.
enum ControlFailure {
    BadBody(String),
    Control(ControlError),
}

impl From<ControlError> for ControlFailure {
    fn from(e: ControlError) -> Self {
        Self::Control(e)
    }
}

impl IntoResponse for ControlFailure {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadBody(message) => (StatusCode::BAD_REQUEST, message),
            Self::Control(e) => {
                let status = match e {
                    ControlError::UnknownPayment(_) => StatusCode::NOT_FOUND,
                    ControlError::Refused { .. } | ControlError::NotPending(_) => {
                        StatusCode::CONFLICT
                    }
                    ControlError::Config(_) => StatusCode::BAD_REQUEST,
                };
                (status, error_chain(&e))
            }
        };
        json(status, &ErrorBody { error: message })
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn json(status: StatusCode, value: &impl Serialize) -> Response {
    json_response(status, serde_json::to_vec(value).unwrap_or_default())
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ControlFailure> {
    serde_json::from_slice(body)
        .map_err(|e| ControlFailure::BadBody(format!("invalid JSON body: {e}")))
}

async fn list_payments(State(sandbox): State<Sandbox>) -> Response {
    json(StatusCode::OK, &sandbox.payments())
}

async fn one_payment(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
) -> Result<Response, ControlFailure> {
    let payment = sandbox
        .payment(&payment_id)
        .ok_or(ControlError::UnknownPayment(payment_id))?;
    Ok(json(StatusCode::OK, &payment))
}

#[derive(Deserialize)]
struct StatusRequest {
    status: PaymentStatus,
    #[serde(default)]
    force: bool,
}

#[derive(Serialize)]
struct StatusAnswer {
    changed: bool,
    payment: Option<PaymentSnapshot>,
}

async fn set_status(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    body: Bytes,
) -> Result<Response, ControlFailure> {
    let request: StatusRequest = parse(&body)?;
    let outcome = sandbox.set_status(&payment_id, request.status, request.force)?;
    Ok(json(
        StatusCode::OK,
        &StatusAnswer {
            changed: outcome == ChangeOutcome::Applied,
            payment: sandbox.payment(&payment_id),
        },
    ))
}

#[derive(Serialize)]
struct RedeliverAnswer {
    event_id: Option<u64>,
}

async fn redeliver(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
) -> Result<Response, ControlFailure> {
    let event_id = sandbox.redeliver(&payment_id)?;
    Ok(json(StatusCode::ACCEPTED, &RedeliverAnswer { event_id }))
}

#[derive(Deserialize)]
struct DeliveryFilter {
    payment_id: Option<String>,
}

async fn list_deliveries(
    State(sandbox): State<Sandbox>,
    Query(filter): Query<DeliveryFilter>,
) -> Response {
    let mut log = sandbox.deliveries();
    if let Some(id) = &filter.payment_id {
        log.retain(|d| &d.payment_id == id);
    }
    json(StatusCode::OK, &log)
}

async fn clear_deliveries(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_deliveries();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(sandbox): State<Sandbox>) -> Response {
    json(StatusCode::OK, &sandbox.faults())
}

async fn faults_injected(State(sandbox): State<Sandbox>) -> Response {
    json(StatusCode::OK, &sandbox.faults_injected())
}

async fn put_faults(
    State(sandbox): State<Sandbox>,
    body: Bytes,
) -> Result<Response, ControlFailure> {
    let plan: FaultPlan = parse(&body)?;
    sandbox.set_faults(plan)?;
    Ok(json(StatusCode::OK, &sandbox.faults()))
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> Result<StatusCode, ControlFailure> {
    sandbox.set_faults(FaultPlan::default())?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct ClockAnswer {
    now: i64,
    now_millis: i64,
    manual: bool,
}

fn clock_answer(sandbox: &Sandbox) -> ClockAnswer {
    let clock = sandbox.clock();
    let now_millis = clock.now_millis();
    ClockAnswer {
        now: now_millis.div_euclid(1000),
        now_millis,
        manual: clock.is_manual(),
    }
}

async fn clock(State(sandbox): State<Sandbox>) -> Response {
    json(StatusCode::OK, &clock_answer(&sandbox))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    #[serde(default)]
    seconds: u64,
    #[serde(default)]
    millis: u64,
}

async fn advance_clock(
    State(sandbox): State<Sandbox>,
    body: Bytes,
) -> Result<Response, ControlFailure> {
    let request: AdvanceRequest = parse(&body)?;
    let by = Duration::from_secs(request.seconds) + Duration::from_millis(request.millis);
    sandbox.advance_clock(by);
    Ok(json(StatusCode::OK, &clock_answer(&sandbox)))
}

#[derive(Deserialize)]
struct MerchantRequest {
    api_key: String,
    #[serde(default)]
    webhook_url: Option<String>,
}

async fn put_merchant(
    State(sandbox): State<Sandbox>,
    body: Bytes,
) -> Result<StatusCode, ControlFailure> {
    let request: MerchantRequest = parse(&body)?;
    sandbox.set_merchant(MerchantConfig {
        api_key: request.api_key,
        webhook_url: request.webhook_url,
    })?;
    Ok(StatusCode::NO_CONTENT)
}
