//! Webhooks: kept in the inbox and answered at once; confirmed afterwards, by the inbox
//! worker (or the reconciler), with IVPAY's `GET` before anything is applied.

use futures_util::StreamExt;
use ivpay_domain::{
    EventOutcome, Evidence, InternalId, ReportedStatus, StatusUpdate, Timestamp, UpdateSource,
    WebhookHint,
};
use ivpay_ports::{
    Clock, GatewayError, InboxReport, InboxWebhook, LeaseWrite, PaymentGateway, PaymentStore,
    UpdateError, WebhookInbox, WebhookReceipt,
};

use crate::PaymentService;
use crate::link::Match;

/// What became of one inbox webhook.
enum Confirmation {
    /// IVPAY answered and the answer is recorded (applied or not); it left the inbox.
    /// `linked` when its row was found by foreign id and completed first.
    Settled { linked: bool },
    /// IVPAY could not answer; it stays in the inbox for a later attempt.
    Deferred,
    /// IVPAY could not answer for the last allowed time: recorded as unconfirmed, with its
    /// body, and removed from the inbox.
    Unconfirmed,
    /// Our lease ran out meanwhile and another worker holds it: nothing of ours was written
    /// to the inbox (an event may have been, which the other worker's repeats harmlessly).
    /// `linked` when this confirmation linked its row first (the other worker then finds
    /// it linked already, so only this one can count it).
    LeaseLost { linked: bool },
    /// IVPAY knows the payment but we hold no row for it (yet): it stays in the inbox
    /// until one appears or `unknown_webhook_keep` runs out. `ambiguous` when several
    /// rows could be it.
    Unmatched { ambiguous: bool },
    /// Unmatched for longer than `unknown_webhook_keep`: recorded as an unknown payment
    /// and removed.
    Expired,
    /// The account's budget of calls toward IVPAY is spent: IVPAY was not asked, and it
    /// is tried again shortly, its attempts not counted.
    OverBudget,
}

/// What confirming a webhook with IVPAY found.
enum Confirmed {
    /// Recorded; `linked` when its row was linked by foreign id first.
    Recorded { linked: bool },
    /// No row holds IVPAY's id, and matching by foreign id found none or several.
    Unmatched {
        ambiguous: bool,
        /// IVPAY's answer, kept as evidence if the webhook expires.
        confirmation: String,
    },
    /// Not asked: the account's budget toward IVPAY is spent.
    OverBudget,
}

/// How soon a webhook that found the budget spent is tried again.
const OVER_BUDGET_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The note kept when a webhook for a payment we hold no row for expires.
const UNMATCHED: &str = "no row matched before the inbox keep time ran out";

