//! Retention: old events and finished notifications deleted in bounded batches, so the
//! tables a long-running service writes do not fill the disk. Payments are kept.

use std::time::Duration;

use ivpay_ports::{Clock, RepositoryError, Retained, RetentionStore};

/// How long rows are kept, and how much one pass may delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Status events older than this are deleted; `None` keeps them (the default: they
    /// are the payments' evidence).
    pub events: Option<Duration>,
    /// Delivered, failed and skipped notifications (with their attempts) older than this
    /// are deleted; `None` keeps them. Default 30 days.
    pub notifications: Option<Duration>,
    /// Rows deleted per statement (one short transaction each). Default 1000.
    pub batch: u32,
    /// Batches per table and pass, so one pass stays short; the rest waits for the next.
    /// Default 100.
    pub max_batches: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events: None,
            notifications: Some(Duration::from_secs(30 * 24 * 3600)),
            batch: 1000,
            max_batches: 100,
        }
    }
}

/// What one pass deleted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RetentionReport {
    /// Events deleted.
    pub events: u64,
    /// Notifications deleted (their attempts with them).
    pub notifications: u64,
    /// Whether a table still had old rows when the pass stopped (its batch limit).
    pub more: bool,
}

/// Runs purges over a store `S` with a clock `C`.
#[derive(Debug)]
pub struct Retention<S, C> {
    store: S,
    clock: C,
    config: RetentionConfig,
}

impl<S: RetentionStore, C: Clock> Retention<S, C> {
    /// Purges over `store`, with `config`.
    pub fn new(store: S, clock: C, config: RetentionConfig) -> Self {
        Self {
            store,
            clock,
            config,
        }
    }

    /// One pass: for each table with a retention, batches of old rows until none are left
    /// or `max_batches` were deleted. `progress` hears each batch (table, rows so far).
    ///
    /// # Errors
    ///
    /// [`RepositoryError`]; what earlier batches deleted stays deleted.
    pub async fn purge_once(
        &self,
        mut progress: impl FnMut(Retained, u64),
    ) -> Result<RetentionReport, RepositoryError> {
        let now = self.clock.now();
        let mut report = RetentionReport::default();
        for (what, keep) in [
            (Retained::Events, self.config.events),
            (Retained::Notifications, self.config.notifications),
        ] {
            let Some(keep) = keep else { continue };
            let before = now - keep;
            let mut total = 0;
            let mut batches = 0;
            loop {
                let deleted = self.store.purge(what, before, self.config.batch).await?;
                total += deleted;
                batches += 1;
                if deleted > 0 {
                    metrics::counter!("ivpay_retention_purged_total", "table" => what.as_str())
                        .increment(deleted);
                    progress(what, total);
                }
                if deleted < u64::from(self.config.batch) {
                    break;
                }
                if batches >= self.config.max_batches {
                    report.more = true;
                    break;
                }
            }
            match what {
                Retained::Events => report.events = total,
                Retained::Notifications => report.notifications = total,
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use ivpay_domain::Timestamp;
    use ivpay_ports::MockRetentionStore;

    use super::*;
    use crate::ManualClock;

    #[tokio::test]
    async fn a_pass_deletes_in_batches_until_a_short_one_and_stops_at_its_limit() {
        let mut store = MockRetentionStore::new();
        let now = 10_000_000;
        // Notifications: 1000, 1000, 3 rows; events are kept (no retention).
        let mut answers = vec![1000u64, 1000, 3].into_iter();
        store
            .expect_purge()
            .withf(move |what, before, limit| {
                *what == Retained::Notifications
                    && *before == Timestamp::from_unix_seconds(now - 30 * 24 * 3600)
                    && *limit == 1000
            })
            .times(3)
            .returning(move |_, _, _| Ok(answers.next().unwrap_or(0)));
        let retention = Retention::new(
            store,
            ManualClock::new(Timestamp::from_unix_seconds(now)),
            RetentionConfig::default(),
        );
        let mut seen = Vec::new();
        let report = retention
            .purge_once(|what, total| seen.push((what, total)))
            .await
            .expect("a pass");
        assert_eq!(report.notifications, 2003);
        assert_eq!(report.events, 0);
        assert!(!report.more);
        assert_eq!(seen.last(), Some(&(Retained::Notifications, 2003)));

        let mut busy = MockRetentionStore::new();
        busy.expect_purge()
            .times(4)
            .returning(|_, _, limit| Ok(u64::from(limit)));
        let retention = Retention::new(
            busy,
            ManualClock::new(Timestamp::from_unix_seconds(now)),
            RetentionConfig {
                events: Some(Duration::from_secs(3600)),
                batch: 10,
                max_batches: 2,
                ..RetentionConfig::default()
            },
        );
        let report = retention.purge_once(|_, _| {}).await.expect("a pass");
        assert_eq!((report.events, report.notifications), (20, 20));
        assert!(report.more, "the limit stops a pass with rows left");
    }
}
