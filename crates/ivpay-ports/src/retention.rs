//! The retention port: bounded deletes of what the service no longer needs.

use ivpay_domain::Timestamp;

use crate::storage::RepositoryError;

/// What a purge deletes. Payments themselves are never purged, and neither is work still
/// to do (a pending notification, an inbox webhook: the inbox empties itself, every entry
/// leaving after its attempts or its `unknown_webhook_keep`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Retained {
    /// Status events (the history and evidence of payments) received before the cut.
    Events,
    /// Notifications written before the cut that are no longer pending (delivered,
    /// failed, skipped), with their attempts.
    Notifications,
}

impl Retained {
    /// The name used in metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Events => "payment_events",
            Self::Notifications => "notifications",
        }
    }
}

/// Deletes old rows in bounded batches, oldest first.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes at most `limit` rows of `what` older than `before`, oldest first, in one
    /// short transaction; answers how many. Fewer than `limit` means none are left.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`]: nothing is deleted.
    async fn purge(
        &self,
        what: Retained,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError>;
}
