//! `POST /webhooks/ivpay`: IVPAY's status notices. Authenticated only by IVPAY echoing our
//! key, so each one is a hint: the use case confirms it with `GET` before applying.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ivpay_domain::{PaymentId, ReportedStatus, WebhookHint};
use ivpay_ports::WebhookReceipt;
use serde_json::{Value, json};

use crate::{ApiError, AppState, body};

/// Reads a notice, flat or inside `data`, tolerating every field but a missing or invalid
/// `payment_id`.
pub(crate) fn hint_of(bytes: &[u8]) -> Result<WebhookHint, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedBody(format!("not valid JSON: {e}")))?;
    let field = |name: &str| {
        value
            .get(name)
            .or_else(|| value.get("data").and_then(|d| d.get(name)))
            .and_then(Value::as_str)
    };
    let payment_id: PaymentId = field("payment_id")
        .ok_or_else(|| ApiError::Invalid("payment_id: required".into()))?
        .parse()
        .map_err(|e| ApiError::Invalid(format!("payment_id: {e}")))?;
    Ok(WebhookHint {
        payment_id,
        status: field("status").map(ReportedStatus::from),
        raw: String::from_utf8_lossy(bytes).into_owned(),
    })
}

/// IVPAY's webhook: kept in the inbox, then confirmed with IVPAY's `GET` before anything
/// is applied. 200 means it is durable: applied, recorded, or queued for the reconciler.
#[utoipa::path(
    post, path = "/webhooks/ivpay", tag = "webhooks",
    request_body(content = String, content_type = "application/json", description = "IVPAY's notice, flat or inside `data`"),
    responses(
        (status = 200, description = "handled (applied, duplicate, refused, unknown payment: all recorded) or queued in the inbox until IVPAY can confirm it"),
        (status = 400, body = crate::openapi::ErrorBody),
        (status = 401, body = crate::openapi::ErrorBody),
        (status = 503, description = "storage unavailable: not kept, IVPAY retries", body = crate::openapi::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let authentic = state
        .webhook_key
        .as_ref()
        .is_some_and(|k| k.verify(&headers));
    if !authentic {
        metrics::counter!("ivpay_webhooks_total", "outcome" => "unauthorized").increment(1);
        return Err(ApiError::Unauthorized);
    }
    let bytes = body::bytes(raw, state.body_limit)?;
    let hint = match hint_of(&bytes) {
        Ok(hint) => hint,
        Err(e) => {
            metrics::counter!("ivpay_webhooks_total", "outcome" => "malformed").increment(1);
            return Err(e);
        }
    };
    match state.use_cases.receive_webhook(hint).await {
        Ok(receipt) => {
            let outcome = match receipt {
                WebhookReceipt::Processed(outcome) => outcome.as_str(),
                WebhookReceipt::Queued => "queued",
            };
            metrics::counter!("ivpay_webhooks_total", "outcome" => outcome).increment(1);
            Ok(
                axum::Json(json!({ "success": true, "data": { "outcome": outcome } }))
                    .into_response(),
            )
        }
        Err(e) => {
            // Nothing was kept: not 200, so IVPAY delivers it again.
            metrics::counter!("ivpay_webhooks_total", "outcome" => "storage_error").increment(1);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_id_and_claimed_status_flat_or_enveloped() {
        let flat = br#"{"payment_id":"abc","status":"PAID","network":"TRON"}"#;
        let nested = br#"{"success":true,"data":{"payment_id":"abc","status":"PAID"}}"#;
        let hint = hint_of(flat).expect("flat");
        assert_eq!(hint.payment_id.as_str(), "abc");
        assert_eq!(hint.status, Some(ReportedStatus::from("PAID")));
        assert_eq!(hint_of(nested).expect("nested").payment_id.as_str(), "abc");
        assert_eq!(
            hint_of(br#"{"payment_id":"abc"}"#)
                .expect("no status")
                .status,
            None
        );
        assert!(matches!(hint_of(b"{}"), Err(ApiError::Invalid(m)) if m == "payment_id: required"));
        assert!(matches!(hint_of(b"{"), Err(ApiError::MalformedBody(_))));
        assert!(hint_of(br#"{"payment_id":"../x"}"#).is_err());
    }
}
