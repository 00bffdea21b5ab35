//! Request bodies: size-limited, JSON with IVPAY's trailing commas tolerated, and every
//! failure in the envelope (413 too large, 415 not JSON by `Content-Type`, 400 not JSON).
//!
//! Tolerance is IVPAY's documented style, and clients copy IVPAY's examples: a trailing
//! comma before `}` or `]` is read, nothing else non-standard. The rule is `ivpay-json`'s,
//! the same the HTTP adapter reads IVPAY's answers by.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// Reads JSON that may have trailing commas into `T`.
///
/// # Errors
///
/// [`ApiError::MalformedBody`]: not JSON even tolerantly, or not `T`'s shape.
pub(crate) fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let strict = ivpay_json::to_strict(body)
        .map_err(|e| ApiError::MalformedBody(format!("not valid JSON: {e}")))?;
    serde_json::from_slice(&strict).map_err(|e| ApiError::MalformedBody(e.to_string()))
}

/// Re-writes text that is JSON (trailing commas tolerated) as strict JSON; `None` when it
/// is not JSON even tolerantly.
pub(crate) fn to_strict(text: &str) -> Option<Box<serde_json::value::RawValue>> {
    let strict = ivpay_json::to_strict(text.as_bytes()).ok()?;
    let text = String::from_utf8(strict.into_owned()).ok()?;
    serde_json::value::RawValue::from_string(text.trim().to_owned()).ok()
}

/// The raw body, read within the router's limit.
pub(crate) struct RawBody(pub(crate) Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge {
                        limit: state.body_limit,
                    }
                } else {
                    ApiError::MalformedBody(rejection.body_text())
                }
            })
    }
}

/// A JSON body sent as `application/json`, trailing commas tolerated.
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        from_slice(&bytes).map(Self)
    }
}

impl<T> Json<T> {
    /// The errors reading the body can answer, for the document.
    pub(crate) fn errors() -> Vec<ApiError> {
        vec![
            ApiError::MalformedBody(String::new()),
            ApiError::TooLarge { limit: 0 },
            ApiError::UnsupportedMediaType,
        ]
    }
}

/// Refuses anything but `application/json` (parameters such as `charset` allowed).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn keeps_numbers_exactly_when_rewriting() {
        let raw =
            to_strict(r#"{"n": 10.50, "big": 123456789012345678901234567890,}"#).expect("json");
        assert_eq!(
            raw.get(),
            r#"{"n":10.50,"big":123456789012345678901234567890}"#
        );
        assert_eq!(
            to_strict(" {\"a\": 1} ").map(|r| r.get().to_owned()),
            Some("{\"a\": 1}".into())
        );
        assert!(to_strict("not found at IVPAY").is_none());
    }

    #[test]
    fn a_body_that_is_not_json_even_tolerantly_is_malformed() {
        for bad in ["[1,,]", "{\"a\":1", "{} // c", ""] {
            assert!(
                matches!(
                    from_slice::<Value>(bad.as_bytes()),
                    Err(ApiError::MalformedBody(_))
                ),
                "{bad}"
            );
        }
        assert!(from_slice::<Value>(b"{\"a\": [1,],}").is_ok());
    }
}
