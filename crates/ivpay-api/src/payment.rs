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
use serde::Deserialize;
use serde_json::{Value, json};

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

fn ok(data: Value) -> Response {
    axum::Json(json!({ "success": true, "data": data })).into_response()
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<ivpay_domain::ClientId, ApiError> {
    state
        .clients
        .authenticate(headers)
        .ok_or(ApiError::Unauthorized)
}

/// What a create answers: only facts fixed at creation, so a replay is byte-identical to
/// the first answer. `status` is the status at creation.
fn created_view(p: &Payment) -> Value {
    let up = p.upstream();
    json!({
        "payment_id": up.map(|u| u.payment_id.as_str()),
        "payment_url": up.map(|u| u.payment_url.as_str()),
        "created_at": up.map_or(p.created_at(), |u| u.created_at).unix_seconds(),
        "foreign_id": p.foreign_id().map(|f| f.as_str()),
        "id": p.id().to_string(),
        "status": PaymentStatus::Created.as_str(),
        "amount_fiat": p.money().amount().to_string(),
        "currency_fiat": p.money().currency().code(),
        "url_success": p.url_success().map(|u| u.as_str()),
        "url_failed": p.url_failed().map(|u| u.as_str()),
    })
}

/// The current state of a payment: IVPAY's GET fields and ours.
pub(crate) fn payment_view(p: &Payment) -> Value {
    let up = p.upstream();
    json!({
        "payment_id": up.map(|u| u.payment_id.as_str()),
        "foreign_id": p.foreign_id().map(|f| f.as_str()),
        "processed_at": p.processed_at().map(Timestamp::unix_seconds),
        "status": p.status().as_str(),
        "id": p.id().to_string(),
        "payment_url": up.map(|u| u.payment_url.as_str()),
        "created_at": up.map_or(p.created_at(), |u| u.created_at).unix_seconds(),
        "amount_fiat": p.money().amount().to_string(),
        "currency_fiat": p.money().currency().code(),
        "url_success": p.url_success().map(|u| u.as_str()),
        "url_failed": p.url_failed().map(|u| u.as_str()),
        "outcome": p.outcome().as_str(),
        "outcome_reason": p.outcome().reason(),
        "final": p.is_final(),
        "recorded_at": p.created_at().unix_seconds(),
        "updated_at": p.updated_at().unix_seconds(),
        "version": p.version(),
    })
}

fn event_view(e: &PaymentEvent) -> Value {
    json!({
        "payment_id": e.payment_id.as_str(),
        "source": e.source.as_str(),
        "from": e.from.map(PaymentStatus::as_str),
        "to": e.to.to_string(),
        "outcome": e.outcome.as_str(),
        "received_at": e.received_at.unix_seconds(),
        "evidence": e.evidence,
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let client = authenticate(&state, &headers)?;
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
    let mut response = ok(created_view(&reply.payment));
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

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    query: Result<Query<GetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
    let Query(query) =
        query.map_err(|_| ApiError::Invalid("refresh: expected true or false".into()))?;
    let payment = state
        .use_cases
        .get(reference(&payment_id)?, query.refresh)
        .await?;
    Ok(ok(payment_view(&payment)))
}

pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
    let events = state.use_cases.events(reference(&payment_id)?).await?;
    Ok(ok(Value::Array(events.iter().map(event_view).collect())))
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

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
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
    Ok(ok(json!({
        "items": page.items.iter().map(payment_view).collect::<Vec<_>>(),
        "next_cursor": page.next.map(encode_cursor),
    })))
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
