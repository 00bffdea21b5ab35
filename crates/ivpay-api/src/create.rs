//! `POST /payment/create`: IVPAY's create, with an optional `Idempotency-Key`.
//!
//! The body is read as IVPAY reads it: fields it does not know are ignored (and counted,
//! so a client sending something we drop is visible), a trailing comma is fine. The five
//! known fields keep every rule: amounts are JSON strings, never numbers, because a number
//! would pass through a float.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, State};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ivpay_domain::{Field, FieldError, IdempotencyKey, NewPayment, Payment, PaymentStatus};
use ivpay_ports::CreateError;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, ToSchema};

use crate::auth::CanCreate;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::error::samples;
use crate::json::Json;
use crate::keys::Scope;
use crate::payment::Terms;
use crate::state::AppState;

/// The header a client sets to make a create safe to repeat.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set (to `true`) on a create answered from storage.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Longest unknown field name written to the log.
const LOGGED_NAME_CHARS: usize = 64;

/// The body of `POST /payment/create`: IVPAY's five fields. Each is read as any JSON
/// value, so a wrong type is refused naming the field; anything else is ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub(crate) struct CreateBody {
    #[schema(schema_with = crate::schema::amount, required = true)]
    amount_fiat: Option<Value>,
    #[schema(schema_with = crate::schema::currency, required = true)]
    currency_fiat: Option<Value>,
    #[schema(schema_with = crate::schema::optional_foreign_id)]
    foreign_id: Option<Value>,
    /// Where the customer goes after paying.
    #[schema(schema_with = crate::schema::redirect_url)]
    url_success: Option<Value>,
    /// Where the customer goes after a failed payment.
    #[schema(schema_with = crate::schema::redirect_url)]
    url_failed: Option<Value>,
    /// Fields IVPAY does not know: accepted, ignored, counted.
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: BTreeMap<String, IgnoredAny>,
}

impl CreateBody {
    /// The request, each field checked by its domain type, naming the field on error.
    fn request(&self) -> Result<NewPayment, ApiError> {
        let request = NewPayment::from_fields(
            required(Field::AmountFiat, &self.amount_fiat)?,
            required(Field::CurrencyFiat, &self.currency_fiat)?,
            text(Field::ForeignId, &self.foreign_id)?,
            text(Field::UrlSuccess, &self.url_success)?,
            text(Field::UrlFailed, &self.url_failed)?,
        )?;
        Ok(request)
    }

    /// Counts (and logs, at debug) the fields ignored. Names are not metric labels: a
    /// client could mint any number of them.
    fn count_unknown(&self) {
        if self.unknown.is_empty() {
            return;
        }
        metrics::counter!("ivpay_unknown_fields_total", "source" => "create")
            .increment(self.unknown.len() as u64);
        for name in self.unknown.keys() {
            let name: String = name.chars().take(LOGGED_NAME_CHARS).collect();
            tracing::debug!(field = %name, "create: unknown field ignored");
        }
    }
}

/// A string field: `None` when absent or null; any other JSON type is refused (an amount
/// as a JSON number would pass through a float).
fn text(field: Field, value: &Option<Value>) -> Result<Option<&str>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(field.as_str(), "must be a string")),
    }
}

fn required(field: Field, value: &Option<Value>) -> Result<&str, ApiError> {
    text(field, value)?.ok_or_else(|| ApiError::invalid(field.as_str(), "required"))
}

/// The `Idempotency-Key` header, if sent.
pub(crate) struct IdempotencyKeyHeader(Option<IdempotencyKey>);

impl FromRequestParts<AppState> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY_HEADER) else {
            return Ok(Self(None));
        };
        let text = value.to_str().map_err(|_| {
            ApiError::invalid(Field::IdempotencyKey.as_str(), "must be visible ASCII")
        })?;
        let key = text
            .parse::<IdempotencyKey>()
            .map_err(|e| FieldError::new(Field::IdempotencyKey, e))?;
        Ok(Self(Some(key)))
    }
}

crate::schema::documents_parameter!(
    IdempotencyKeyHeader,
    "Idempotency-Key",
    Header,
    false,
    crate::schema::idempotency_key
);

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
    #[schema(format = "uuid")]
    id: String,
    /// Always `CREATED`.
    #[schema(schema_with = crate::schema::status)]
    status: &'static str,
    /// What was asked for.
    #[serde(flatten)]
    terms: Terms,
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
            terms: Terms::of(p),
        }
    }
}

/// The metric label of a create's outcome.
fn outcome_label(result: &Result<ivpay_ports::CreateReply, CreateError>) -> &'static str {
    match result {
        Ok(r) if r.replayed => "replayed",
        Ok(_) => "created",
        Err(e) => match e {
            CreateError::IdempotencyMismatch => "idempotency_mismatch",
            CreateError::InFlight { .. } => "in_flight",
            CreateError::Rejected { .. } => "rejected",
            CreateError::UpstreamUnauthorized => "upstream_unauthorized",
            CreateError::UpstreamUnavailable { .. } => "upstream_unavailable",
            CreateError::OutcomeUnknown { .. } => "unknown",
            CreateError::NotRecorded { .. } => "not_recorded",
            CreateError::Storage(_) => "storage_error",
            CreateError::Invariant(_) => "invariant",
        },
    }
}

/// Every answer of `POST /payment/create` but 200.
pub(crate) struct CreateErrors;

impl IntoResponses for CreateErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = crate::auth::errors(Scope::Create);
        errors.push(ApiError::invalid(Field::AmountFiat.as_str(), ""));
        errors.extend(Json::<CreateBody>::errors());
        errors.extend(samples::create());
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// Create a payment at IVPAY.
#[utoipa::path(
    post, path = "/payment/create", tag = "payments",
    request_body = CreateBody,
    params(IdempotencyKeyHeader),
    responses(
        (status = 200, description = "created (or replayed: header `Idempotent-Replayed: true`)", body = Envelope<CreatedView>,
            headers(("Idempotent-Replayed" = String, description = "`true` when answered from storage for a repeated `Idempotency-Key`")),
            links(
                ("GetPayment" = (operation_id = "get", parameters(("payment_id" = "$response.body#/data/id")), description = "the payment just created, by our id")),
                ("PaymentEvents" = (operation_id = "events", parameters(("payment_id" = "$response.body#/data/id")), description = "its history")),
            )),
        CreateErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    CanCreate(client): CanCreate,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    body.count_unknown();
    let request = body.request()?;
    state.redirects.check(&client, &request)?;
    let result = state.use_cases.create(client, key, request).await;
    metrics::counter!("ivpay_creates_total", "outcome" => outcome_label(&result)).increment(1);
    let reply = result?;
    let mut response = Envelope::new(CreatedView::of(&reply.payment)).into_response();
    if reply.replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}
