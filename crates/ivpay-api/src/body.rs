//! Request bodies: size-limited, JSON only, and every failure in the envelope with the
//! field named.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use crate::ApiError;

/// The raw body, or the enveloped error for a body that is too large or unreadable.
pub(crate) fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::MalformedBody(rejection.body_text())
        }
    })
}

/// Refuses anything but `application/json` (parameters such as `charset` allowed).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Parses a JSON object and refuses fields outside `allowed`, naming the first.
pub(crate) fn object(bytes: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedBody(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::MalformedBody("expected a JSON object".into()));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let name: String = unknown.chars().take(64).collect();
        return Err(ApiError::Invalid(format!("{name}: unknown field")));
    }
    Ok(map)
}

/// A string field: `None` when absent or null, an error naming the field for any other
/// JSON type (amounts must be strings: a JSON number would pass through a float).
pub(crate) fn string<'a>(
    map: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::Invalid(format!("{field}: must be a string"))),
    }
}

/// A required string field.
pub(crate) fn required<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    string(map, field)?.ok_or_else(|| ApiError::Invalid(format!("{field}: required")))
}
