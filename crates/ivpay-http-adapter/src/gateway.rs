//! [`PaymentGateway`] over [`IvpayClient`]: wire types in, domain types out.

use std::time::SystemTime;

use ivpay_domain::{ForeignId, PaymentId, RedirectUrl, Timestamp, UpstreamPayment};
use ivpay_ports::{CreateRequest, GatewayError, PaymentGateway, RemotePayment};

use crate::client::{IvpayClient, Reply};
use crate::error::IvpayError;
use crate::wire::{CreatePaymentRequest, CreatedPayment, PaymentDetails};

fn invalid(status: u16, field: &str, reason: impl std::fmt::Display) -> IvpayError {
    IvpayError::Protocol {
        status,
        detail: format!("field `{field}`: {reason}"),
    }
}

impl TryFrom<Reply<CreatedPayment>> for UpstreamPayment {
    type Error = IvpayError;

    /// `payment_id` and `payment_url` must be valid: without them the payment cannot be
    /// tracked or paid. A missing `created_at` is replaced by the local time, because
    /// refusing the answer would hide a payment that exists upstream.
    fn try_from(reply: Reply<CreatedPayment>) -> Result<Self, IvpayError> {
        let status = reply.status;
        let data = reply.data;
        let payment_id: PaymentId = data
            .payment_id
            .parse()
            .map_err(|e| invalid(status, "payment_id", e))?;
        let payment_url: RedirectUrl = data
            .payment_url
            .parse()
            .map_err(|e| invalid(status, "payment_url", e))?;
        let created_at = match data.created_at {
            Some(seconds) => Timestamp::from_unix_seconds(seconds),
            None => {
                tracing::warn!(%payment_id, "IVPAY create answer has no created_at, using local time");
                Timestamp::from_unix_seconds(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                )
            }
        };
        Ok(Self {
            payment_id,
            payment_url,
            created_at,
        })
    }
}

/// Converts a read, checking that IVPAY answered about the payment that was asked for.
fn remote_payment(
    asked: &PaymentId,
    reply: Reply<PaymentDetails>,
) -> Result<RemotePayment, IvpayError> {
    let status = reply.status;
    let data = reply.data;
    let payment_id: PaymentId = data
        .payment_id
        .parse()
        .map_err(|e| invalid(status, "payment_id", e))?;
    if &payment_id != asked {
        return Err(invalid(
            status,
            "payment_id",
            format_args!("asked for {asked}, IVPAY answered about {payment_id}"),
        ));
    }
    Ok(RemotePayment {
        payment_id,
        // The foreign id is informational on a read; an odd one is dropped, not fatal
        // (the raw body keeps it).
        foreign_id: data.foreign_id.and_then(|f| f.parse::<ForeignId>().ok()),
        status: data.status,
        processed_at: data.processed_at.map(Timestamp::from_unix_seconds),
        raw: reply.raw,
    })
}

#[async_trait::async_trait]
impl PaymentGateway for IvpayClient {
    async fn create(&self, request: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        let reply = self
            .create_payment(&CreatePaymentRequest::from(request))
            .await?;
        Ok(UpstreamPayment::try_from(reply)?)
    }

    async fn get(&self, payment_id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        let reply = self.get_payment(payment_id).await?;
        Ok(remote_payment(payment_id, reply)?)
    }
}
