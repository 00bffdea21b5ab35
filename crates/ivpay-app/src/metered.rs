//! Upstream call metrics, as a decorator around any gateway: the adapter stays unaware.

use std::time::Instant;

use ivpay_domain::{PaymentId, UpstreamPayment};
use ivpay_ports::{CreateRequest, GatewayError, PaymentGateway, RemotePayment};

/// Counts and times every call to IVPAY: `ivpay_upstream_calls_total{op, outcome}` and
/// `ivpay_upstream_call_seconds{op}`.
#[derive(Debug, Clone)]
pub(crate) struct Metered<G>(pub(crate) G);

fn outcome<T>(result: &Result<T, GatewayError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(GatewayError::Unauthorized) => "unauthorized",
        Err(GatewayError::Rejected { .. }) => "rejected",
        Err(GatewayError::NotFound(_)) => "not_found",
        Err(GatewayError::Unavailable { .. }) => "unavailable",
        Err(GatewayError::Protocol { .. }) => "protocol",
    }
}

fn record<T>(op: &'static str, started: Instant, result: &Result<T, GatewayError>) {
    metrics::counter!("ivpay_upstream_calls_total", "op" => op, "outcome" => outcome(result))
        .increment(1);
    metrics::histogram!("ivpay_upstream_call_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
}

#[async_trait::async_trait]
impl<G: PaymentGateway> PaymentGateway for Metered<G> {
    async fn create(&self, request: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        let started = Instant::now();
        let result = self.0.create(request).await;
        record("create", started, &result);
        result
    }

    async fn get(&self, payment_id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        let started = Instant::now();
        let result = self.0.get(payment_id).await;
        record("get", started, &result);
        result
    }
}
