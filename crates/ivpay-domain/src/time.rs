//! Points in time, as IVPAY gives them: whole seconds since the Unix epoch.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time in whole seconds since the Unix epoch (UTC).
///
/// IVPAY's `created_at` and `processed_at` are in this unit. The domain never reads the
/// system clock: time comes in through the `Clock` port, so tests can move it.
///
/// ```
/// use std::time::Duration;
/// use ivpay_domain::Timestamp;
///
/// let t = Timestamp::from_unix_seconds(1_726_248_776);
/// assert_eq!((t + Duration::from_secs(9)).unix_seconds(), 1_726_248_785);
/// assert_eq!((t - Duration::from_secs(76)).unix_seconds(), 1_726_248_700);
/// ```
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Wraps Unix seconds.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Unix seconds.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        let secs = i64::try_from(rhs.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(secs))
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        let secs = i64::try_from(rhs.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(secs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
