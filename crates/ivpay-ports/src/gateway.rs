//! The IVPAY gateway port: create a payment, read one back.

use std::time::Duration;

use ivpay_domain::{
    ForeignId, Money, PaymentId, RedirectUrl, ReportedStatus, Timestamp, UpstreamPayment,
};

/// What the service asks IVPAY to create.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CreateRequest {
    /// Amount and currency.
    pub money: Money,
    /// The reference sent upstream (the client's, or our own id).
    pub foreign_id: ForeignId,
    /// Where to send the customer after paying.
    pub url_success: Option<RedirectUrl>,
    /// Where to send the customer after a failed payment.
    pub url_failed: Option<RedirectUrl>,
}

/// A payment as IVPAY reports it on `GET /payment/{id}`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RemotePayment {
    /// IVPAY's id.
    pub payment_id: PaymentId,
    /// The foreign id IVPAY holds, when it sent a valid one.
    pub foreign_id: Option<ForeignId>,
    /// The status, possibly one we do not know.
    pub status: ReportedStatus,
    /// When IVPAY processed that status.
    pub processed_at: Option<Timestamp>,
    /// The response body verbatim, kept as evidence.
    pub raw: String,
}

/// Whether a failed request could have reached IVPAY.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Delivery {
    /// Provably never sent (connection refused, DNS failure): nothing happened upstream.
    NotSent,
    /// Sent, or maybe sent (timeout, reset, 5xx): IVPAY may have acted on it.
    MaybeSent,
    /// It reached IVPAY, which turned it away without processing it (429 Too Many
    /// Requests): nothing happened upstream, and the same request may be sent again later.
    Refused,
}

/// Why a call to IVPAY failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// IVPAY refused our API key (401 `Wrong auth parameters`). An operator must fix the
    /// configuration; retrying does not help.
    #[error("IVPAY refused the API key")]
    Unauthorized,
    /// IVPAY refused the request (400 or another 4xx) with its message.
    #[error("IVPAY rejected the request ({status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// IVPAY's `error` text.
        message: String,
    },
    /// IVPAY does not know the payment (404, or a 400 that says so).
    #[error("IVPAY does not know payment {0}")]
    NotFound(PaymentId),
    /// IVPAY could not be reached or failed (connect error, timeout, 5xx, 429).
    #[error("IVPAY unavailable: {reason}")]
    Unavailable {
        /// What happened, without secrets.
        reason: String,
        /// Whether the request may have reached IVPAY.
        delivery: Delivery,
        /// How long IVPAY asked us to wait, if it did.
        retry_after: Option<Duration>,
    },
    /// IVPAY answered something we cannot read (garbage, truncated, wrong shape).
    #[error("unreadable answer from IVPAY: {detail}")]
    Protocol {
        /// What was wrong, with a short excerpt of the body.
        detail: String,
    },
}

impl GatewayError {
    /// Whether the same call may succeed later. True only for [`GatewayError::Unavailable`]:
    /// the others are answers, and asking again gets the same answer.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether a failed create may still have created a payment upstream: anything but a
    /// clear refusal, a request turned away unprocessed (429) or one that provably never
    /// left.
    pub fn may_have_reached_upstream(&self) -> bool {
        match self {
            Self::Unauthorized | Self::Rejected { .. } | Self::NotFound(_) => false,
            Self::Unavailable { delivery, .. } => *delivery == Delivery::MaybeSent,
            Self::Protocol { .. } => true,
        }
    }
}

/// IVPAY's Payments API.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// `POST /payment/create`.
    ///
    /// # Errors
    ///
    /// [`GatewayError::Unauthorized`] and [`GatewayError::Rejected`]: IVPAY did not create
    /// it. [`GatewayError::Unavailable`] with [`Delivery::NotSent`] or [`Delivery::Refused`]:
    /// nothing was sent, or IVPAY did not process it.
    /// [`GatewayError::Unavailable`] with [`Delivery::MaybeSent`] and
    /// [`GatewayError::Protocol`]: the outcome is unknown. Implementations must not retry
    /// a create that may have been sent.
    async fn create(&self, request: &CreateRequest) -> Result<UpstreamPayment, GatewayError>;

    /// `GET /payment/{payment_id}`.
    ///
    /// # Errors
    ///
    /// [`GatewayError::NotFound`] when IVPAY does not know the id; the others as for
    /// `create`. Reads are safe to retry, and implementations may.
    async fn get(&self, payment_id: &PaymentId) -> Result<RemotePayment, GatewayError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(delivery: Delivery) -> GatewayError {
        GatewayError::Unavailable {
            reason: "x".into(),
            delivery,
            retry_after: None,
        }
    }

    #[test]
    fn only_unavailability_is_retryable() {
        assert!(unavailable(Delivery::NotSent).is_retryable());
        assert!(!GatewayError::Unauthorized.is_retryable());
        assert!(!GatewayError::Protocol { detail: "x".into() }.is_retryable());
    }

    #[test]
    fn timeouts_and_garbage_leave_the_create_outcome_open() {
        assert!(unavailable(Delivery::MaybeSent).may_have_reached_upstream());
        assert!(GatewayError::Protocol { detail: "x".into() }.may_have_reached_upstream());
        assert!(!unavailable(Delivery::NotSent).may_have_reached_upstream());
        assert!(!unavailable(Delivery::Refused).may_have_reached_upstream());
        assert!(
            !GatewayError::Rejected {
                status: 400,
                message: "x".into()
            }
            .may_have_reached_upstream()
        );
    }
}
