//! The reconciler's pass: ask IVPAY about payments webhooks may have missed.

use ivpay_domain::{EventOutcome, Evidence, StatusUpdate, UpdateSource};
use ivpay_domain::{InternalId, Timestamp};
use ivpay_ports::{
    Clock, LeaseWrite, PaymentGateway, PaymentStore, ReconcileQueue, ReconcileReport,
    RepositoryError, UpdateError, WebhookInbox,
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
        // The claim leases each row until this deadline, and the deadline is the token every
        // schedule write below shows: once it has passed and another worker has claimed the
        // row, our writes are refused rather than overwriting that worker's schedule.
        let leased_until = now + self.config.reconcile_lease;
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
            inbox,
            keys_purged,
            claimed: u32::try_from(claimed.len()).unwrap_or(u32::MAX),
            ..ReconcileReport::default()
        };
        for item in claimed {
            let payment = item.payment;
            let id = payment.id();
            if self.clock.now() + self.config.longest_get > leased_until {
                // Too little lease left for a check at IVPAY's slowest: handed back, due
                // now, for the next pass (ours or another instance's) to claim afresh.
                let now = self.clock.now();
                self.schedule(&mut report, id, leased_until, Some(now), item.attempts)
                    .await?;
                report.handed_back += 1;
                continue;
            }
            let attempts = item.attempts.saturating_add(1);
            let salt = id.as_uuid().as_u128();
            let Some(payment_id) = payment.payment_id().cloned() else {
                // Nothing to ask IVPAY about; the repository should not have offered it.
                self.schedule(&mut report, id, leased_until, None, attempts)
                    .await?;
                continue;
            };
            let mut delay = self.config.reconcile_delay(attempts, salt);
            let checked = match self.gateways.of(payment.account()) {
                Ok(gateway) => gateway.get(&payment_id).await,
                Err(not_configured) => Err(not_configured),
            };
            match checked {
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
                // Its final update already ended the checks (and the lease with them).
                report.finalized += 1;
            } else {
                let next = self.clock.now() + delay;
                self.schedule(&mut report, id, leased_until, Some(next), attempts)
                    .await?;
            }
        }
        Ok(report)
    }

    /// Writes a claimed payment's next check if our lease on it still holds.
    async fn schedule(
        &self,
        report: &mut ReconcileReport,
        id: InternalId,
        leased_until: Timestamp,
        next: Option<Timestamp>,
        attempts: u32,
    ) -> Result<(), UpdateError> {
        let written = self
            .repo
            .schedule_check(id, leased_until, next, attempts)
            .await?;
        if written == LeaseWrite::LeaseLost {
            report.lease_lost += 1;
            tracing::warn!(%id, "lease ran out before the next check was written; another worker holds the payment");
        }
        Ok(())
    }
}
