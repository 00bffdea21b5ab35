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

    /// The instant in RFC 3339 form, UTC, whole seconds: `2026-12-05T00:20:34Z`.
    ///
    /// ```
    /// use ivpay_domain::Timestamp;
    ///
    /// assert_eq!(Timestamp::from_unix_seconds(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    /// assert_eq!(
    ///     Timestamp::from_unix_seconds(1_614_265_330).to_rfc3339(),
    ///     "2021-02-25T15:02:10Z"
    /// );
    /// ```
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        // Days since 1970-01-01 to a civil date (proleptic Gregorian), by 400-year eras.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3_600,
            secs % 3_600 / 60,
            secs % 60
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates_across_leap_days_and_centuries() {
        let cases = [
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_709_164_799, "2024-02-28T23:59:59Z"),
            (1_709_251_200, "2024-03-01T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ];
        for (secs, text) in cases {
            assert_eq!(
                Timestamp::from_unix_seconds(secs).to_rfc3339(),
                text,
                "{secs}"
            );
        }
    }
}
