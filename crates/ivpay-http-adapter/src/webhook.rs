//! Reading the webhooks IVPAY posts when a payment's status changes.
//!
//! A webhook is a hint, not a fact: its only credential is the merchant's own key echoed
//! back. Check that key (in constant time) before calling [`parse_webhook`], keep the raw
//! body, and confirm the status with `GET /payment/{payment_id}` before acting on it.

use ivpay_domain::{ForeignId, IdError, PaymentId, ReportedStatus, Timestamp};

use crate::wire::{Extra, WebhookPayload};

/// A webhook, with the fields ivpay acts on in domain types.
#[derive(Clone, Debug)]
pub struct WebhookNotice {
    /// IVPAY's id for the payment.
    pub payment_id: PaymentId,
    /// The status the event reports; possibly one we do not know.
    pub status: ReportedStatus,
    /// When IVPAY processed that status.
    pub processed_at: Option<Timestamp>,
    /// The merchant's reference, when IVPAY sent a valid one. An invalid one is kept in
    /// `extra` under `foreign_id`, as its JSON text.
    pub foreign_id: Option<ForeignId>,
    /// The blockchain network, sometimes sent.
    pub network: Option<String>,
    /// A link to the transaction, sometimes sent.
    pub tx_url: Option<String>,
    /// Every other field, each as its exact JSON text.
    pub extra: Extra,
}

/// Why a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Not a JSON object with a text `payment_id` and `status` (flat or inside `data`).
    #[error("webhook body is not an IVPAY notice: {0}")]
    Malformed(#[source] serde_json::Error),
    /// `payment_id` is not a valid IVPAY id.
    #[error("webhook payment_id: {0}")]
    PaymentId(#[source] IdError),
}

/// Parses a webhook body: a flat JSON object or the same fields inside a `data` envelope,
/// trailing commas tolerated, unknown fields kept, an unknown status recorded as such.
///
/// ```
/// use ivpay_http_adapter::parse_webhook;
///
/// let notice = parse_webhook(br#"{"payment_id": "6b57", "status": "PAID", "processed_at": 1726248785, "network": "TRON"}"#)?;
/// assert_eq!(notice.payment_id.as_str(), "6b57");
/// assert_eq!(notice.status.to_string(), "PAID");
/// assert_eq!(notice.network.as_deref(), Some("TRON"));
///
/// let odd = parse_webhook(br#"{"data": {"payment_id": "6b57", "status": "CANCELED"}}"#)?;
/// assert_eq!(odd.status.to_string(), "CANCELED");
/// # Ok::<(), ivpay_http_adapter::WebhookError>(())
/// ```
///
/// # Errors
///
/// [`WebhookError::Malformed`] when the body is not such an object, or `payment_id` or
/// `status` is missing or not text; [`WebhookError::PaymentId`] when the id would not be
/// safe to look up.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookNotice, WebhookError> {
    let payload = WebhookPayload::from_body(body).map_err(WebhookError::Malformed)?;
    WebhookNotice::try_from(payload)
}

impl TryFrom<WebhookPayload> for WebhookNotice {
    type Error = WebhookError;

    fn try_from(payload: WebhookPayload) -> Result<Self, WebhookError> {
        let payment_id = payload
            .payment_id
            .parse()
            .map_err(WebhookError::PaymentId)?;
        let mut extra = payload.extra;
        let foreign_id = match payload.foreign_id {
            None => None,
            Some(text) => match text.parse::<ForeignId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    if let Ok(raw) = serde_json::value::to_raw_value(&text) {
                        extra.insert("foreign_id".to_owned(), raw);
                    }
                    None
                }
            },
        };
        Ok(Self {
            payment_id,
            status: payload.status,
            processed_at: payload.processed_at.map(Timestamp::from_unix_seconds),
            foreign_id,
            network: payload.network,
            tx_url: payload.tx_url,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivpay_domain::PaymentStatus;

    #[test]
    fn reads_the_documented_fields() {
        let n = parse_webhook(
            br#"{"payment_id":"6b577835afbefe60335b6e5cd04410a9","status":"PENDING","processed_at":1726248785,"foreign_id":"123456","tx_url":"https://tronscan.org/#/transaction/x"}"#,
        )
        .expect("parses");
        assert_eq!(n.status, ReportedStatus::Known(PaymentStatus::Pending));
        assert_eq!(
            n.processed_at,
            Some(Timestamp::from_unix_seconds(1_726_248_785))
        );
        assert_eq!(n.foreign_id.as_ref().map(ForeignId::as_str), Some("123456"));
        assert!(n.tx_url.is_some());
        assert!(n.extra.is_empty());
    }

    #[test]
    fn an_unknown_status_is_recorded_not_refused() {
        let n = parse_webhook(br#"{"payment_id":"p1","status":"REFUNDED"}"#).expect("parses");
        assert_eq!(n.status, ReportedStatus::Unknown("REFUNDED".into()));
    }

    #[test]
    fn an_invalid_foreign_id_is_kept_aside() {
        let n = parse_webhook(br#"{"payment_id":"p1","status":"PAID","foreign_id":" padded"}"#)
            .expect("parses");
        assert_eq!(n.foreign_id, None);
        assert_eq!(n.extra["foreign_id"].get(), r#"" padded""#);
    }

    #[test]
    fn refuses_what_cannot_be_acted_on() {
        assert!(matches!(
            parse_webhook(b"not json"),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            parse_webhook(br#"{"status":"PAID"}"#),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            parse_webhook(br#"{"payment_id":"../admin","status":"PAID"}"#),
            Err(WebhookError::PaymentId(_))
        ));
        assert!(matches!(
            parse_webhook(br#"{"data":"PAID"}"#),
            Err(WebhookError::Malformed(_))
        ));
    }
}
