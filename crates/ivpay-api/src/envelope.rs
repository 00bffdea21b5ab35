//! IVPAY's envelope, the shape of every JSON answer: `{"success": true, "data": ...}` or
//! `{"success": false, "error": "...", ...}`. Both are types, serialised here and nowhere
//! else, and the OpenAPI document is generated from the same types.

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A successful answer: `{"success": true, "data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Envelope<T> {
    /// Always `true` here; errors are [`ErrorBody`].
    #[schema(value_type = bool, example = true)]
    success: True,
    /// The answer.
    data: T,
}

/// `true`, as a type: a success envelope cannot say anything else.
#[derive(Debug, Clone, Copy)]
struct True;

impl Serialize for True {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<T> Envelope<T> {
    /// Wraps an answer.
    pub(crate) fn new(data: T) -> Self {
        Self {
            success: True,
            data,
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}

/// Every error: IVPAY's `{success: false, error}` plus our fields. Rendered only by
/// [`ApiError`](crate::ApiError).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Always `false`.
    #[schema(value_type = bool, example = false)]
    success: False,
    /// What went wrong, naming the field where one is at fault (IVPAY's `error`).
    #[schema(example = "amount_fiat: 3 decimals, USD allows 2")]
    pub(crate) error: String,
    /// A stable machine-readable code.
    #[schema(schema_with = code_schema)]
    pub(crate) code: &'static str,
    /// The field (or header, or query parameter) at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "amount_fiat")]
    pub(crate) field: Option<&'static str>,
    /// Our id of the payment, when the error concerns one (e.g. 504 `outcome_unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub(crate) id: Option<String>,
}

/// Every `code` an error body can carry (what [`ApiError::code`](crate::ApiError::code)
/// answers; a test holds the two together).
pub(crate) const CODES: [&str; 27] = [
    "invalid_request",
    "malformed_body",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "body_too_large",
    "unsupported_media_type",
    "rate_limited",
    "timeout",
    "not_ready",
    "idempotency_key_reused",
    "idempotency_key_in_flight",
    "rejected_by_ivpay",
    "upstream_unauthorized",
    "upstream_unavailable",
    "outcome_unknown",
    "not_recorded",
    "storage_error",
    "internal_error",
    "contended",
    "outcome_settled",
    "already_linked",
    "foreign_id_mismatch",
    "already_exists",
    "unknown_client",
    "unknown_account",
];

fn code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(CODES))
        .examples(["invalid_request"])
        .build()
}

/// `false`, as a type.
#[derive(Debug, Clone, Copy)]
struct False;

impl Serialize for False {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(false)
    }
}

impl ErrorBody {
    /// An error body with no field and no payment.
    pub(crate) fn new(error: String, code: &'static str) -> Self {
        Self {
            success: False,
            error,
            code,
            field: None,
            id: None,
        }
    }
}
