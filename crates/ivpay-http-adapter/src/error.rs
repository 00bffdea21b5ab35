//! What can go wrong talking to IVPAY, and how it maps onto the port's [`GatewayError`].

use std::time::Duration;

use ivpay_domain::PaymentId;
use ivpay_ports::{Delivery, GatewayError};

/// Why a call to IVPAY failed.
///
/// Every variant says whether asking again may help ([`IvpayError::is_retryable`]) and
/// whether the request may have reached IVPAY ([`IvpayError::delivery`]). Messages never
/// contain the API key: body excerpts are cut short and the key is masked in them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IvpayError {
    /// 401: IVPAY refused the API key. Only fixing the configuration helps.
    #[error("IVPAY refused the API key")]
    Unauthorized,
    /// 400 or another 4xx (or a 2xx with `"success": false`): IVPAY refused the request
    /// and did not act on it.
    #[error("IVPAY rejected the request ({status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// IVPAY's `error` text, or a short excerpt of the body when it had none.
        message: String,
    },
    /// 404, or a 400 whose message says the payment does not exist, on a read.
    #[error("IVPAY does not know payment {payment_id}")]
    NotFound {
        /// The id that was asked for.
        payment_id: PaymentId,
    },
    /// IVPAY could not be reached, did not answer in time, or answered 5xx or 429.
    #[error("IVPAY unavailable: {cause}")]
    Unavailable {
        /// What happened.
        cause: Unavailability,
        /// How long IVPAY asked us to wait (`Retry-After`), if it did.
        retry_after: Option<Duration>,
    },
    /// IVPAY answered something we cannot read: garbage, truncated or empty body, wrong
    /// shape, a redirect, an unexpected status.
    #[error("unreadable answer from IVPAY (HTTP {status}): {detail}")]
    Protocol {
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong, with a short excerpt of the body.
        detail: String,
    },
}

/// Why IVPAY was unavailable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailability {
    /// The connection could not be made (refused, DNS failure, TLS handshake failure):
    /// not a byte of the request was sent.
    #[error("could not connect: {detail}")]
    Connect {
        /// The lowest-level cause, e.g. `Connection refused (os error 111)`.
        detail: String,
    },
    /// The connection was not made within the connect timeout: nothing was sent either.
    #[error("connect timed out")]
    ConnectTimeout,
    /// No complete answer within the request timeout. The request may have been acted on.
    #[error("timed out waiting for the answer")]
    Timeout,
    /// The connection broke while sending or receiving (reset, closed early).
    #[error("connection interrupted: {detail}")]
    Interrupted {
        /// The lowest-level cause.
        detail: String,
    },
    /// IVPAY answered 5xx or 429.
    #[error("HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
}

impl Unavailability {
    /// Whether the request may have reached IVPAY.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::Connect { .. } | Self::ConnectTimeout => Delivery::NotSent,
            // 429: IVPAY (or what stands in front of it) turned the request away unprocessed.
            Self::Status { status: 429 } => Delivery::Refused,
            Self::Timeout | Self::Interrupted { .. } | Self::Status { .. } => Delivery::MaybeSent,
        }
    }
}

impl IvpayError {
    /// Whether the same call may succeed later: only unavailability. The others are
    /// answers, and asking again gets the same answer.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether the request may have reached IVPAY. A refusal (401, 4xx, 404) reached it
    /// but was not acted on, so only unavailability can say [`Delivery::NotSent`], and
    /// only for connection failures.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::Unavailable { cause, .. } => cause.delivery(),
            _ => Delivery::MaybeSent,
        }
    }

    /// How long IVPAY asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<IvpayError> for GatewayError {
    fn from(error: IvpayError) -> Self {
        match error {
            IvpayError::Unauthorized => GatewayError::Unauthorized,
            IvpayError::Rejected { status, message } => GatewayError::Rejected { status, message },
            IvpayError::NotFound { payment_id } => GatewayError::NotFound(payment_id),
            IvpayError::Unavailable { cause, retry_after } => GatewayError::Unavailable {
                delivery: cause.delivery(),
                reason: cause.to_string(),
                retry_after,
            },
            error @ IvpayError::Protocol { .. } => GatewayError::Protocol {
                detail: error.to_string(),
            },
        }
    }
}

