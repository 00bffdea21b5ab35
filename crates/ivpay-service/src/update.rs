//! Status updates: every report goes through the state machine and is recorded with its
//! evidence, applied or not.

use ivpay_domain::InternalId;
use ivpay_domain::{
    EventOutcome, PaymentEvent, RefusalReason, ReportedStatus, StatusUpdate, Transition,
    UpdateSource, WebhookHint,
};
use ivpay_ports::{
    Clock, GatewayError, InboxWebhook, PaymentGateway, PaymentRepository, RepositoryError,
    UpdateError, WebhookReceipt,
};

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
                tracing::warn!(payment_id = %update.payment_id, source = update.source.as_str(),
                    "status update for an unknown payment recorded");
                return self
                    .record_unchanged(&update, None, EventOutcome::UnknownPayment)
                    .await;
            };
            let from = payment.status();
            let ReportedStatus::Known(to) = update.status else {
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
            if outcome != EventOutcome::Applied {
                if outcome == EventOutcome::Refused(RefusalReason::ConflictingFinal) {
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

    /// Records an update that changes nothing (`outcome` is not `Applied`), against
    /// `payment` as it stands, and returns the outcome.
    async fn record_unchanged(
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

    pub(crate) async fn receive(&self, hint: WebhookHint) -> Result<WebhookReceipt, UpdateError> {
        // A hint that claims what we already have changes nothing, whatever IVPAY says now:
        // record it (the event row is what makes it durable) without spending a GET. IVPAY
        // sends one for CREATED on every create.
        if let Some(ReportedStatus::Known(claimed)) = &hint.status {
            if let Some(payment) = self.repo.get_by_payment_id(&hint.payment_id).await? {
                if payment.status() == *claimed {
                    let update = StatusUpdate {
                        payment_id: hint.payment_id.clone(),
                        status: ReportedStatus::Known(*claimed),
                        processed_at: None,
                        source: UpdateSource::Webhook,
                        evidence: Some(serde_json::json!({ "webhook": hint.raw }).to_string()),
                    };
                    let outcome = self
                        .record_unchanged(&update, Some(&payment), EventOutcome::Duplicate)
                        .await?;
                    return Ok(WebhookReceipt::Processed(outcome));
                }
            }
        }
        // Kept before anything else can fail: from here on, the webhook is not lost.
        let now = self.clock.now();
        let entry = InboxWebhook {
            id: InternalId::from_uuid(uuid::Uuid::now_v7()),
            hint,
            received_at: now,
            attempts: 0,
        };
        // Out of the reconciler's reach while it is processed here.
        self.repo
            .store_webhook(&entry, now + self.config.inbox_lease)
            .await?;
        self.config
            .faults
            .pass(crate::FaultPoint::WebhookAfterInboxCommit)
            .await;
        self.process_inbox_entry(entry).await
    }

    /// Confirms one inbox webhook with IVPAY and applies the answer, then removes it from
    /// the inbox; if IVPAY cannot answer, schedules another attempt with back-off.
    pub(crate) async fn process_inbox_entry(
        &self,
        entry: InboxWebhook,
    ) -> Result<WebhookReceipt, UpdateError> {
        match self.confirm_by_get(&entry.hint).await {
            Ok(outcome) => {
                self.repo.finish_webhook(entry.id).await?;
                Ok(WebhookReceipt::Processed(outcome))
            }
            Err(UpdateError::Upstream(error)) => {
                let attempts = entry.attempts.saturating_add(1);
                let delay = self
                    .config
                    .reconcile_delay(attempts, entry.id.as_uuid().as_u128());
                self.repo
                    .retry_webhook(entry.id, self.clock.now() + delay, attempts)
                    .await?;
                tracing::warn!(payment_id = %entry.hint.payment_id, %error, attempts,
                    "webhook kept in the inbox: IVPAY could not confirm it");
                Ok(WebhookReceipt::Queued)
            }
            Err(storage) => Err(storage),
        }
    }

    /// The webhook's only credential is our own key echoed back: it is a hint. What is
    /// applied is what IVPAY's GET says; both bodies are kept as evidence.
    async fn confirm_by_get(&self, hint: &WebhookHint) -> Result<EventOutcome, UpdateError> {
        let remote = match self.gateway.get(&hint.payment_id).await {
            Ok(remote) => remote,
            // IVPAY does not know it: nothing to confirm. Kept on record, not retried.
            Err(GatewayError::NotFound(_)) => {
                let update = StatusUpdate {
                    payment_id: hint.payment_id.clone(),
                    status: hint.status.clone().unwrap_or(ReportedStatus::Unknown(String::new())),
                    processed_at: None,
                    source: UpdateSource::Webhook,
                    evidence: Some(serde_json::json!({ "webhook": hint.raw, "confirmation": "not found at IVPAY" }).to_string()),
                };
                return self
                    .record_unchanged(&update, None, EventOutcome::UnknownPayment)
                    .await;
            }
            Err(other) => return Err(UpdateError::Upstream(other)),
        };
        let evidence = serde_json::json!({ "webhook": hint.raw, "confirmation": remote.raw });
        self.apply_status_update(StatusUpdate {
            payment_id: hint.payment_id.clone(),
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
