//! IVPAY's JSON, as it is on the wire.
//!
//! These types say what IVPAY sends and expects, and nothing more: identifiers and URLs
//! stay text here and become domain types in the adapter (`TryFrom`), so a value IVPAY
//! spells in an unexpected way is reported precisely instead of failing a whole body.
//!
//! **Tolerant** where IVPAY's documentation is vague:
//! - a trailing comma before `}` or `]` is accepted (its own create example has one);
//! - unknown fields are kept in `extra`, each as its exact JSON text
//!   ([`serde_json::value::RawValue`]), so a number such as `10.50` is never re-read
//!   through a float;
//! - an unknown status is a [`ReportedStatus::Unknown`], not an error;
//! - `created_at`/`processed_at` may be a number or a string of digits; ids may be a
//!   string or a bare number (kept as written).
//!
//! **Strict** where it matters: money is only ever a string, and every field we rely on
//! must be present with a usable type.
//!
//! The `Deserialize` impls work with `serde_json` only (they keep raw JSON text). Webhooks
//! are not read here: the service's receiver (`ivpay-api`) owns that parser.
//!
//! ```
//! use ivpay_http_adapter::wire::{self, PaymentDetails};
//!
//! let body = br#"{"success": true, "data": {"payment_id": "abc", "status": "CANCELED", "fee": 0.10}}"#;
//! let envelope = wire::parse_envelope(body)?;
//! let details: PaymentDetails = envelope.data_as()?;
//! assert_eq!(details.status.to_string(), "CANCELED");
//! assert_eq!(details.extra["fee"].get(), "0.10");
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use ivpay_domain::ReportedStatus;
use ivpay_ports::CreateRequest;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Fields IVPAY sent that these types do not name, each with its exact JSON text.
pub type Extra = BTreeMap<String, Box<RawValue>>;

/// The body of `POST /payment/create`.
///
/// Optional fields are omitted, not sent as `null`, when absent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CreatePaymentRequest {
    /// The amount as decimal text with the currency's minor units, e.g. `"10.50"`.
    pub amount_fiat: String,
    /// The fiat ticker, e.g. `"USD"`.
    pub currency_fiat: String,
    /// The merchant's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_id: Option<String>,
    /// Where the customer goes after paying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_success: Option<String>,
    /// Where the customer goes after a failed payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_failed: Option<String>,
}

impl From<&CreateRequest> for CreatePaymentRequest {
    fn from(request: &CreateRequest) -> Self {
        Self {
            // FiatAmount renders exactly the currency's minor units: "10.50", never a float.
            amount_fiat: request.money.amount().to_string(),
            currency_fiat: request.money.currency().code().to_owned(),
            foreign_id: Some(request.foreign_id.as_str().to_owned()),
            url_success: request.url_success.as_ref().map(|u| u.as_str().to_owned()),
            url_failed: request.url_failed.as_ref().map(|u| u.as_str().to_owned()),
        }
    }
}

/// IVPAY's response envelope: `{"success": true, "data": ...}` or
/// `{"success": false, "error": "..."}`.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Whether IVPAY says the call succeeded. Missing counts as `false`.
    pub success: bool,
    /// The payload, unparsed, when present and not `null`.
    pub data: Option<Box<RawValue>>,
    /// IVPAY's error message, when present (a number or other value is kept as its JSON
    /// text).
    pub error: Option<String>,
    /// Any other top-level fields.
    pub extra: Extra,
}

impl Envelope {
    /// Parses `data` as `T`.
    ///
    /// # Errors
    ///
    /// When `data` is missing or does not have `T`'s shape.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.data {
            Some(raw) => serde_json::from_str(raw.get()),
            None => Err(serde_json::Error::custom("missing field `data`")),
        }
    }
}

/// Parses a response body into the envelope, tolerating trailing commas (and nothing else
/// non-standard).
///
/// # Errors
///
/// When the body is not a JSON object (garbage, truncated, HTML, empty).
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, serde_json::Error> {
    ivpay_json::from_slice(body)
}

