//! Time, as a port: the service never reads the system clock or sleeps on its own.

use std::time::Duration;

use ivpay_domain::Timestamp;

/// The current time and a way to wait. Tests substitute a clock they move by hand.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    /// Now, in whole seconds since the Unix epoch.
    fn now(&self) -> Timestamp;

    /// Waits for `duration` (or, for a test clock, however long the test decides).
    async fn sleep(&self, duration: Duration);
}
