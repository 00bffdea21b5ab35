//! The webhook inbox: every webhook that needs confirming, kept from before it is
//! acknowledged until its confirmation is applied.

use std::time::Duration;

use ivpay_domain::{InternalId, Timestamp, WebhookHint};

use crate::storage::{LeaseWrite, RepositoryError};

/// A received webhook kept in the inbox until it has been confirmed and applied, so a
/// webhook answered 200 is never lost, whatever fails after.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InboxWebhook {
    /// Our id of this delivery.
    pub id: InternalId,
    /// What it says, and its body verbatim.
    pub hint: WebhookHint,
    /// When we received it.
    pub received_at: Timestamp,
    /// Confirmation attempts made so far.
    pub attempts: u32,
}

/// A webhook in the inbox as an operator sees it: the webhook, and when it is next tried
/// (while a worker holds it: when that worker's lease runs out).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InboxEntry {
    /// The webhook.
    pub webhook: InboxWebhook,
    /// When it is next tried.
    pub next_attempt_at: Timestamp,
}

/// Webhooks waiting for IVPAY's confirmation. A webhook is kept here before it is answered
/// 200, leased to one worker at a time while it is confirmed, and removed once what IVPAY
/// said is applied.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait WebhookInbox: Send + Sync {
    /// Keeps a received webhook, to be processed first at `next_attempt_at` by
    /// [`WebhookInbox::claim_webhooks`] unless finished before.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`]: the webhook was not kept, so it must not be
    /// acknowledged.
    async fn store_webhook(
        &self,
        webhook: &InboxWebhook,
        next_attempt_at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Claims up to `limit` inbox webhooks due at `now`, oldest first, moving their next
    /// attempt to `now + lease` so concurrent workers do not take the same one. That
    /// deadline is what the claimer passes back to [`WebhookInbox::finish_webhook`] and
    /// [`WebhookInbox::retry_webhook`]. A stored row that no longer reads into the domain
    /// does not fail the call: an adapter that can hold one quarantines it (sets it aside
    /// for an operator, logs and counts it) and returns the others.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn claim_webhooks(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxWebhook>, RepositoryError>;

    /// Removes a processed webhook from the inbox (its evidence lives on in the event), if
    /// the claim that leased it until `leased_until` still holds; otherwise (the lease ran
    /// out and another worker claimed it, or it is gone) removes nothing and answers
    /// [`LeaseWrite::LeaseLost`]: the worker holding it now finishes it.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn finish_webhook(
        &self,
        id: InternalId,
        leased_until: Timestamp,
    ) -> Result<LeaseWrite, RepositoryError>;

    /// Schedules another attempt for a webhook that could not be confirmed yet, if the
    /// claim that leased it until `leased_until` still holds; otherwise writes nothing and
    /// answers [`LeaseWrite::LeaseLost`], so a worker whose lease ran out cannot move the
    /// attempt of the worker that took over (nor set its attempt count back).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn retry_webhook(
        &self,
        id: InternalId,
        leased_until: Timestamp,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<LeaseWrite, RepositoryError>;

    /// The webhooks waiting in the inbox (quarantined rows aside), oldest first, at most
    /// `limit`: what an operator looks at when webhooks seem not to be applied.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<InboxEntry>, RepositoryError>;
}