/// The note kept when IVPAY does not know a webhook's payment.
const NOT_FOUND: &str = "not found at IVPAY";

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore + WebhookInbox,
    G: PaymentGateway,
    C: Clock,
{
    pub(crate) async fn receive(&self, hint: WebhookHint) -> Result<WebhookReceipt, UpdateError> {
        // A hint that claims what we already have changes nothing, whatever IVPAY says now:
        // record it (the event row is what makes it durable) without spending a GET. IVPAY
        // sends one for CREATED on every create.
        if let Some(ReportedStatus::Known(claimed)) = &hint.status
            && let Some(payment) = self.repo.get_by_payment_id(&hint.payment_id).await?
            && payment.status() == *claimed
        {
            let update = StatusUpdate {
                payment_id: hint.payment_id.clone(),
                status: ReportedStatus::Known(*claimed),
                processed_at: None,
                source: UpdateSource::Webhook,
                evidence: Some(Evidence::from_webhook(hint.raw.clone())),
            };
            let outcome = self
                .record_unchanged(&update, Some(&payment), EventOutcome::Duplicate)
                .await?;
            crate::update::truth(&update, payment.status(), outcome);
            return Ok(WebhookReceipt::Processed(outcome));
        }
        // Kept before anything else can fail: from here on, the webhook is not lost. Due at
        // once: the inbox worker, woken below, confirms it; if this process dies first, the
        // next one's worker (or any reconciler) finds it due.
        let now = self.clock.now();
        let entry = InboxWebhook {
            id: InternalId::from_uuid(uuid::Uuid::now_v7()),
            hint,
            received_at: now,
            attempts: 0,
        };
        self.repo.store_webhook(&entry, now).await?;
        self.config
            .faults
            .pass(crate::fault::FaultPoint::WebhookAfterInboxCommit)
            .await;
        self.webhook_queued.notify_one();
        Ok(WebhookReceipt::Queued)
    }

    /// Claims up to [`ServiceConfig::inbox_concurrency`](crate::ServiceConfig::inbox_concurrency)
    /// inbox webhooks due now and confirms them side by side, never two of one payment at
    /// once (see [`crate::payment_lock`]). Claiming no more than can start at once keeps
    /// each webhook's wait for its turn well inside its lease.
    pub(crate) async fn confirm_due_webhooks(&self) -> Result<InboxReport, UpdateError> {
        let at_once = self.config.inbox_concurrency.get();
        let now = self.clock.now();
        // The claim's deadline is the token our finish and retry writes show.
        let leased_until = now + self.config.inbox_lease;
        let due = self
            .repo
            .claim_webhooks(
                now,
                self.config.inbox_lease,
                u32::try_from(at_once).unwrap_or(u32::MAX),
            )
            .await?;
        let mut report = InboxReport {
            claimed: u32::try_from(due.len()).unwrap_or(u32::MAX),
            ..InboxReport::default()
        };
        let mut confirmations = futures_util::stream::iter(due)
            .map(|entry| self.process_inbox_entry(entry, leased_until))
            .buffer_unordered(at_once);
        while let Some(done) = confirmations.next().await {
            match done {
                Ok(Confirmation::Settled { linked }) => {
                    report.processed += 1;
                    report.linked += u32::from(linked);
                }
                Ok(Confirmation::Deferred) => report.deferred += 1,
                Ok(Confirmation::Unconfirmed) => report.unconfirmed += 1,
                Ok(Confirmation::LeaseLost { linked }) => {
                    report.lease_lost += 1;
                    report.linked += u32::from(linked);
                }
                Ok(Confirmation::Unmatched { ambiguous }) => {
                    report.unmatched += 1;
                    report.ambiguous += u32::from(ambiguous);
                }
                Ok(Confirmation::Expired) => {
                    report.processed += 1;
                    report.expired += 1;
                }
                Ok(Confirmation::OverBudget) => report.over_budget += 1,
                // Left leased in the inbox: tried again when the lease ends.
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(%error, "inbox webhook could not be processed");
                }
            }
        }
        Ok(report)
    }

    /// Confirms one inbox webhook with IVPAY and applies the answer, then removes it from
    /// the inbox; if IVPAY cannot answer, schedules another attempt with back-off, up to
    /// [`ServiceConfig::inbox_max_attempts`](crate::ServiceConfig::inbox_max_attempts)
    /// failed attempts, after which it is recorded as unconfirmed and removed. Holds the
    /// payment's lock throughout: one confirmation in flight per payment. Inbox writes
    /// are made only while the claim that leased it until `leased_until` holds.
    async fn process_inbox_entry(
        &self,
        entry: InboxWebhook,
        leased_until: Timestamp,
    ) -> Result<Confirmation, UpdateError> {
        let _turn = self.confirming.lock(&entry.hint.payment_id).await;
        let (done, written) = match self.confirm_by_get(&entry.hint).await {
            Ok(Confirmed::Recorded { linked }) => (
                Confirmation::Settled { linked },
                self.repo.finish_webhook(entry.id, leased_until).await?,
            ),
            Ok(Confirmed::Unmatched {
                ambiguous,
                confirmation,
            }) => {
                self.keep_unmatched(&entry, leased_until, ambiguous, confirmation)
                    .await?
            }
            Ok(Confirmed::OverBudget) => {
                let next = self.clock.now() + OVER_BUDGET_RETRY;
                (
                    Confirmation::OverBudget,
                    self.repo
                        .retry_webhook(entry.id, leased_until, next, entry.attempts)
                        .await?,
                )
            }
            Err(UpdateError::Upstream(error)) => {
                let attempts = entry.attempts.saturating_add(1);
                if attempts >= self.config.inbox_max_attempts.get() {
                    self.give_up(&entry, attempts, &error).await?;
                    (
                        Confirmation::Unconfirmed,
                        self.repo.finish_webhook(entry.id, leased_until).await?,
                    )
                } else {
                    let delay = self
                        .config
                        .reconcile_delay(attempts, entry.id.as_uuid().as_u128());
                    tracing::warn!(payment_id = %entry.hint.payment_id, %error, attempts,
                        "webhook kept in the inbox: IVPAY could not confirm it");
                    let next = self.clock.now() + delay;
                    (
                        Confirmation::Deferred,
                        self.repo
                            .retry_webhook(entry.id, leased_until, next, attempts)
                            .await?,
                    )
                }
            }
            Err(other) => return Err(other),
        };
        if written == LeaseWrite::LeaseLost {
            tracing::warn!(id = %entry.id, payment_id = %entry.hint.payment_id,
                "inbox lease ran out mid-confirmation; the worker holding it now finishes it");
            let linked = matches!(done, Confirmation::Settled { linked: true });
            return Ok(Confirmation::LeaseLost { linked });
        }
        Ok(done)
    }

    /// Records a webhook IVPAY could not confirm in `attempts` tries as
    /// [`EventOutcome::Unconfirmed`], with its body and the last error, linked to its
    /// payment when we know it. Nothing is applied: a webhook is only a hint.
    async fn give_up(
        &self,
        entry: &InboxWebhook,
        attempts: u32,
        error: &GatewayError,
    ) -> Result<(), UpdateError> {
        let payment = self.repo.get_by_payment_id(&entry.hint.payment_id).await?;
        let note = format!("IVPAY could not confirm it in {attempts} attempts; last: {error}");
        let update = as_claimed(
            &entry.hint,
            Evidence::from_webhook(entry.hint.raw.clone()).with_note(note),
        );
        self.record_unchanged(&update, payment.as_ref(), EventOutcome::Unconfirmed)
            .await?;
        tracing::error!(id = %entry.id, payment_id = %entry.hint.payment_id, attempts, %error,
            "webhook given up: IVPAY could not confirm it; recorded as unconfirmed");
        Ok(())
    }

    /// Keeps a webhook whose payment we hold no row for in the inbox, retried with
    /// back-off, until `unknown_webhook_keep` after it was received; then records it as an
    /// unknown payment and removes it.
    async fn keep_unmatched(
        &self,
        entry: &InboxWebhook,
        leased_until: Timestamp,
        ambiguous: bool,
        confirmation: String,
    ) -> Result<(Confirmation, LeaseWrite), UpdateError> {
        let now = self.clock.now();
        let attempts = entry.attempts.saturating_add(1);
        if now >= entry.received_at + self.config.unknown_webhook_keep {
            let update = as_claimed(
                &entry.hint,
                Evidence::from_webhook(entry.hint.raw.clone())
                    .with_confirmation(confirmation)
                    .with_note(UNMATCHED),
            );
            self.record_unchanged(&update, None, EventOutcome::UnknownPayment)
                .await?;
            let written = self.repo.finish_webhook(entry.id, leased_until).await?;
            tracing::warn!(payment_id = %entry.hint.payment_id, attempts,
                "webhook for a payment we hold no row for expired from the inbox");
            return Ok((Confirmation::Expired, written));
        }
        let delay = self
            .config
            .reconcile_delay(attempts, entry.id.as_uuid().as_u128());
        let written = self
            .repo
            .retry_webhook(entry.id, leased_until, now + delay, attempts)
            .await?;
        tracing::info!(payment_id = %entry.hint.payment_id, attempts, ambiguous,
            "webhook kept in the inbox: no row holds its payment yet");
        Ok((Confirmation::Unmatched { ambiguous }, written))
    }

    /// The webhook's only credential is our own key echoed back: it is a hint. What is
    /// applied is what IVPAY's GET says; both bodies are kept as evidence. A payment IVPAY
    /// knows but no row holds is matched by foreign id ([`crate::link`]) before anything
    /// is applied, or left unmatched.
    ///
    /// IVPAY is asked with the key of the account the payment was made through; for a
    /// payment no row holds yet, with the key of the account whose key the webhook echoed,
    /// and only that account's rows are candidates for the link.
    async fn confirm_by_get(&self, hint: &WebhookHint) -> Result<Confirmed, UpdateError> {
        let held = self.repo.get_by_payment_id(&hint.payment_id).await?;
        let account = held
            .as_ref()
            .map_or(&hint.account, |payment| payment.account());
        if held.is_some() && *account != hint.account {
            tracing::warn!(payment_id = %hint.payment_id, notified_by = %hint.account, %account,
                "webhook echoed another account's key than the payment's: confirmed with the payment's own account");
        }
        if !self.budget.confirmation(account) {
            return Ok(Confirmed::OverBudget);
        }
        let gateway = self.gateways.of(account).map_err(UpdateError::Upstream)?;
        let remote = match gateway.get(&hint.payment_id).await {
            Ok(remote) => remote,
            // IVPAY does not know it: nothing to confirm. Kept on record, not retried.
            Err(GatewayError::NotFound(_)) => {
                let update = as_claimed(
                    hint,
                    Evidence::from_webhook(hint.raw.clone()).with_note(NOT_FOUND),
                );
                self.record_unchanged(&update, None, EventOutcome::UnknownPayment)
                    .await?;
                return Ok(Confirmed::Recorded { linked: false });
            }
            Err(other) => return Err(UpdateError::Upstream(other)),
        };
        if hint
            .status
            .as_ref()
            .is_some_and(|claimed| *claimed != remote.status)
        {
            metrics::counter!("ivpay_webhook_truth_total", "verdict" => "disagreeing").increment(1);
            tracing::warn!(payment_id = %hint.payment_id, claimed = ?hint.status, confirmed = %remote.status,
                "a webhook's status differs from IVPAY's GET; IVPAY's GET is applied");
        }
        let linked = if held.is_some() {
            false
        } else {
            match self
                .link_by_foreign_id(&hint.payment_id, account, remote.foreign_id.as_ref())
                .await?
            {
                Match::Linked => true,
                Match::Known => false,
                Match::None => {
                    return Ok(Confirmed::Unmatched {
                        ambiguous: false,
                        confirmation: remote.raw,
                    });
                }
                Match::Ambiguous => {
                    return Ok(Confirmed::Unmatched {
                        ambiguous: true,
                        confirmation: remote.raw,
                    });
                }
            }
        };
        self.apply_status_update(StatusUpdate {
            payment_id: hint.payment_id.clone(),
            status: remote.status,
            processed_at: remote.processed_at,
            source: UpdateSource::Webhook,
            evidence: Some(Evidence::from_webhook(hint.raw.clone()).with_confirmation(remote.raw)),
        })
        .await?;
        Ok(Confirmed::Recorded { linked })
    }
}

/// A webhook's own claim as an update that changes nothing (given up, expired, not found
/// at IVPAY): the status it claimed (none: unknown), with `evidence`.
fn as_claimed(hint: &WebhookHint, evidence: Evidence) -> StatusUpdate {
    StatusUpdate {
        payment_id: hint.payment_id.clone(),
        status: hint
            .status
            .clone()
            .unwrap_or(ReportedStatus::Unknown(String::new())),
        processed_at: None,
        source: UpdateSource::Webhook,
        evidence: Some(evidence),
    }
}
