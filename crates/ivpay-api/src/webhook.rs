//! `POST /webhooks/ivpay`: IVPAY's status notices, and the one parser of them.
//!
//! Authenticated only by IVPAY echoing our key, so each notice is a hint: the use case
//! keeps it and confirms it with `GET` before anything is applied. IVPAY does not publish
//! the payloads and retries a refused one only three times, so the parser takes whatever
//! IVPAY may plausibly send: a flat object or the same fields inside `data`, trailing
//! commas, ids as numbers, `processed_at` as a number or text, unknown fields, missing
//! optional fields. It refuses only a body that is not JSON (even tolerantly) and a
//! missing or unusable `payment_id`, the one thing a notice cannot do without.

use std::collections::BTreeMap;

use axum::extract::State;
use ivpay_domain::{AccountId, Field, FieldError, PaymentId, ReportedStatus, WebhookHint};
use ivpay_ports::{RepositoryError, UpdateError, WebhookReceipt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, ToSchema};

use crate::auth::IvpayNotifier;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::error::samples;
use crate::json::RawBody;
use crate::state::AppState;

/// The fields of a notice that public code reads. Each is read as any JSON value; what
/// cannot be used is ignored, except a `payment_id` (see [`WebhookBody::hint`]).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct NoticeFields {
    /// IVPAY's id of the payment.
    #[schema(schema_with = crate::schema::optional_webhook_payment_id)]
    payment_id: Option<Value>,
    /// The status IVPAY claims (CREATED, PENDING, PAID, TIMEOUT, or one we do not know).
    #[schema(schema_with = crate::schema::any)]
    status: Option<Value>,
    /// When IVPAY processed it: Unix seconds, as a number or text.
    #[schema(schema_with = crate::schema::any)]
    processed_at: Option<Value>,
    /// The merchant's reference, as text or a number.
    #[schema(schema_with = crate::schema::any)]
    foreign_id: Option<Value>,
}

/// IVPAY's notice: the fields flat, or inside `data` (IVPAY's response envelope). Other
/// fields (`network`, `tx_url`, ...) are accepted and kept in the raw body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub(crate) struct WebhookBody {
    #[serde(flatten)]
    notice: NoticeFields,
    /// The same fields (`NoticeFields`), when IVPAY wraps them; a `data` that is not an
    /// object is ignored like any other unknown field.
    #[schema(schema_with = crate::schema::any)]
    data: Option<Value>,
}

impl WebhookBody {
    /// The hint for the use case: each field from the top level, else from `data`.
    fn hint(self, account: AccountId, raw: &[u8]) -> Result<WebhookHint, ApiError> {
        let nested = match self.data {
            Some(data @ Value::Object(_)) => NoticeFields::deserialize(data).unwrap_or_default(),
            _ => NoticeFields::default(),
        };
        let flat = self.notice;
        let payment_id = flat.payment_id.or(nested.payment_id);
        let status = flat.status.or(nested.status);
        let processed_at = flat.processed_at.or(nested.processed_at);
        let foreign_id = flat.foreign_id.or(nested.foreign_id);
        let payment_id = payment_id_of(payment_id.as_ref())?;
        tracing::debug!(
            payment_id = %payment_id,
            status = ?status,
            processed_at = ?processed_at.as_ref().and_then(seconds),
            foreign_id = ?foreign_id.as_ref().and_then(id_text),
            "webhook read"
        );
        Ok(WebhookHint {
            account,
            payment_id,
            status: status
                .as_ref()
                .and_then(Value::as_str)
                .map(ReportedStatus::from),
            raw: String::from_utf8_lossy(raw).into_owned(),
        })
    }
}

/// Text, or an integer taken as its digits (`12345` is the id `"12345"`).
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => {
            // A JSON integer (`12` or `12.0`) from 0 to 2^53, the range every JSON reader
            // holds exactly; a larger one may already have been rounded by its writer.
            let whole = n.as_u64().or_else(|| {
                let f = n.as_f64()?;
                (f.fract() == 0.0 && f >= 0.0).then_some(f as u64)
            })?;
            (whole <= crate::schema::LARGEST_INTEGER_ID).then(|| whole.to_string())
        }
        _ => None,
    }
}

/// Unix seconds as a number or as digits.
fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn payment_id_of(v: Option<&Value>) -> Result<PaymentId, ApiError> {
    let field = Field::PaymentId.as_str();
    let v = v.ok_or_else(|| ApiError::invalid(field, "required"))?;
    let text = id_text(v).ok_or_else(|| {
        ApiError::invalid(field, "must be a string, or an integer from 0 to 2^53")
    })?;
    text.parse::<PaymentId>()
        .map_err(|e| FieldError::new(Field::PaymentId, e).into())
}

