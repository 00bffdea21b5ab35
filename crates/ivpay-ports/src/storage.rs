//! The error every storage port ([`crate::PaymentStore`], [`crate::WebhookInbox`],
//! [`crate::ReconcileQueue`]) fails with: one database stands behind all three.

use ivpay_domain::InternalId;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// Compare-and-set lost: the stored version is not the one the writer read. Reload
    /// and decide again.
    #[error("payment {id} changed concurrently (expected version {expected})")]
    VersionConflict {
        /// The payment.
        id: InternalId,
        /// The version the writer expected.
        expected: u64,
    },
    /// No such payment.
    #[error("payment {0} not found")]
    NotFound(InternalId),
    /// A unique value is taken (IVPAY id already linked to another payment).
    #[error("duplicate {what}")]
    Duplicate {
        /// Which value.
        what: &'static str,
    },
    /// A stored row no longer parses into the domain (a bug or a hand edit).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached. Retrying later may help.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// What became of a write made on the strength of a claim ([`crate::ReconcileQueue::claim_due`],
/// [`crate::WebhookInbox::claim_webhooks`]). A claim leases a row until `now + lease`, and
/// that deadline, still in the row, is the claimer's token: once the lease has run out and
/// another worker has claimed the row (moving the deadline), or anything else has moved it,
/// the first claimer's writes are refused, so a slow worker cannot overwrite the schedule of
/// the one that took over.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum LeaseWrite {
    /// The claim still held; the write is made.
    Written,
    /// The row is no longer under this claim; nothing was written.
    LeaseLost,
}
