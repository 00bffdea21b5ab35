//! IVPAY's JSON as the sandbox speaks it: request and response bodies, the envelope and
//! the webhook payload. The sandbox's own copy, kept apart from the HTTP adapter's, so a
//! mistake in one is caught by the other.

use serde::{Deserialize, Serialize};

/// The exact 401 body IVPAY documents.
pub(crate) const WRONG_AUTH: &str = r#"{"success":false,"error":"Wrong auth parameters"}"#;

/// `POST /payment/create` body. Unknown fields are ignored, as a tolerant server would.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    pub(crate) amount_fiat: String,
    pub(crate) currency_fiat: String,
    #[serde(default)]
    pub(crate) foreign_id: Option<String>,
    #[serde(default)]
    pub(crate) url_success: Option<String>,
    #[serde(default)]
    pub(crate) url_failed: Option<String>,
}

/// `data` of a create response, fields in IVPAY's documented order.
#[derive(Debug, Serialize)]
pub(crate) struct CreatedData<'a> {
    pub(crate) payment_id: &'a str,
    pub(crate) payment_url: &'a str,
    pub(crate) created_at: i64,
    pub(crate) foreign_id: Option<&'a str>,
}

/// `data` of a get response, fields in IVPAY's documented order.
#[derive(Debug, Serialize)]
pub(crate) struct PaymentData<'a> {
    pub(crate) payment_id: &'a str,
    pub(crate) foreign_id: Option<&'a str>,
    pub(crate) processed_at: i64,
    pub(crate) status: &'a str,
}

/// The webhook body: the flat fields public receivers read.
#[derive(Debug, Serialize)]
pub(crate) struct WebhookBody<'a> {
    pub(crate) payment_id: &'a str,
    pub(crate) foreign_id: Option<&'a str>,
    pub(crate) status: &'a str,
    pub(crate) processed_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) network: Option<&'a str>,
}

#[derive(Serialize)]
struct Success<T> {
    success: bool,
    data: T,
}

#[derive(Serialize)]
struct Failure<'a> {
    success: bool,
    error: &'a str,
}

/// `{"success":true,"data":...}`, compact.
pub(crate) fn success<T: Serialize>(data: T) -> Vec<u8> {
    serde_json::to_vec(&Success {
        success: true,
        data,
    })
    .unwrap_or_else(|_| b"{\"success\":true}".to_vec())
}

/// `{"success":false,"error":"..."}`, compact.
pub(crate) fn failure(message: &str) -> Vec<u8> {
    serde_json::to_vec(&Failure {
        success: false,
        error: message,
    })
    .unwrap_or_else(|_| WRONG_AUTH.as_bytes().to_vec())
}

/// The success envelope laid out as in IVPAY's documentation: two-space indents and a
/// comma after the last field of `data`, which makes it invalid JSON.
pub(crate) fn success_with_trailing_comma<T: Serialize>(data: T) -> Vec<u8> {
    let inner = serde_json::to_string_pretty(&data).unwrap_or_else(|_| "{}".to_owned());
    let fields = inner
        .strip_prefix("{\n")
        .and_then(|s| s.strip_suffix("\n}"))
        .unwrap_or("");
    let mut out = String::from("{\n  \"success\": true,\n  \"data\": {\n");
    for line in fields.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    // The comma IVPAY's documentation puts after the last field.
    if out.ends_with('\n') && !fields.is_empty() {
        out.pop();
        out.push_str(",\n");
    }
    out.push_str("  }\n}\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_envelope_is_compact() {
        assert_eq!(failure("Wrong auth parameters"), WRONG_AUTH.as_bytes());
    }

    #[test]
    fn the_trailing_comma_body_matches_ivpays_documentation() {
        let body = success_with_trailing_comma(CreatedData {
            payment_id: "6b577835afbefe60335b6e5cd04410a9",
            payment_url: "https://pay.ivpay.io/payment/6b577835afbefe60335b6e5cd04410a9",
            created_at: 1_726_248_776,
            foreign_id: Some("123456"),
        });
        let expected = r#"{
  "success": true,
  "data": {
    "payment_id": "6b577835afbefe60335b6e5cd04410a9",
    "payment_url": "https://pay.ivpay.io/payment/6b577835afbefe60335b6e5cd04410a9",
    "created_at": 1726248776,
    "foreign_id": "123456",
  }
}
"#;
        assert_eq!(String::from_utf8_lossy(&body), expected);
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
    }

    #[test]
    fn the_get_body_keeps_ivpays_field_order() {
        let body = success(PaymentData {
            payment_id: "p1",
            foreign_id: None,
            processed_at: 5,
            status: "PAID",
        });
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"success":true,"data":{"payment_id":"p1","foreign_id":null,"processed_at":5,"status":"PAID"}}"#
        );
    }
}