/// Why an [`IvpayClient`](crate::IvpayClient) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The base URL does not parse, or cannot have paths appended.
    #[error("invalid base URL: {reason}")]
    BaseUrl {
        /// Why.
        reason: String,
    },
    /// The base URL uses plain `http` without [`allow_http`](crate::IvpayClientBuilder::allow_http).
    #[error("base URL must use https (plain http is for tests and local sandboxes only)")]
    InsecureBaseUrl,
    /// The API key is empty or cannot be sent in a header. The key itself is not shown.
    #[error("the API key is empty or contains characters not allowed in a header")]
    ApiKey,
    /// The user agent cannot be sent in a header.
    #[error("the user agent contains characters not allowed in a header")]
    UserAgent,
    /// reqwest refused the configuration.
    #[error("could not build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// At most this many characters of a body go into an error message.
const EXCERPT_CHARS: usize = 120;

/// A short, printable excerpt of a body for error messages, with the API key masked.
pub(crate) fn excerpt(body: &[u8], secret: &str) -> String {
    if body.is_empty() {
        return "empty body".to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let text = if secret.is_empty() {
        text.into_owned()
    } else {
        text.replace(secret, "[REDACTED]")
    };
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    format!("body starts {out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connection_failures_are_provably_unsent() {
        let unsent = Unavailability::Connect {
            detail: "refused".into(),
        };
        assert_eq!(unsent.delivery(), Delivery::NotSent);
        assert_eq!(Unavailability::ConnectTimeout.delivery(), Delivery::NotSent);
        assert_eq!(Unavailability::Timeout.delivery(), Delivery::MaybeSent);
        assert_eq!(
            Unavailability::Status { status: 503 }.delivery(),
            Delivery::MaybeSent
        );
        assert_eq!(IvpayError::Unauthorized.delivery(), Delivery::MaybeSent);
    }

    #[test]
    fn a_rate_limited_create_was_not_processed() {
        assert_eq!(
            Unavailability::Status { status: 429 }.delivery(),
            Delivery::Refused
        );
        let limited = GatewayError::from(IvpayError::Unavailable {
            cause: Unavailability::Status { status: 429 },
            retry_after: Some(Duration::from_secs(5)),
        });
        assert!(!limited.may_have_reached_upstream());
        assert!(limited.is_retryable());
    }

    #[test]
    fn maps_onto_the_port_error() {
        let e = IvpayError::Unavailable {
            cause: Unavailability::Status { status: 503 },
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(e.is_retryable());
        assert_eq!(
            GatewayError::from(e),
            GatewayError::Unavailable {
                reason: "HTTP 503".into(),
                delivery: Delivery::MaybeSent,
                retry_after: Some(Duration::from_secs(2)),
            }
        );
        let refused = GatewayError::from(IvpayError::Unavailable {
            cause: Unavailability::Connect {
                detail: "refused".into(),
            },
            retry_after: None,
        });
        assert!(!refused.may_have_reached_upstream());
        let garbage = GatewayError::from(IvpayError::Protocol {
            status: 200,
            detail: "x".into(),
        });
        assert!(garbage.may_have_reached_upstream());
        assert!(!garbage.is_retryable());
        assert_eq!(
            GatewayError::from(IvpayError::Rejected {
                status: 400,
                message: "bad".into()
            }),
            GatewayError::Rejected {
                status: 400,
                message: "bad".into()
            }
        );
    }

    #[test]
    fn excerpts_are_short_printable_and_mask_the_key() {
        let body = format!("<html>\n key=sk_live_123 {}", "x".repeat(500));
        let e = excerpt(body.as_bytes(), "sk_live_123");
        assert!(!e.contains("sk_live_123"), "{e}");
        assert!(e.contains("[REDACTED]"));
        assert!(!e.contains('\n'));
        assert!(e.chars().count() < 160, "{e}");
        assert_eq!(excerpt(b"", "k"), "empty body");
    }
}