/// `data` of a successful create.
#[derive(Clone, Debug)]
pub struct CreatedPayment {
    /// IVPAY's id for the payment.
    pub payment_id: String,
    /// The hosted page the customer pays on.
    pub payment_url: String,
    /// Unix seconds, when IVPAY sent it.
    pub created_at: Option<i64>,
    /// The foreign id IVPAY recorded.
    pub foreign_id: Option<String>,
    /// Other fields.
    pub extra: Extra,
}

/// `data` of `GET /payment/{payment_id}`.
#[derive(Clone, Debug)]
pub struct PaymentDetails {
    /// IVPAY's id for the payment.
    pub payment_id: String,
    /// The foreign id IVPAY holds.
    pub foreign_id: Option<String>,
    /// Unix seconds at which IVPAY processed the current status.
    pub processed_at: Option<i64>,
    /// The status, possibly one we do not know.
    pub status: ReportedStatus,
    /// Other fields.
    pub extra: Extra,
}

/// An answer's `data` read into the fields IVPAY's documentation names; what else IVPAY
/// sent is kept, and is contract drift.
pub trait Documented {
    /// The fields IVPAY sent that its documentation does not name.
    fn undocumented(&self) -> &Extra;
}

impl Documented for CreatedPayment {
    fn undocumented(&self) -> &Extra {
        &self.extra
    }
}

impl Documented for PaymentDetails {
    fn undocumented(&self) -> &Extra {
        &self.extra
    }
}

/// A JSON object's members, each kept as raw text until a field asks for it.
#[derive(Deserialize)]
#[serde(transparent)]
struct Fields(Extra);

impl Fields {
    /// Removes `key` and parses it; `null` counts as absent.
    fn optional<T>(
        &mut self,
        key: &str,
        parse: fn(&RawValue) -> Result<T, serde_json::Error>,
    ) -> Result<Option<T>, serde_json::Error> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => parse(&raw)
                .map(Some)
                .map_err(|e| serde_json::Error::custom(format_args!("field `{key}`: {e}"))),
        }
    }

    fn require<T>(
        &mut self,
        key: &str,
        parse: fn(&RawValue) -> Result<T, serde_json::Error>,
    ) -> Result<T, serde_json::Error> {
        self.optional(key, parse)?
            .ok_or_else(|| serde_json::Error::custom(format_args!("missing field `{key}`")))
    }
}

/// A string, or a bare number kept exactly as written (`123456`).
fn text(raw: &RawValue) -> Result<String, serde_json::Error> {
    let s = raw.get();
    if s.starts_with('"') {
        serde_json::from_str(s)
    } else if s.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(serde_json::Error::custom("expected a string"))
    }
}

/// Unix seconds as an integer or a string of digits.
fn seconds(raw: &RawValue) -> Result<i64, serde_json::Error> {
    let s = raw.get();
    if s.starts_with('"') {
        let inner: String = serde_json::from_str(s)?;
        inner
            .parse()
            .map_err(|_| serde_json::Error::custom("expected Unix seconds"))
    } else {
        serde_json::from_str(s)
    }
}

fn status(raw: &RawValue) -> Result<ReportedStatus, serde_json::Error> {
    serde_json::from_str::<String>(raw.get()).map(ReportedStatus::from)
}

fn flag(raw: &RawValue) -> Result<bool, serde_json::Error> {
    serde_json::from_str(raw.get())
}

fn any(raw: &RawValue) -> Result<Box<RawValue>, serde_json::Error> {
    Ok(raw.to_owned())
}

