//! The sandbox's notion of "now": the system clock, or a manual one tests move by hand.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ivpay_domain::Timestamp;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// The clock every sandbox timestamp and payment deadline is read from.
///
/// Two modes: [`SandboxClock::system`] follows the machine's clock plus an offset, and
/// [`SandboxClock::manual`] stands still until someone calls [`SandboxClock::advance`]
/// (or `POST /sandbox/clock/advance`). Either way, `advance` wakes the timeout sweeper at
/// once, so a test that advances past a payment's window sees `TIMEOUT` and its webhook
/// without sleeping. Clones share one clock.
///
/// ```
/// use std::time::Duration;
/// use ivpay_sandbox::SandboxClock;
///
/// let clock = SandboxClock::manual(1_726_248_776);
/// clock.advance(Duration::from_secs(9));
/// assert_eq!(clock.now().unix_seconds(), 1_726_248_785);
/// ```
#[derive(Clone)]
pub struct SandboxClock {
    inner: Arc<ClockState>,
}

struct ClockState {
    manual: bool,
    /// Manual mode: the current time in Unix milliseconds. System mode: the offset added
    /// to the system clock, in milliseconds.
    millis: AtomicI64,
    changed: Notify,
}

impl SandboxClock {
    /// Follows the system clock; `advance` adds to an offset.
    pub fn system() -> Self {
        Self::with(false, 0)
    }

    /// Stands at `unix_seconds` until advanced.
    pub fn manual(unix_seconds: i64) -> Self {
        Self::with(true, unix_seconds.saturating_mul(1000))
    }

    fn with(manual: bool, millis: i64) -> Self {
        Self {
            inner: Arc::new(ClockState {
                manual,
                millis: AtomicI64::new(millis),
                changed: Notify::new(),
            }),
        }
    }

    /// Whether this clock only moves when advanced.
    pub fn is_manual(&self) -> bool {
        self.inner.manual
    }

    /// Now, in Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        let value = self.inner.millis.load(Ordering::Acquire);
        if self.inner.manual {
            value
        } else {
            system_millis().saturating_add(value)
        }
    }

    /// Now, in whole Unix seconds (IVPAY's unit).
    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.now_millis().div_euclid(1000))
    }

    /// Moves the clock forward by `by` and wakes whoever waits on it (the timeout sweeper).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.inner.millis.fetch_add(by, Ordering::AcqRel);
        self.inner.changed.notify_waiters();
    }

    /// Resolves at the next [`advance`](Self::advance); `enable` it before checking
    /// deadlines so an advance in between is not missed.
    pub(crate) fn advanced(&self) -> Notified<'_> {
        self.inner.changed.notified()
    }
}

impl Default for SandboxClock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for SandboxClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxClock")
            .field("manual", &self.inner.manual)
            .field("now_millis", &self.now_millis())
            .finish()
    }
}

fn system_millis() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let clock = SandboxClock::manual(100);
        assert_eq!(clock.now().unix_seconds(), 100);
        assert_eq!(clock.now().unix_seconds(), 100);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now_millis(), 101_500);
        assert_eq!(clock.now().unix_seconds(), 101);
    }

    #[test]
    fn a_system_clock_can_be_pushed_ahead() {
        let clock = SandboxClock::system();
        let before = clock.now().unix_seconds();
        clock.advance(Duration::from_secs(3600));
        let after = clock.now().unix_seconds();
        assert!(after >= before + 3600, "{before} -> {after}");
        assert!(after < before + 3700, "{before} -> {after}");
    }

    #[test]
    fn clones_share_one_clock() {
        let a = SandboxClock::manual(0);
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(b.now().unix_seconds(), 5);
    }
}
