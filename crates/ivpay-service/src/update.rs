//! Status updates: every report goes through the state machine and is recorded with its
//! evidence, applied or not.

use ivpay_domain::{
    EventOutcome, PaymentEvent, RefusalReason, ReportedStatus, StatusUpdate, Transition,
    UpdateSource, WebhookHint,
};
use ivpay_ports::{Clock, PaymentGateway, PaymentRepository, RepositoryError, UpdateError};

use crate::PaymentService;

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentRepository,
    G: PaymentGateway,
    C: Clock,
{
    pub(crate) async fn apply_status_update(
        &self,
        update: StatusUpdate,
    ) -> Result<EventOutcome, UpdateError> {
        let now = self.clock.now();
        let mut last_conflict = None;
        // Compare-and-set: on a lost race, read again and decide again. Each round is
        // a fresh decision by the state machine, so a racing final status is never undone.
        for _ in 0..=self.config.max_conflict_retries {
            let Some(mut payment) = self.repo.get_by_payment_id(&update.payment_id).await? else {
                let event = event_for(&update, None, None, EventOutcome::UnknownPayment, now);
                self.repo.record_event(&event).await?;
                tracing::warn!(payment_id = %update.payment_id, source = update.source.as_str(),
                    "status update for an unknown payment recorded");
                return Ok(EventOutcome::UnknownPayment);
            };
            let from = payment.status();
            let ReportedStatus::Known(to) = update.status else {
                let event = event_for(
                    &update,
                    Some(&payment),
                    Some(from),
                    EventOutcome::UnrecognizedStatus,
                    now,
                );
                self.repo.record_event(&event).await?;
                tracing::warn!(id = %payment.id(), status = %update.status, "unrecognized status recorded");
                return Ok(EventOutcome::UnrecognizedStatus);
            };
            let version = payment.version();
            let outcome = match payment.apply_status(to, update.processed_at, now) {
                Transition::Apply => EventOutcome::Applied,
                Transition::Duplicate => EventOutcome::Duplicate,
                Transition::Refuse(reason) => EventOutcome::Refused(reason),
            };
            let event = event_for(&update, Some(&payment), Some(from), outcome, now);
            if outcome != EventOutcome::Applied {
                self.repo.record_event(&event).await?;
                if outcome == EventOutcome::Refused(RefusalReason::ConflictingFinal) {
                    tracing::error!(id = %payment.id(), %from, %to, source = update.source.as_str(),
                        "conflicting final status refused");
                }
                return Ok(outcome);
            }
            match self.repo.update_status(&payment, version, &event).await {
                Ok(()) => {
                    tracing::info!(id = %payment.id(), %from, %to, source = update.source.as_str(), "status applied");
                    return Ok(outcome);
                }
                Err(conflict @ RepositoryError::VersionConflict { .. }) => {
                    last_conflict = Some(conflict);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(UpdateError::Storage(last_conflict.unwrap_or(
            RepositoryError::Corrupt("no attempt made".into()),
        )))
    }

    pub(crate) async fn confirm_webhook_by_get(
        &self,
        hint: WebhookHint,
    ) -> Result<EventOutcome, UpdateError> {
        let WebhookHint {
            payment_id,
            status: claimed,
            raw: raw_body,
        } = hint;
        // A hint that claims what we already have changes nothing, whatever IVPAY says now:
        // record it without spending a GET (IVPAY sends one for CREATED on every create).
        if let Some(ReportedStatus::Known(claimed)) = claimed {
            if let Some(payment) = self.repo.get_by_payment_id(&payment_id).await? {
                if payment.status() == claimed {
                    let update = StatusUpdate {
                        payment_id,
                        status: ReportedStatus::Known(claimed),
                        processed_at: None,
                        source: UpdateSource::Webhook,
                        evidence: Some(serde_json::json!({ "webhook": raw_body }).to_string()),
                    };
                    let now = self.clock.now();
                    let event = event_for(
                        &update,
                        Some(&payment),
                        Some(payment.status()),
                        EventOutcome::Duplicate,
                        now,
                    );
                    self.repo.record_event(&event).await?;
                    return Ok(EventOutcome::Duplicate);
                }
            }
        }
        // The webhook's only credential is our own key echoed back: it is a hint. What is
        // applied is what IVPAY's GET says; both bodies are kept as evidence.
        let remote = self
            .gateway
            .get(&payment_id)
            .await
            .map_err(UpdateError::Upstream)?;
        let evidence = serde_json::json!({ "webhook": raw_body, "confirmation": remote.raw });
        self.apply_status_update(StatusUpdate {
            payment_id,
            status: remote.status,
            processed_at: remote.processed_at,
            source: UpdateSource::Webhook,
            evidence: Some(evidence.to_string()),
        })
        .await
    }
}

fn event_for(
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
