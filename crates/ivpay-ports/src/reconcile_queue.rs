//! The reconciliation queue: payments whose status IVPAY should be asked about, and intents
//! whose request died before IVPAY's answer was stored.

use std::time::Duration;

use ivpay_domain::{InternalId, Payment, Timestamp};

use crate::storage::{LeaseWrite, RepositoryError};

/// A payment claimed for a reconciliation check, with how many checks it has had.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ClaimedPayment {
    /// The payment, as stored when claimed.
    pub payment: Payment,
    /// Checks made so far (drives the back-off).
    pub attempts: u32,
}

/// The reconciler's work list: the schedule of checks of non-final payments, and the
/// intents left *initiated* by requests that died.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait ReconcileQueue: Send + Sync {
    /// Up to `limit` payments still *initiated* (intent stored, IVPAY's answer never
    /// stored) that were recorded before `created_before`, oldest first: requests that died
    /// mid-flight, for recovery.
    ///
    /// A stored row that no longer reads into the domain does not fail the call: an adapter
    /// that can hold one quarantines it (sets it aside for an operator, logs and counts it)
    /// and returns the others. The same holds for [`ReconcileQueue::claim_due`].
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn stale_intents(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Payment>, RepositoryError>;

    /// Claims up to `limit` non-final payments whose next check is due at `now`, by moving
    /// their next check to `now + lease`: each row goes to exactly one of several
    /// concurrent claimers, and a claimer that dies releases its rows when the lease ends.
    /// The claim's deadline, `now + lease`, is what the claimer passes back to
    /// [`ReconcileQueue::schedule_check`].
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedPayment>, RepositoryError>;

    /// How many stored rows are quarantined: set aside by [`ReconcileQueue::stale_intents`],
    /// [`ReconcileQueue::claim_due`] or [`crate::WebhookInbox::claim_webhooks`] because they
    /// no longer read, and not yet released by an operator. Always 0 for storage that cannot
    /// hold such a row.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn count_quarantined(&self) -> Result<u64, RepositoryError>;

    /// Sets a claimed payment's next check (`None`: no more checks) and its attempt count,
    /// if the claim that leased it until `leased_until` still holds (its next check is still
    /// `leased_until`); otherwise writes nothing and answers [`LeaseWrite::LeaseLost`]: the
    /// lease ran out and another claimer took the payment over, or a final status ended its
    /// checks meanwhile.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::NotFound`], [`RepositoryError::Unavailable`].
    async fn schedule_check(
        &self,
        id: InternalId,
        leased_until: Timestamp,
        next_check_at: Option<Timestamp>,
        attempts: u32,
    ) -> Result<LeaseWrite, RepositoryError>;
}
