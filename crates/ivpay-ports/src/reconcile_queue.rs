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

    /// Payments created at IVPAY and not final yet, by how long ago they were recorded
    /// (at `now`), quarantined rows aside: what the reconciler still follows.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn count_open(&self, now: Timestamp) -> Result<OpenPayments, RepositoryError>;

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

/// Open payments (created at IVPAY, not final) by age: a pile of old ones means webhooks
/// and polls are not settling them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct OpenPayments {
    /// Recorded within the last hour.
    pub under_an_hour: u64,
    /// Recorded between an hour and a day ago.
    pub under_a_day: u64,
    /// Recorded more than a day ago.
    pub older: u64,
}

impl OpenPayments {
    /// Seconds in the first two buckets' bounds.
    pub const HOUR: i64 = 3600;
    /// A day.
    pub const DAY: i64 = 24 * 3600;

    /// The bucket of a payment recorded at `created` (Unix seconds), at `now`.
    pub fn count(&mut self, created: i64, now: i64) {
        let age = now.saturating_sub(created);
        if age < Self::HOUR {
            self.under_an_hour += 1;
        } else if age < Self::DAY {
            self.under_a_day += 1;
        } else {
            self.older += 1;
        }
    }
}
