//! `POST /payment/create`, `GET /payment/{payment_id}`, `GET /payments` and
//! `GET /payment/{payment_id}/events`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ivpay_domain::{
    Field, FieldError, IdempotencyKey, NewPayment, Payment, PaymentEvent, PaymentStatus, Timestamp,
};
use ivpay_ports::{Cursor, PageRequest, PaymentFilter, PaymentRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiError, AppState, body};

/// The header a client sets to make a create safe to repeat.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set (to `true`) on a create answered from storage.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

const CREATE_FIELDS: [&str; 5] = [
    "amount_fiat",
    "currency_fiat",
    "foreign_id",
    "url_success",
    "url_failed",
];

fn ok<T: Serialize>(data: T) -> Response {
    axum::Json(Envelope {
        success: true,
        data,
    })
    .into_response()
}

/// IVPAY's success envelope.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Envelope<T> {
    /// Always `true` here; errors use [`ErrorBody`](crate::openapi::ErrorBody).
    success: bool,
    /// The answer.
    data: T,
}

/// The body of `POST /payment/create` (IVPAY's fields).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; the handler parses it field by field to name errors"
)]
pub(crate) struct CreateBody {
    /// Amount as decimal text with at most the currency's minor units, e.g. `"10.50"`.
    #[schema(example = "10.50")]
    amount_fiat: String,
    /// ISO 4217 code, any case.
    #[schema(example = "USD")]
    currency_fiat: String,
    /// Your reference, 1–255 characters.
    foreign_id: Option<String>,
    /// Where the customer goes after paying (absolute http/https URL).
    url_success: Option<String>,
    /// Where the customer goes after a failed payment.
    url_failed: Option<String>,
}

/// What a create answers: only facts fixed at creation, so a replay is byte-identical to
/// the first answer. `status` is the status at creation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedView {
    /// IVPAY's id.
    payment_id: Option<String>,
    /// The checkout page to send the customer to.
    payment_url: Option<String>,
    /// When IVPAY created it (Unix seconds).
    created_at: i64,
    /// Your reference, as sent.
    foreign_id: Option<String>,
    /// Our id.
    id: String,
    /// Always `CREATED`.
    status: &'static str,
    /// The amount at the currency's scale.
    amount_fiat: String,
    /// The currency code.
    currency_fiat: &'static str,
    /// As sent.
    url_success: Option<String>,
    /// As sent.
    url_failed: Option<String>,
}

impl CreatedView {
    fn of(p: &Payment) -> Self {
        let up = p.upstream();
        Self {
            payment_id: up.map(|u| u.payment_id.to_string()),
            payment_url: up.map(|u| u.payment_url.to_string()),
            created_at: up.map_or(p.created_at(), |u| u.created_at).unix_seconds(),
            foreign_id: p.foreign_id().map(ToString::to_string),
            id: p.id().to_string(),
            status: PaymentStatus::Created.as_str(),
            amount_fiat: p.money().amount().to_string(),
            currency_fiat: p.money().currency().code(),
            url_success: p.url_success().map(ToString::to_string),
            url_failed: p.url_failed().map(ToString::to_string),
        }
    }
}

/// A payment now: IVPAY's `GET` fields, then ours.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentView {
    /// IVPAY's id (null while the create's outcome is not `created`).
    payment_id: Option<String>,
    /// Your reference.
    foreign_id: Option<String>,
    /// When IVPAY processed the current status (Unix seconds).
    processed_at: Option<i64>,
    /// CREATED, PENDING, PAID or TIMEOUT.
    #[schema(example = "PAID")]
    status: &'static str,
    /// Our id.
    id: String,
    /// The checkout page.
    payment_url: Option<String>,
    /// When IVPAY created it, or when we recorded it if IVPAY has not said.
    created_at: i64,
    /// The amount at the currency's scale.
    amount_fiat: String,
    /// The currency code.
    currency_fiat: &'static str,
    /// As sent.
    url_success: Option<String>,
    /// As sent.
    url_failed: Option<String>,
    /// Our create call: initiated, created, rejected, unknown or abandoned.
    outcome: &'static str,
    /// Why, for rejected, unknown and abandoned.
    outcome_reason: Option<String>,
    /// Whether the status is PAID or TIMEOUT.
    #[serde(rename = "final")]
    is_final: bool,
    /// When we recorded the intent.
    recorded_at: i64,
    /// When our record last changed.
    updated_at: i64,
    /// Our record's version.
    version: u64,
}

