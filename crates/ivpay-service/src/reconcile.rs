//! The reconciler's pass: ask IVPAY about payments webhooks may have missed.

use ivpay_domain::{EventOutcome, Evidence, StatusUpdate, UpdateSource};
use ivpay_ports::{
    Clock, PaymentGateway, PaymentStore, ReconcileQueue, ReconcileReport, RepositoryError,
    UpdateError, WebhookInbox,
};

use crate::PaymentService;

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore + WebhookInbox + ReconcileQueue,
    G: PaymentGateway,
    C: Clock,
{
    /// Settles intents whose request died before IVPAY's answer was stored. IVPAY may or
    /// may not have created them, so they become *unknown*, never re-sent.
    async fn recover_stale_intents(&self) -> Result<u32, UpdateError> {
        let now = self.clock.now();
        let cutoff = now - self.config.stale_intent_after;
        let mut recovered = 0;
        for mut payment in self
            .repo
            .stale_intents(cutoff, self.config.reconcile_batch)
            .await?
        {
            let version = payment.version();
            let reason = "interrupted before IVPAY's answer was stored".to_owned();
            if payment.mark_unknown(reason, now).is_err() {
                continue;
            }
            match self.repo.save_outcome(&payment, version, None).await {
                Ok(()) => {
                    recovered += 1;
                    tracing::warn!(id = %payment.id(), "stale intent settled as unknown");
                }
                // The request finished meanwhile: its own answer stands.
                Err(RepositoryError::VersionConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(recovered)
    }

    pub(crate) async fn reconcile_pass(&self) -> Result<ReconcileReport, UpdateError> {
        let recovered = self.recover_stale_intents().await?;
        // Leftovers: webhooks whose confirmation failed before, or whose worker died.
        let inbox = self.confirm_due_webhooks().await?;
        let keys_purged = self
            .repo
            .purge_expired_keys(
                self.clock.now(),
                self.config.reconcile_batch.saturating_mul(16),
            )
            .await?;
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
            recovered,
            webhooks_processed: inbox.processed,
            webhooks_deferred: inbox.deferred,
            keys_purged,
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
                            evidence: Some(Evidence::from_confirmation(remote.raw)),
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
                        // An hour-long Retry-After must not park the payment: capped.
                        delay = delay.max(self.config.capped_retry_after(*wait));
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
