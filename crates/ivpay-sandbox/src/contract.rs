//! IVPAY's own routes, `POST /payment/create` and `GET /payment/{payment_id}`, as IVPAY
//! answers them: the `X-API-KEY` check, the `success`/`data`/`error` envelope, and the
//! HTTP faults of the plan, before or after the request is handled.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ivpay_domain::{Field, FieldError, ForeignId, Money, RedirectUrl};
use serde::Serialize;

use crate::fault::{HttpFault, HttpRoute};
use crate::payment::NewPayment;
use crate::response::json_response;
use crate::state::Sandbox;
use crate::wire::{self, CreateRequest, CreatedData, PaymentData};

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/payment/create", post(create))
        .route("/payment/{payment_id}", get(get_payment))
}

async fn create(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, api_key) = match admit(&sandbox, HttpRoute::Create, &headers).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    if !is_json(&headers) {
        return bad_request("Content-Type must be application/json");
    }
    let request: CreateRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(&format!("invalid JSON body: {e}")),
    };
    let order = match validate(request) {
        Ok(order) => order,
        Err(invalid) => return bad_request(&invalid.to_string()),
    };

    let base = payment_base(&sandbox, &headers, uri.path());
    let snapshot = sandbox.create(order, api_key);
    let payment_url = format!("{base}/checkout/{}", snapshot.payment_id);
    let data = CreatedData {
        payment_id: &snapshot.payment_id,
        payment_url: &payment_url,
        created_at: snapshot.created_at.unix_seconds(),
        foreign_id: snapshot.foreign_id.as_deref(),
    };
    fault_after(fault, sandbox.create_status(), &data)
}

async fn get_payment(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (fault, api_key) = match admit(&sandbox, HttpRoute::Get, &headers).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    sandbox.record_read(&payment_id);
    let Some(snapshot) = sandbox.merchant_payment(&payment_id, &api_key) else {
        return json_response(
            sandbox.unknown_payment_status(),
            wire::failure("Payment not found"),
        );
    };
    let data = PaymentData {
        payment_id: &snapshot.payment_id,
        foreign_id: snapshot.foreign_id.as_deref(),
        processed_at: snapshot.processed_at.unix_seconds(),
        status: snapshot.status.as_str(),
    };
    fault_after(fault, StatusCode::OK, &data)
}

/// What every IVPAY route does first: draws the route's fault and applies those that
/// act before handling, then checks the key. `Ok` carries the fault (for
/// [`fault_after`]) and the merchant's key; `Err` is the whole answer.
async fn admit(
    sandbox: &Sandbox,
    route: HttpRoute,
    headers: &HeaderMap,
) -> Result<(Option<HttpFault>, Arc<str>), Response> {
    let fault = sandbox.next_http_fault(route);
    if let Some(answer) = fault_before(fault.as_ref()).await {
        return Err(answer);
    }
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|key| sandbox.merchant_key(key))
        .ok_or_else(unauthorized)?;
    Ok((fault, api_key))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// An optional text field: absent and `""` both mean "not given".
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Checks the fields with the domain's parsers; the error is the 400 message.
/// The request as IVPAY would accept it, or the first field at fault (IVPAY's 400 text
/// names it).
fn validate(request: CreateRequest) -> Result<NewPayment, FieldError> {
    let money = Money::parse(&request.amount_fiat, &request.currency_fiat)?;
    let foreign_id = non_empty(request.foreign_id)
        .map(|text| text.parse::<ForeignId>().map(|id| id.to_string()))
        .transpose()
        .map_err(|e| FieldError::new(Field::ForeignId, e))?;
    Ok(NewPayment {
        money,
        foreign_id,
        url_success: parse_url(Field::UrlSuccess, request.url_success)?,
        url_failed: parse_url(Field::UrlFailed, request.url_failed)?,
    })
}

fn parse_url(field: Field, value: Option<String>) -> Result<Option<String>, FieldError> {
    non_empty(value)
        .map(|text| {
            text.parse::<RedirectUrl>()
                .map(|url| url.as_str().to_owned())
        })
        .transpose()
        .map_err(|e| FieldError::new(field, e))
}

/// Where checkout pages live: `public_url`, or the address and prefix this request came
/// in by (which follows any outer `nest`).
fn payment_base(sandbox: &Sandbox, headers: &HeaderMap, path: &str) -> String {
    if let Some(url) = sandbox.public_url() {
        return url.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let prefix = path
        .strip_suffix("/payment/create")
        .unwrap_or(sandbox.prefix());
    format!("http://{host}{prefix}")
}

fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        wire::WRONG_AUTH.as_bytes().to_vec(),
    )
}

fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, wire::failure(message))
}

/// Faults that act before the request is handled. `Some` is the whole answer.
async fn fault_before(fault: Option<&HttpFault>) -> Option<Response> {
    match fault? {
        HttpFault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            None
        }
        HttpFault::ServerError { status } => Some(json_response(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            wire::failure("Internal server error"),
        )),
        HttpFault::Unauthorized => Some(unauthorized()),
        HttpFault::RateLimited { retry_after_secs } => {
            let mut answer = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                wire::failure("Too many requests"),
            );
            if let Ok(wait) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                answer.headers_mut().insert(header::RETRY_AFTER, wait);
            }
            Some(answer)
        }
        HttpFault::ResetBeforeHandling => Some(reset()),
        HttpFault::Reset
        | HttpFault::Garbage
        | HttpFault::Truncated
        | HttpFault::TrailingComma
        | HttpFault::SlowBody { .. } => None,
    }
}

/// The success answer, spoiled by the faults that act after handling.
fn fault_after(fault: Option<HttpFault>, status: StatusCode, data: &impl Serialize) -> Response {
    match fault {
        Some(HttpFault::Reset) => reset(),
        Some(HttpFault::Garbage) => json_response(
            StatusCode::OK,
            b"\xff\xfe<html>502 Bad Gateway</html>\x00{\"success\":".to_vec(),
        ),
        Some(HttpFault::Truncated) => {
            let mut body = wire::success(data);
            body.truncate(body.len() / 2);
            json_response(status, body)
        }
        Some(HttpFault::TrailingComma) => {
            json_response(status, wire::success_with_trailing_comma(data))
        }
        Some(HttpFault::SlowBody { ms }) => slow(status, wire::success(data), ms),
        _ => json_response(status, wire::success(data)),
    }
}

/// A response whose status and headers go at once and whose body follows `ms` later.
fn slow(status: StatusCode, body: Vec<u8>, ms: u64) -> Response {
    let later = futures_util::stream::once(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<Bytes, io::Error>(Bytes::from(body))
    });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(later),
    )
        .into_response()
}

/// A response whose body fails before its first byte: hyper then closes the connection
/// without a complete answer, which the client sees as a reset.
fn reset() -> Response {
    let failing = futures_util::stream::iter([Err::<Bytes, io::Error>(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "sandbox fault: connection reset",
    ))]);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(failing),
    )
        .into_response()
}
