//! Tunables of notification delivery.

use std::num::NonZeroUsize;
use std::time::Duration;

/// How notices are delivered. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Notifications claimed per delivery pass.
    pub batch: u32,
    /// Attempts in flight at once within a pass.
    pub concurrency: NonZeroUsize,
    /// The longest one attempt can take (the sender's time limit). A claim holds its
    /// notifications for this plus a margin, so another instance never sends the same
    /// attempt while this one may still be sending it.
    pub attempt_timeout: Duration,
    /// The waits between attempts of one round: the first attempt goes at once, the
    /// second `schedule[0]` after the first failed, and so on; when the schedule is spent
    /// the notification is *failed*. Each wait is spread by [`NotifyConfig::jitter_percent`].
    pub schedule: Vec<Duration>,
    /// How far (in percent, either way) each wait is moved, so that retries to one
    /// endpoint do not all arrive in the same second.
    pub jitter_percent: u8,
    /// An endpoint whose every attempt has failed for this long is disabled.
    pub disable_after: Duration,
}

impl NotifyConfig {
    /// Svix's schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), then two
    /// daily attempts so a receiver down over a weekend still hears: about three days.
    pub fn default_schedule() -> Vec<Duration> {
        [
            5,
            5 * 60,
            30 * 60,
            2 * 3600,
            5 * 3600,
            10 * 3600,
            10 * 3600,
            24 * 3600,
            24 * 3600,
        ]
        .map(Duration::from_secs)
        .to_vec()
    }

    /// How long a claim holds its notifications.
    pub fn lease(&self) -> Duration {
        self.attempt_timeout + Duration::from_secs(30)
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            concurrency: NonZeroUsize::new(16).expect("16 is not zero"),
            attempt_timeout: Duration::from_secs(15),
            schedule: Self::default_schedule(),
            jitter_percent: 10,
            disable_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_grows_and_lasts_about_three_days() {
        let schedule = NotifyConfig::default_schedule();
        assert!(schedule.windows(2).all(|w| w[0] <= w[1]));
        let total: Duration = schedule.iter().sum();
        let days = total.as_secs_f64() / 86_400.0;
        assert!((2.9..3.5).contains(&days), "{days} days");
        assert_eq!(schedule[0], Duration::from_secs(5));
    }
}
