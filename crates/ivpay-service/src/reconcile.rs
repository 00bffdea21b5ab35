//! The reconciler's pass: ask IVPAY about payments webhooks may have missed.

use ivpay_domain::{EventOutcome, StatusUpdate, UpdateSource};
use ivpay_ports::{Clock, PaymentGateway, PaymentRepository, ReconcileReport, UpdateError};

use crate::PaymentService;

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentRepository,
    G: PaymentGateway,
    C: Clock,
{
    pub(crate) async fn reconcile_pass(&self) -> Result<ReconcileReport, UpdateError> {
        let now = self.clock.now();
        let claimed = self
            .repo
            .claim_due(
                now,
                self.config.reconcile_lease,
                self.config.reconcile_batch,
            )
            .await?;
        let mut report = ReconcileReport {
            claimed: u32::try_from(claimed.len()).unwrap_or(u32::MAX),
            ..ReconcileReport::default()
        };
        for item in claimed {
            let payment = item.payment;
            let id = payment.id();
            let attempts = item.attempts.saturating_add(1);
            let salt = id.as_uuid().as_u128();
            let Some(payment_id) = payment.payment_id().cloned() else {
                // Nothing to ask IVPAY about; the repository should not have offered it.
                self.repo.schedule_check(id, None, attempts).await?;
                continue;
            };
            let mut delay = self.config.reconcile_delay(attempts, salt);
            match self.gateway.get(&payment_id).await {
                Ok(remote) => {
                    let outcome = self
                        .apply_status_update(StatusUpdate {
                            payment_id,
                            status: remote.status,
                            processed_at: remote.processed_at,
                            source: UpdateSource::Poll,
                            evidence: Some(remote.raw),
                        })
                        .await?;
                    if outcome == EventOutcome::Applied {
                        report.applied += 1;
                    }
                }
                Err(error) => {
                    report.failed += 1;
                    if let ivpay_ports::GatewayError::Unavailable {
                        retry_after: Some(wait),
                        ..
                    } = &error
                    {
                        delay = delay.max(*wait);
                    }
                    tracing::warn!(%id, %error, attempts, "reconciliation check failed");
                }
            }
            let now_final = self.repo.get(id).await?.is_some_and(|p| p.is_final());
            if now_final {
                report.finalized += 1;
                self.repo.schedule_check(id, None, attempts).await?;
            } else {
                self.repo
                    .schedule_check(id, Some(self.clock.now() + delay), attempts)
                    .await?;
            }
        }
        Ok(report)
    }
}