impl PaymentView {
    pub(crate) fn of(p: &Payment) -> Self {
        let up = p.upstream();
        Self {
            payment_id: up.map(|u| u.payment_id.to_string()),
            foreign_id: p.foreign_id().map(ToString::to_string),
            processed_at: p.processed_at().map(Timestamp::unix_seconds),
            status: p.status().as_str(),
            id: p.id().to_string(),
            payment_url: up.map(|u| u.payment_url.to_string()),
            created_at: up.map_or(p.created_at(), |u| u.created_at).unix_seconds(),
            amount_fiat: p.money().amount().to_string(),
            currency_fiat: p.money().currency().code(),
            url_success: p.url_success().map(ToString::to_string),
            url_failed: p.url_failed().map(ToString::to_string),
            outcome: p.outcome().as_str(),
            outcome_reason: p.outcome().reason().map(str::to_owned),
            is_final: p.is_final(),
            recorded_at: p.created_at().unix_seconds(),
            updated_at: p.updated_at().unix_seconds(),
            version: p.version(),
        }
    }
}

/// One status report and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    /// IVPAY's id as reported.
    payment_id: String,
    /// webhook, poll or api.
    source: &'static str,
    /// The status before.
    from: Option<&'static str>,
    /// The reported status (kept verbatim when unknown).
    to: String,
    /// applied, duplicate, refused_..., unrecognized_status, unknown_payment.
    outcome: &'static str,
    /// When we received it (Unix seconds).
    received_at: i64,
    /// The raw evidence: `webhook` (the body), `confirmation` (IVPAY's answer), `note`.
    #[schema(value_type = Option<Object>)]
    evidence: Option<serde_json::Value>,
}

impl EventView {
    fn of(e: &PaymentEvent) -> Self {
        Self {
            payment_id: e.payment_id.to_string(),
            source: e.source.as_str(),
            from: e.from.map(PaymentStatus::as_str),
            to: e.to.to_string(),
            outcome: e.outcome.as_str(),
            received_at: e.received_at.unix_seconds(),
            evidence: e.evidence.as_ref().map(|ev| {
                serde_json::json!({
                    "webhook": ev.webhook(),
                    "confirmation": ev.confirmation(),
                    "note": ev.note(),
                })
            }),
        }
    }
}

/// One page of payments.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PageView {
    /// Newest first.
    items: Vec<PaymentView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Create a payment at IVPAY.
#[utoipa::path(
    post, path = "/payment/create", tag = "payments",
    request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes the request safe to repeat (1–255 visible ASCII)")),
    responses(
        (status = 200, description = "created (or replayed: header `Idempotent-Replayed: true`)", body = Envelope<CreatedView>),
        (status = 400, description = "invalid field, or IVPAY rejected the payment", body = crate::openapi::ErrorBody),
        (status = 401, description = "Wrong auth parameters", body = crate::openapi::ErrorBody),
        (status = 409, description = "same key still in flight", body = crate::openapi::ErrorBody),
        (status = 413, description = "body too large", body = crate::openapi::ErrorBody),
        (status = 415, description = "not application/json", body = crate::openapi::ErrorBody),
        (status = 429, description = "over the client's rate limit (`Retry-After`)", body = crate::openapi::ErrorBody),
        (status = 422, description = "idempotency key reused with another request", body = crate::openapi::ErrorBody),
        (status = 502, description = "IVPAY refused the service's key", body = crate::openapi::ErrorBody),
        (status = 503, description = "IVPAY unreachable, nothing sent", body = crate::openapi::ErrorBody),
        (status = 504, description = "outcome unknown; the body carries our id", body = crate::openapi::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let client = state.authenticate(&headers)?;
    let key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| ApiError::Invalid("Idempotency-Key: must be visible ASCII".into()))?;
            Some(
                text.parse::<IdempotencyKey>()
                    .map_err(|e| FieldError::new(Field::IdempotencyKey, e))?,
            )
        }
    };
    body::require_json(&headers)?;
    let bytes = body::bytes(raw, state.body_limit)?;
    let map = body::object(&bytes, &CREATE_FIELDS)?;
    let request = NewPayment::from_fields(
        body::required(&map, "amount_fiat")?,
        body::required(&map, "currency_fiat")?,
        body::string(&map, "foreign_id")?,
        body::string(&map, "url_success")?,
        body::string(&map, "url_failed")?,
    )?;
    let result = state.use_cases.create(client, key, request).await;
    let outcome = match &result {
        Ok(r) if r.replayed => "replayed",
        Ok(_) => "created",
        Err(e) => crate::error_code(e),
    };
    metrics::counter!("ivpay_creates_total", "outcome" => outcome).increment(1);
    let reply = result?;
    let mut response = ok(CreatedView::of(&reply.payment));
    if reply.replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `?refresh=true` asks IVPAY before answering.
