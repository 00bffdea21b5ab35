//! Status updates: every report goes through the state machine and is recorded with its
//! evidence, applied or not.

use ivpay_domain::{
    EventOutcome, PaymentEvent, RefusalReason, ReportedStatus, StatusUpdate, Transition,
};
use ivpay_ports::{Clock, PaymentStore, RepositoryError, UpdateError};

use crate::PaymentService;

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
    C: Clock,
{
    pub(crate) async fn apply_status_update(
        &self,
        update: StatusUpdate,
    ) -> Result<EventOutcome, UpdateError> {
        let now = self.clock.now();
        let attempts = self.config.max_conflict_retries.saturating_add(1);
        let mut attempt = 0;
        // Compare-and-set: on a lost race, read again and decide again. Each round is
        // a fresh decision by the state machine, so a racing final status is never undone.
        loop {
            attempt += 1;
            let Some(mut payment) = self.repo.get_by_payment_id(&update.payment_id).await? else {
                tracing::warn!(payment_id = %update.payment_id, source = update.source.as_str(),
                    "status update for an unknown payment recorded");
                return self
                    .record_unchanged(&update, None, EventOutcome::UnknownPayment)
                    .await;
            };
            let from = payment.status();
            let ReportedStatus::Known(to) = update.status else {
                metrics::counter!("ivpay_contract_drift_total", "kind" => "status", "source" => update.source.as_str())
                    .increment(1);
                tracing::warn!(id = %payment.id(), status = %update.status, "unrecognized status recorded");
                return self
                    .record_unchanged(&update, Some(&payment), EventOutcome::UnrecognizedStatus)
                    .await;
            };
            let version = payment.version();
            let outcome = match payment.apply_status(to, update.processed_at, now) {
                Transition::Apply => EventOutcome::Applied,
                Transition::Duplicate => EventOutcome::Duplicate,
                Transition::Refuse(reason) => EventOutcome::Refused(reason),
            };
            truth(&update, from, outcome);
            if outcome != EventOutcome::Applied {
                if outcome == EventOutcome::Refused(RefusalReason::ConflictingFinal) {
                    metrics::counter!("ivpay_final_conflicts_total", "source" => update.source.as_str())
                        .increment(1);
                    tracing::error!(id = %payment.id(), %from, %to, source = update.source.as_str(),
                        "conflicting final status refused");
                }
                // Not applied: the payment is as it was read.
                return self
                    .record_unchanged(&update, Some(&payment), outcome)
                    .await;
            }
            let event = event_for(&update, Some(&payment), Some(from), outcome, now);
            match self.repo.update_status(&payment, version, &event).await {
                Ok(()) => {
                    tracing::info!(id = %payment.id(), %from, %to, source = update.source.as_str(), "status applied");
                    return Ok(outcome);
                }
                Err(RepositoryError::VersionConflict { id, .. }) if attempt >= attempts => {
                    tracing::warn!(%id, attempts, "status update lost every compare-and-set");
                    return Err(UpdateError::Contended { id, attempts });
                }
                Err(RepositoryError::VersionConflict { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Records an update that changes nothing (`outcome` is not `Applied`), against
    /// `payment` as it stands, and returns the outcome.
    pub(crate) async fn record_unchanged(
        &self,
        update: &StatusUpdate,
        payment: Option<&ivpay_domain::Payment>,
        outcome: EventOutcome,
    ) -> Result<EventOutcome, UpdateError> {
        let from = payment.map(ivpay_domain::Payment::status);
        let event = event_for(update, payment, from, outcome, self.clock.now());
        self.repo.record_event(&event).await?;
        Ok(outcome)
    }
}

pub(crate) fn event_for(
    update: &StatusUpdate,
    payment: Option<&ivpay_domain::Payment>,
    from: Option<ivpay_domain::PaymentStatus>,
    outcome: EventOutcome,
    now: ivpay_domain::Timestamp,
) -> PaymentEvent {
    PaymentEvent {
        payment: payment.map(ivpay_domain::Payment::id),
        payment_id: update.payment_id.clone(),
        source: update.source,
        from,
        to: update.status.clone(),
        outcome,
        evidence: update.evidence.clone(),
        received_at: now,
    }
}

/// What a status update says about IVPAY's webhooks (`ivpay_webhook_truth_total{verdict}`):
/// a change the poll applied was announced by no webhook in time (`lost`); a webhook whose
/// change had already been applied (by the poll, a refresh, or an earlier copy of itself;
/// CREATED aside, which the create's answer always applies first) came `late`; one that
/// applied its change came `timely`. `disagreeing` is counted where the webhook is
/// confirmed.
pub(crate) fn truth(
    update: &StatusUpdate,
    from: ivpay_domain::PaymentStatus,
    outcome: EventOutcome,
) {
    let verdict = match (update.source, outcome) {
        (ivpay_domain::UpdateSource::Poll, EventOutcome::Applied) => "lost",
        (ivpay_domain::UpdateSource::Webhook, EventOutcome::Applied) => "timely",
        (ivpay_domain::UpdateSource::Webhook, EventOutcome::Duplicate)
            if from != ivpay_domain::PaymentStatus::Created =>
        {
            "late"
        }
        _ => return,
    };
    metrics::counter!("ivpay_webhook_truth_total", "verdict" => verdict).increment(1);
}

#[cfg(test)]
mod tests {
    use ivpay_domain::{InternalId, Payment, Timestamp, UpdateSource, UpstreamPayment};
    use ivpay_ports::MockPaymentStore;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::ServiceConfig;

    fn created(id: &str) -> Payment {
        let request = ivpay_domain::NewPayment::from_fields("10", "USD", None, None, None)
            .expect("valid request");
        let at = Timestamp::from_unix_seconds(1_726_248_770);
        let mut p = Payment::initiate(
            InternalId::from_uuid(uuid::Uuid::from_u128(7)),
            "shop".parse().expect("client"),
            ivpay_domain::AccountId::default(),
            request,
            at,
        );
        p.mark_created(
            UpstreamPayment {
                payment_id: id.parse().expect("valid id"),
                payment_url: format!("https://pay.example/{id}").parse().expect("url"),
                created_at: at,
            },
            at,
        )
        .expect("initiated settles");
        p
    }

    fn pending(id: &str) -> StatusUpdate {
        StatusUpdate {
            payment_id: id.parse().expect("valid id"),
            status: ReportedStatus::from("PENDING"),
            processed_at: None,
            source: UpdateSource::Poll,
            evidence: None,
        }
    }

    /// Updates need only a payment store and a clock: no gateway (`()`), no inbox, no queue.
    fn service(
        store: MockPaymentStore,
        config: ServiceConfig,
    ) -> PaymentService<MockPaymentStore, (), ManualClock> {
        let clock = ManualClock::new(Timestamp::from_unix_seconds(1_726_248_780));
        PaymentService::new(store, (), clock, config)
    }

    #[tokio::test]
    async fn a_lost_compare_and_set_is_decided_again() {
        let payment = created("p10");
        let mut store = MockPaymentStore::new();
        let stored = payment.clone();
        store
            .expect_get_by_payment_id()
            .times(2)
            .returning(move |_| Ok(Some(stored.clone())));
        let mut first = true;
        store
            .expect_update_status()
            .times(2)
            .returning(move |p, expected, event| {
                assert_eq!(expected, 2);
                assert_eq!(p.version(), 3);
                assert_eq!(event.outcome, EventOutcome::Applied);
                if std::mem::take(&mut first) {
                    Err(RepositoryError::VersionConflict {
                        id: p.id(),
                        expected,
                    })
                } else {
                    Ok(())
                }
            });
        let svc = service(store, ServiceConfig::default());
        let got = svc
            .apply_status_update(pending("p10"))
            .await
            .expect("applied");
        assert_eq!(got, EventOutcome::Applied);
    }
}