/// Reads a notice: see the module's rules.
///
/// # Errors
///
/// [`ApiError::MalformedBody`] for a body that is not JSON even tolerantly;
/// [`ApiError::Invalid`] naming `payment_id` when it is missing or unusable (a JSON body
/// that is not an object has none).
pub(crate) fn hint_of(account: AccountId, raw: &[u8]) -> Result<WebhookHint, ApiError> {
    let value: Value = crate::json::from_slice(raw)?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            Field::PaymentId.as_str(),
            "required (the body is JSON but not an object)",
        ));
    }
    count_undocumented(&value);
    // Cannot fail: every field takes any JSON value, and an object has no duplicate keys.
    let body =
        WebhookBody::deserialize(value).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    body.hint(account, raw)
}

/// Fields public code reads from a notice (IVPAY does not publish the payloads), and the
/// envelope's own.
const KNOWN_FIELDS: [&str; 6] = [
    "payment_id",
    "status",
    "processed_at",
    "foreign_id",
    "network",
    "tx_url",
];
const ENVELOPE_FIELDS: [&str; 3] = ["success", "data", "error"];

/// Counts each field of a notice (top level, and inside an object `data`) that neither
/// public code nor the envelope names: contract drift,
/// `ivpay_contract_drift_fields_total{source="webhook"}`. The body itself is kept in full.
fn count_undocumented(value: &Value) {
    let Value::Object(top) = value else { return };
    let nested = match top.get("data") {
        Some(Value::Object(data)) => Some(data),
        _ => None,
    };
    let unknown = top
        .keys()
        .filter(|k| !KNOWN_FIELDS.contains(&k.as_str()) && !ENVELOPE_FIELDS.contains(&k.as_str()))
        .chain(
            nested
                .into_iter()
                .flat_map(|d| d.keys())
                .filter(|k| !KNOWN_FIELDS.contains(&k.as_str())),
        )
        .count();
    if unknown > 0 {
        metrics::counter!("ivpay_contract_drift_fields_total", "source" => "webhook")
            .increment(unknown as u64);
    }
}

/// The name of a receipt, as the 200 body's `outcome` and the metric label.
pub(crate) fn receipt_name(receipt: WebhookReceipt) -> &'static str {
    match receipt {
        WebhookReceipt::Processed(outcome) => outcome.as_str(),
        WebhookReceipt::Queued => "queued",
    }
}

/// What became of a notice.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookAck {
    /// `queued`: kept in the inbox; the inbox worker confirms it with IVPAY's `GET` and
    /// applies what IVPAY says shortly after (read the payment to see it). `duplicate`: it
    /// claimed the status the payment already has, and is recorded as such at once.
    #[schema(example = "queued")]
    pub(crate) outcome: &'static str,
}

/// Every answer of `POST /webhooks/ivpay` but 200.
pub(crate) struct WebhookErrors;