#[derive(Debug, Deserialize)]
pub(crate) struct GetQuery {
    #[serde(default)]
    refresh: bool,
}

fn reference(text: &str) -> Result<PaymentRef, ApiError> {
    text.parse::<PaymentRef>()
        .map_err(|e| ApiError::Field(FieldError::new(Field::PaymentId, e)))
}

/// A payment by IVPAY's id or ours.
#[utoipa::path(
    get, path = "/payment/{payment_id}", tag = "payments",
    params(
        ("payment_id" = String, Path, description = "IVPAY's id, or our id (a UUID)"),
        ("refresh" = Option<bool>, Query, description = "ask IVPAY for the status first"),
    ),
    responses(
        (status = 200, body = Envelope<PaymentView>),
        (status = 401, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    query: Result<Query<GetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    state.authenticate(&headers)?;
    let Query(query) =
        query.map_err(|_| ApiError::Invalid("refresh: expected true or false".into()))?;
    let payment = state
        .use_cases
        .get(reference(&payment_id)?, query.refresh)
        .await?;
    Ok(ok(PaymentView::of(&payment)))
}

/// Every status report received for a payment, applied or not.
#[utoipa::path(
    get, path = "/payment/{payment_id}/events", tag = "payments",
    params(("payment_id" = String, Path, description = "IVPAY's id, or our id (a UUID)")),
    responses(
        (status = 200, body = Envelope<Vec<EventView>>),
        (status = 404, body = crate::openapi::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
) -> Result<Response, ApiError> {
    state.authenticate(&headers)?;
    let events = state.use_cases.events(reference(&payment_id)?).await?;
    Ok(ok(events.iter().map(EventView::of).collect::<Vec<_>>()))
}

/// Filters and paging for `GET /payments`; every value is text so errors can name it.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    foreign_id: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Default and largest page sizes.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

fn seconds(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        t.parse::<i64>()
            .map(Timestamp::from_unix_seconds)
            .map_err(|_| ApiError::Invalid(format!("{field}: expected Unix seconds")))
    })
    .transpose()
}

fn encode_cursor(c: Cursor) -> String {
    format!("{}_{}", c.created_at.unix_seconds(), c.id)
}

fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::Invalid("cursor: not a cursor from a previous page".into());
    let (secs, id) = text.split_once('_').ok_or_else(bad)?;
    Ok(Cursor {
        created_at: Timestamp::from_unix_seconds(secs.parse().map_err(|_| bad())?),
        id: id.parse().map_err(|_| bad())?,
    })
}

/// Payments, newest first, with filters and a cursor.
#[utoipa::path(
    get, path = "/payments", tag = "payments",
    params(
        ("status" = Option<String>, Query, description = "CREATED, PENDING, PAID or TIMEOUT"),
        ("foreign_id" = Option<String>, Query),
        ("created_from" = Option<i64>, Query, description = "Unix seconds, inclusive"),
        ("created_to" = Option<i64>, Query, description = "Unix seconds, exclusive"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Envelope<PageView>),
        (status = 400, body = crate::openapi::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    state.authenticate(&headers)?;
    let Query(q) = query.map_err(|e| ApiError::Invalid(format!("query: {}", e.body_text())))?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<PaymentStatus>)
        .transpose()
        .map_err(|e| FieldError::new(Field::Status, e))?;
    let foreign_id = q
        .foreign_id
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| FieldError::new(Field::ForeignId, e))?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::Invalid(format!("limit: expected 1 to {MAX_LIMIT}")))?,
    };
    let filter = PaymentFilter {
        status,
        foreign_id,
        created_from: seconds("created_from", q.created_from.as_deref())?,
        created_to: seconds("created_to", q.created_to.as_deref())?,
    };
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = state
        .use_cases
        .list(filter, PageRequest { after, limit })
        .await?;
    Ok(ok(PageView {
        items: page.items.iter().map(PaymentView::of).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            created_at: Timestamp::from_unix_seconds(1_700_000_000),
            id: "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
                .parse()
                .expect("uuid"),
        };
        assert_eq!(decode_cursor(&encode_cursor(c)).expect("round trip"), c);
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor("12_notauuid").is_err());
    }
}
