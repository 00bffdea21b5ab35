//! The time a notice is signed at, or checked at, in whole Unix seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as whole seconds since 1970-01-01 UTC, the unit of `webhook-timestamp`.
///
/// Signing and verifying take `impl Into<UnixTime>`, so a caller passes either an `i64`
/// of seconds or a [`SystemTime`]; the crate itself reads the clock only in
/// [`UnixTime::now`] and in the functions whose name ends in `_now`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use ivpay_signing::UnixTime;
///
/// let at = UNIX_EPOCH + Duration::from_millis(1_614_265_330_900);
/// assert_eq!(UnixTime::from(at), UnixTime::from(1_614_265_330));
/// assert_eq!(UnixTime::from(at).seconds(), 1_614_265_330);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// The system clock's time, the only place the crate reads it.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Whole seconds since the epoch (negative before 1970).
    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl From<i64> for UnixTime {
    fn from(seconds: i64) -> Self {
        Self(seconds)
    }
}

impl From<SystemTime> for UnixTime {
    /// Rounds down to the second, also before 1970; saturates far outside `i64`'s range.
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => {
                let before = e.duration();
                let whole = before.as_secs() + u64::from(before.subsec_nanos() > 0);
                Self(i64::try_from(whole).map_or(i64::MIN, |s| -s))
            }
        }
    }
}

impl From<UnixTime> for i64 {
    fn from(time: UnixTime) -> Self {
        time.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn system_times_round_down_on_both_sides_of_the_epoch() {
        let ms = Duration::from_millis;
        assert_eq!(UnixTime::from(UNIX_EPOCH).seconds(), 0);
        assert_eq!(UnixTime::from(UNIX_EPOCH + ms(1_999)).seconds(), 1);
        assert_eq!(UnixTime::from(UNIX_EPOCH - ms(1_000)).seconds(), -1);
        assert_eq!(UnixTime::from(UNIX_EPOCH - ms(1_001)).seconds(), -2);
    }
}