/// A message: a string, or any other JSON value kept as its text.
fn message(raw: &RawValue) -> Result<String, serde_json::Error> {
    text(raw).or_else(|_| Ok(raw.get().to_owned()))
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::deserialize(d)?;
        let mut build = || -> Result<Self, serde_json::Error> {
            Ok(Self {
                success: f.optional("success", flag)?.unwrap_or(false),
                data: f.optional("data", any)?,
                error: f.optional("error", message)?,
                extra: std::mem::take(&mut f.0),
            })
        };
        build().map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for CreatedPayment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::deserialize(d)?;
        let mut build = || -> Result<Self, serde_json::Error> {
            Ok(Self {
                payment_id: f.require("payment_id", text)?,
                payment_url: f.require("payment_url", text)?,
                created_at: f.optional("created_at", seconds)?,
                foreign_id: f.optional("foreign_id", text)?,
                extra: std::mem::take(&mut f.0),
            })
        };
        build().map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for PaymentDetails {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut f = Fields::deserialize(d)?;
        let mut build = || -> Result<Self, serde_json::Error> {
            Ok(Self {
                payment_id: f.require("payment_id", text)?,
                foreign_id: f.optional("foreign_id", text)?,
                processed_at: f.optional("processed_at", seconds)?,
                status: f.require("status", status)?,
                extra: std::mem::take(&mut f.0),
            })
        };
        build().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivpay_domain::PaymentStatus;

    #[test]
    fn create_request_omits_absent_urls() {
        let body = CreatePaymentRequest {
            amount_fiat: "10.50".into(),
            currency_fiat: "USD".into(),
            foreign_id: Some("order-1".into()),
            url_success: None,
            url_failed: None,
        };
        assert_eq!(
            serde_json::to_string(&body).expect("serializes"),
            r#"{"amount_fiat":"10.50","currency_fiat":"USD","foreign_id":"order-1"}"#
        );
    }

    #[test]
    fn unknown_fields_keep_their_exact_text() {
        let d: PaymentDetails = serde_json::from_str(
            r#"{"payment_id":"p1","status":"PAID","amount":10.50,"big":123456789012345678901234567890}"#,
        )
        .expect("parses");
        assert_eq!(d.extra["amount"].get(), "10.50");
        assert_eq!(d.extra["big"].get(), "123456789012345678901234567890");
        assert_eq!(d.status, ReportedStatus::Known(PaymentStatus::Paid));
    }

    #[test]
    fn timestamps_and_ids_accept_numbers_and_digit_strings() {
        let d: PaymentDetails = serde_json::from_str(
            r#"{"payment_id":"p1","status":"PENDING","processed_at":"1726248785","foreign_id":123456}"#,
        )
        .expect("parses");
        assert_eq!(d.processed_at, Some(1_726_248_785));
        assert_eq!(d.foreign_id.as_deref(), Some("123456"));
    }

    #[test]
    fn null_optional_fields_are_absent() {
        let d: PaymentDetails = serde_json::from_str(
            r#"{"payment_id":"p1","status":"CREATED","processed_at":null,"foreign_id":null}"#,
        )
        .expect("parses");
        assert_eq!(d.processed_at, None);
        assert_eq!(d.foreign_id, None);
    }

    #[test]
    fn missing_or_mistyped_required_fields_are_errors() {
        let missing = serde_json::from_str::<PaymentDetails>(r#"{"payment_id":"p1"}"#)
            .expect_err("status is required");
        assert!(
            missing.to_string().contains("missing field `status`"),
            "{missing}"
        );
        let typed = serde_json::from_str::<PaymentDetails>(r#"{"payment_id":"p1","status":7}"#)
            .expect_err("status must be text");
        assert!(typed.to_string().contains("field `status`"), "{typed}");
        assert!(serde_json::from_str::<PaymentDetails>("[1]").is_err());
    }

    #[test]
    fn envelope_keeps_error_text_and_treats_missing_success_as_false() {
        let e = parse_envelope(br#"{"error": "Wrong auth parameters"}"#).expect("parses");
        assert!(!e.success);
        assert_eq!(e.error.as_deref(), Some("Wrong auth parameters"));
        assert!(e.data_as::<PaymentDetails>().is_err());
        let odd = parse_envelope(br#"{"success": false, "error": {"code": 3}}"#).expect("parses");
        assert_eq!(odd.error.as_deref(), Some(r#"{"code": 3}"#));
    }
}
