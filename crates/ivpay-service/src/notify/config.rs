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
    /// How many payments being created at once make the service busy; 0 for never. While
    /// it is busy, delivery gives way to the creates ([`NotifyConfig::pause_after_full`]).
    pub busy_creates: usize,
    /// While busy, the share of the time (percent, 1 to 100) delivery passes may take back
    /// to back; 100 for no pause.
    pub busy_share_percent: u8,
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

    /// The pause after a full pass (more may be due) that took `took`, with `creating`
    /// payments being created: none while the service is not busy, so delivery keeps up
    /// at once; while it is, long enough that passes take at most
    /// [`NotifyConfig::busy_share_percent`] of the time. Taking payments comes first:
    /// under a burst of creates the notices wait (kept, owed or due, never lost) and
    /// delivery catches up at full speed when the burst is over.
    pub fn pause_after_full(&self, took: Duration, creating: usize) -> Duration {
        let share = u32::from(self.busy_share_percent.clamp(1, 100));
        if !self.is_busy(creating) || share == 100 {
            return Duration::ZERO;
        }
        took * (100 - share) / share
    }

    /// Whether `creating` payments being created at once make the service busy
    /// ([`NotifyConfig::busy_creates`]; never when that is 0).
    pub fn is_busy(&self, creating: usize) -> bool {
        self.busy_creates != 0 && creating >= self.busy_creates
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
            busy_creates: 8,
            busy_share_percent: 5,
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

    #[test]
    fn delivery_gives_way_only_while_enough_payments_are_being_created() {
        let config = NotifyConfig::default();
        let took = Duration::from_millis(20);
        assert_eq!(config.pause_after_full(took, 0), Duration::ZERO);
        assert_eq!(config.pause_after_full(took, 7), Duration::ZERO, "not busy");
        assert!(!config.is_busy(7) && config.is_busy(8));
        // Busy: passes take a twentieth of the time, a 20 ms pass then 380 ms of pause.
        assert_eq!(config.pause_after_full(took, 8), Duration::from_millis(380));
        let half = NotifyConfig {
            busy_share_percent: 50,
            ..NotifyConfig::default()
        };
        assert_eq!(half.pause_after_full(took, 100), took);
        for off in [
            NotifyConfig {
                busy_creates: 0,
                ..NotifyConfig::default()
            },
            NotifyConfig {
                busy_share_percent: 100,
                ..NotifyConfig::default()
            },
        ] {
            assert_eq!(off.pause_after_full(took, 1_000), Duration::ZERO);
        }
        let zero = NotifyConfig {
            busy_share_percent: 0,
            ..NotifyConfig::default()
        };
        assert_eq!(
            zero.pause_after_full(took, 8),
            took * 99,
            "a share of 0 is read as the least, 1 %: delivery never stops"
        );
    }
}