impl IntoResponses for WebhookErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = vec![
            ApiError::Unauthorized,
            ApiError::MalformedBody(String::new()),
            ApiError::TooLarge { limit: 0 },
            ApiError::invalid(Field::PaymentId.as_str(), ""),
        ];
        errors.extend(samples::storage().map(|s: RepositoryError| UpdateError::Storage(s).into()));
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// IVPAY's webhook. 200 means it is durable (kept in the inbox, or already recorded);
/// anything else makes IVPAY deliver it again.
#[utoipa::path(
    post, path = "/webhooks/ivpay", tag = "webhooks",
    request_body(content = WebhookBody, description = "IVPAY's notice, flat or inside `data`; trailing commas and unknown fields accepted"),
    responses((status = 200, body = Envelope<WebhookAck>), WebhookErrors),
    security(("ivpay_key" = []))
)]
pub(crate) async fn receive(
    State(state): State<AppState>,
    IvpayNotifier(account): IvpayNotifier,
    RawBody(raw): RawBody,
) -> Result<Envelope<WebhookAck>, ApiError> {
    let hint = hint_of(account, &raw).inspect_err(|_| {
        metrics::counter!("ivpay_webhooks_total", "outcome" => "malformed").increment(1);
    })?;
    let receipt = state
        .use_cases
        .receive_webhook(hint)
        .await
        .inspect_err(|_| {
            // Nothing was kept: not 200, so IVPAY delivers it again.
            metrics::counter!("ivpay_webhooks_total", "outcome" => "storage_error").increment(1);
        })?;
    let outcome = receipt_name(receipt);
    metrics::counter!("ivpay_webhooks_total", "outcome" => outcome).increment(1);
    Ok(Envelope::new(WebhookAck { outcome }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(body: &str) -> Result<WebhookHint, ApiError> {
        hint_of(AccountId::default(), body.as_bytes())
    }

    #[test]
    fn finds_the_id_and_claimed_status_flat_or_enveloped() {
        let flat = hint(r#"{"payment_id":"abc","status":"PAID","network":"TRON"}"#).expect("flat");
        assert_eq!(flat.payment_id.as_str(), "abc");
        assert_eq!(flat.status, Some(ReportedStatus::from("PAID")));
        let nested = hint(r#"{"success":true,"data":{"payment_id":"abc","status":"PAID",},}"#)
            .expect("nested");
        assert_eq!(nested.payment_id.as_str(), "abc");
        assert_eq!(nested.status, Some(ReportedStatus::from("PAID")));
    }

    #[test]
    fn fields_nobody_documents_are_counted_as_drift() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            hint(r#"{"payment_id":"a","status":"PAID","network":"TRON","tx_url":"x"}"#)
                .expect("known fields only");
            hint(r#"{"success":true,"event":"paid","data":{"payment_id":"a","fee":"0.1","amount":"1"}}"#)
                .expect("three unknown");
        });
        let page = handle.render();
        assert!(
            page.lines()
                .any(|l| l == "ivpay_contract_drift_fields_total{source=\"webhook\"} 3"),
            "{page}"
        );
    }

    #[test]
    fn keeps_the_body_verbatim() {
        let body = "{\"payment_id\": 12345, \"status\": \"PAID\",}\n";
        assert_eq!(hint(body).expect("tolerated").raw, body);
    }

    #[test]
    fn numbers_are_ids_and_times_in_any_spelling_are_accepted() {
        let h = hint(r#"{"payment_id":12345,"foreign_id":678,"processed_at":"1726248785"}"#)
            .expect("numeric ids");
        assert_eq!(h.payment_id.as_str(), "12345");
        assert_eq!(h.status, None);
        // JSON Schema's integers include `12.0`; the largest exact one is read too.
        let whole = hint(r#"{"payment_id":97294.0}"#).expect("a whole number");
        assert_eq!(whole.payment_id.as_str(), "97294");
        let largest = hint(r#"{"payment_id":9007199254740992}"#).expect("2^53");
        assert_eq!(largest.payment_id.as_str(), "9007199254740992");
        assert!(
            hint(r#"{"payment_id":"a","processed_at":[1],"foreign_id":{"x":1},"status":7}"#)
                .is_ok()
        );
    }

    #[test]
    fn refuses_only_a_missing_or_unusable_payment_id_naming_it() {
        for (body, reason) in [
            ("{}", "required"),
            (r#"{"payment_id":null,"status":"PAID"}"#, "required"),
            (r#"{"data":"PAID"}"#, "required"),
            (
                r#"{"payment_id":1.5}"#,
                "must be a string, or an integer from 0 to 2^53",
            ),
            (
                r#"{"payment_id":true}"#,
                "must be a string, or an integer from 0 to 2^53",
            ),
            (
                r#"{"payment_id":-1}"#,
                "must be a string, or an integer from 0 to 2^53",
            ),
            (
                r#"{"payment_id":9007199254740993}"#,
                "must be a string, or an integer from 0 to 2^53",
            ),
        ] {
            match hint(body) {
                Err(ApiError::Invalid { field, reason: r }) => {
                    assert_eq!((field, r.as_str()), ("payment_id", reason), "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(
            hint(r#"{"payment_id":"../x"}"#),
            Err(ApiError::Invalid {
                field: "payment_id",
                ..
            })
        ));
    }

    #[test]
    fn refuses_what_is_not_json_and_json_without_an_id() {
        for body in ["{", "not json", "", "{\"payment_id\":\"a\"} // c"] {
            assert!(
                matches!(hint(body), Err(ApiError::MalformedBody(_))),
                "{body}"
            );
        }
        for body in ["[1]", "\"x\"", "7"] {
            assert!(
                matches!(
                    hint(body),
                    Err(ApiError::Invalid {
                        field: "payment_id",
                        ..
                    })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn a_repeated_key_counts_once() {
        let h = hint(r#"{"payment_id":"a","payment_id":"b"}"#).expect("tolerated");
        assert_eq!(h.payment_id.as_str(), "b");
    }

    #[test]
    fn receipts_are_named_as_the_outcome() {
        assert_eq!(receipt_name(WebhookReceipt::Queued), "queued");
        assert_eq!(
            receipt_name(WebhookReceipt::Processed(
                ivpay_domain::EventOutcome::Applied
            )),
            "applied"
        );
    }
}
