//! Delivery: claim due notifications, sign and send them side by side, record every
//! attempt with what comes next, and keep each endpoint's health.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use ivpay_domain::{Disabled, Endpoint, EndpointId, InternalId, Timestamp};
use ivpay_ports::{
    AfterAttempt, AttemptOutcome, Clock, DeliveryAttempt, LeaseWrite, NoticeSender, Notification,
    NotificationStore, OutboundNotice, RepositoryError, SendOutcome, SendReport,
};

use super::Notifications;
use super::config::NotifyConfig;

/// What one delivery pass did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DeliveryReport {
    /// Notifications claimed.
    pub claimed: usize,
    /// Taken by their endpoint (2xx).
    pub delivered: usize,
    /// Failed this attempt, to be tried again later.
    pub retried: usize,
    /// Failed their last scheduled attempt: *failed*.
    pub failed: usize,
    /// Not sent: their endpoint is disabled, gone or removed.
    pub skipped: usize,
    /// Attempted after their claim ran out: not recorded (another deliverer has them).
    pub lease_lost: usize,
    /// Endpoints this pass disabled (410 Gone, or failing for too long).
    pub endpoints_disabled: usize,
}

/// How an attempt went, for the endpoint's health.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Health {
    Good,
    Bad,
    Gone,
    Untouched,
}

impl<S, N, C> Notifications<S, N, C>
where
    S: NotificationStore,
    N: NoticeSender,
    C: Clock,
{
    /// One delivery pass: claims up to `batch` due notifications, sends them with at most
    /// `concurrency` in flight, and records every attempt in one write. A full batch
    /// means more may be due: the worker runs another pass at once.
    ///
    /// # Errors
    ///
    /// [`RepositoryError`] when storage fails; a claim not recorded runs out and the
    /// notifications are sent again later (at least once, never lost).
    pub async fn deliver_due(&self) -> Result<DeliveryReport, RepositoryError> {
        // What changes still owe becomes notifications first, so this claim takes them.
        self.store.announce_pending(self.config.batch).await?;
        let now = self.clock.now();
        let until = now + self.config.lease();
        let claimed = self
            .store
            .claim_notifications(now, until, self.config.batch)
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..DeliveryReport::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        let ids: BTreeSet<EndpointId> = claimed.iter().map(|n| n.endpoint.clone()).collect();
        let mut endpoints = BTreeMap::new();
        for id in ids {
            if let Some(e) = self.store.endpoint(&id).await? {
                endpoints.insert(id, e);
            }
        }
        // One payment's notices to one endpoint go one after the other, in the order of
        // the changes; the rest side by side.
        let mut lines: BTreeMap<(EndpointId, InternalId), Vec<Notification>> = BTreeMap::new();
        for n in claimed {
            lines
                .entry((n.endpoint.clone(), n.payment))
                .or_default()
                .push(n);
        }
        let attempts: Vec<(AttemptOutcome, EndpointId, Health)> =
            futures_util::stream::iter(lines.into_values())
                .map(|mut line| {
                    line.sort_by_key(|n| (n.sequence, n.id));
                    let endpoints = &endpoints;
                    async move {
                        let mut done = Vec::with_capacity(line.len());
                        for n in line {
                            let endpoint = endpoints.get(&n.endpoint);
                            done.push(self.attempt(n, endpoint).await);
                        }
                        done
                    }
                })
                .buffer_unordered(self.config.concurrency.get())
                .flat_map(futures_util::stream::iter)
                .collect()
                .await;
        let outcomes: Vec<AttemptOutcome> = attempts.iter().map(|(o, ..)| o.clone()).collect();
        let writes = self.store.record_attempts(&outcomes, until).await?;
        let mut health: BTreeMap<EndpointId, Vec<Health>> = BTreeMap::new();
        for ((outcome, endpoint, h), write) in attempts.into_iter().zip(writes) {
            if write == LeaseWrite::LeaseLost {
                report.lease_lost += 1;
                count("lease_lost");
                continue;
            }
            let label = match outcome.next {
                AfterAttempt::Delivered => {
                    report.delivered += 1;
                    "delivered"
                }
                AfterAttempt::RetryAt(_) => {
                    report.retried += 1;
                    "retry"
                }
                AfterAttempt::GiveUp => {
                    report.failed += 1;
                    "failed"
                }
                AfterAttempt::Skip => {
                    report.skipped += 1;
                    "skipped"
                }
            };
            count(label);
            health.entry(endpoint).or_default().push(h);
        }
        for (id, seen) in health {
            if let Some(e) = endpoints.get(&id) {
                report.endpoints_disabled += usize::from(self.keep_health(e, &seen).await?);
            }
        }
        Ok(report)
    }

    /// Sends one notification (or skips it) and says what comes next.
    async fn attempt(
        &self,
        n: Notification,
        endpoint: Option<&Endpoint>,
    ) -> (AttemptOutcome, EndpointId, Health) {
        let Some(endpoint) = endpoint.filter(|e| e.is_enabled()) else {
            let outcome = AttemptOutcome {
                attempt: None,
                notification: n.id,
                next: AfterAttempt::Skip,
            };
            return (outcome, n.endpoint, Health::Untouched);
        };
        let at = self.clock.now();
        let headers = super::sign::headers(
            endpoint.secrets.expose(),
            &n.message_id,
            at,
            n.body.as_bytes(),
        );
        let notice = OutboundNotice {
            url: endpoint.url.clone(),
            headers,
            body: n.body.clone().into_bytes(),
        };
        let sent = self.sender.send(&notice).await;
        let number = n.attempts + 1;
        let (next, health) = next_after(&sent, &n, at, &self.config);
        let attempt = attempt_record(&n, number, at, &sent);
        let outcome = AttemptOutcome {
            attempt: Some(attempt),
            notification: n.id,
            next,
        };
        (outcome, n.endpoint, health)
    }

    /// Clears or starts an endpoint's failing streak, and disables it when it answered
    /// 410 or has failed for longer than `disable_after`. Answers whether it disabled it.
    async fn keep_health(&self, e: &Endpoint, seen: &[Health]) -> Result<bool, RepositoryError> {
        let now = self.clock.now();
        let reason = if seen.contains(&Health::Gone) {
            Some("gone")
        } else if seen.contains(&Health::Good) {
            if e.failing_since.is_some() {
                self.store.set_endpoint_failing(&e.id, None).await?;
            }
            None
        } else if seen.contains(&Health::Bad) {
            match e.failing_since {
                None => {
                    self.store.set_endpoint_failing(&e.id, Some(now)).await?;
                    None
                }
                Some(since) if now.since(since) >= self.config.disable_after => Some("failing"),
                Some(_) => None,
            }
        } else {
            None
        };
        let Some(reason) = reason else {
            return Ok(false);
        };
        let disabled = Disabled {
            reason: reason.to_owned(),
            at: now,
        };
        let done = self.store.disable_endpoint(&e.id, &disabled).await?;
        if done {
            tracing::warn!(endpoint = %e.id, client = %e.client, reason, "endpoint disabled");
            metrics::counter!("ivpay_notify_endpoints_disabled_total", "reason" => reason)
                .increment(1);
            self.reload_directory().await?;
        }
        Ok(done)
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("ivpay_notifications_total", "outcome" => outcome).increment(1);
}

/// What an attempt's report leads to.
fn next_after(
    sent: &SendReport,
    n: &Notification,
    at: Timestamp,
    config: &NotifyConfig,
) -> (AfterAttempt, Health) {
    if sent.is_delivered() {
        return (AfterAttempt::Delivered, Health::Good);
    }
    if sent.is_gone() {
        return (AfterAttempt::Skip, Health::Gone);
    }
    let round = usize::try_from(n.round_attempts).unwrap_or(usize::MAX);
    match config.schedule.get(round) {
        Some(wait) => {
            let wait = jittered(*wait, n, config.jitter_percent);
            (AfterAttempt::RetryAt(at + wait), Health::Bad)
        }
        None => (AfterAttempt::GiveUp, Health::Bad),
    }
}

/// `wait` moved by up to `percent` either way, by an amount fixed by the notification and
/// the attempt (so a test can check the bounds, and two notifications spread apart).
/// Rounded up to whole seconds, never below one second.
fn jittered(wait: Duration, n: &Notification, percent: u8) -> Duration {
    let seed = n.id.as_uuid().as_u128() ^ (u128::from(n.attempts) << 64);
    // Spread over [-percent, +percent] in thousandths of the wait.
    let span = u128::from(percent) * 20 + 1;
    let offset = i128::try_from(seed % span).unwrap_or(0) - i128::from(percent) * 10;
    let millis = i128::try_from(wait.as_millis()).unwrap_or(i128::MAX);
    let moved = millis + millis * offset / 1000;
    let secs = u64::try_from((moved + 999) / 1000).unwrap_or(1).max(1);
    Duration::from_secs(secs)
}

/// The attempt as the log keeps it.
fn attempt_record(
    n: &Notification,
    number: u32,
    at: Timestamp,
    sent: &SendReport,
) -> DeliveryAttempt {
    let latency_ms = u64::try_from(sent.latency.as_millis()).unwrap_or(u64::MAX);
    let (status, excerpt, error) = match &sent.outcome {
        SendOutcome::Answered { status, excerpt } => (Some(*status), Some(excerpt.clone()), None),
        SendOutcome::Refused { reason } => (None, None, Some(format!("refused: {reason}"))),
        SendOutcome::Failed { reason, timed_out } => {
            let what = if *timed_out { "timed out" } else { "failed" };
            (None, None, Some(format!("{what}: {reason}")))
        }
    };
    DeliveryAttempt {
        notification: n.id,
        number,
        at,
        status,
        latency_ms,
        excerpt,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(round_attempts: u32, id: u128) -> Notification {
        Notification {
            id: ivpay_domain::InternalId::from_uuid(uuid::Uuid::from_u128(id)),
            message_id: "msg_1".into(),
            endpoint: "ep".parse().expect("id"),
            client: "shop".parse().expect("client"),
            payment: ivpay_domain::InternalId::from_uuid(uuid::Uuid::from_u128(1)),
            kind: ivpay_domain::NoticeType::Paid,
            sequence: 3,
            body: "{}".into(),
            created_at: Timestamp::from_unix_seconds(0),
            state: ivpay_ports::DeliveryState::Pending,
            attempts: round_attempts,
            round_attempts,
            next_attempt_at: None,
            last_status: None,
            last_error: None,
            delivered_at: None,
        }
    }

    fn answered(status: u16) -> SendReport {
        SendReport {
            outcome: SendOutcome::Answered {
                status,
                excerpt: String::new(),
            },
            latency: Duration::from_millis(3),
        }
    }

    #[test]
    fn a_2xx_delivers_a_410_skips_and_other_answers_follow_the_schedule_then_give_up() {
        let config = NotifyConfig::default();
        let at = Timestamp::from_unix_seconds(1_000);
        let first = notification(0, 7);
        assert_eq!(
            next_after(&answered(204), &first, at, &config).0,
            AfterAttempt::Delivered
        );
        assert_eq!(
            next_after(&answered(410), &first, at, &config),
            (AfterAttempt::Skip, Health::Gone)
        );
        for (round, wait) in config.schedule.iter().enumerate() {
            let n = notification(u32::try_from(round).expect("small"), 7);
            let AfterAttempt::RetryAt(t) = next_after(&answered(500), &n, at, &config).0 else {
                panic!("round {round} retries");
            };
            let got = t.since(at).as_secs_f64();
            let want = wait.as_secs_f64();
            assert!(
                got >= (want * 0.9).floor() && got <= (want * 1.1).ceil(),
                "round {round}: waited {got}s for {want}s"
            );
        }
        let last = notification(u32::try_from(config.schedule.len()).expect("small"), 7);
        assert_eq!(
            next_after(&answered(500), &last, at, &config).0,
            AfterAttempt::GiveUp
        );
    }

    #[test]
    fn jitter_spreads_notifications_apart_within_its_bounds() {
        let wait = Duration::from_secs(3600);
        let waits: BTreeSet<u64> = (0..50)
            .map(|i| jittered(wait, &notification(1, i * 7919), 10).as_secs())
            .collect();
        assert!(waits.len() > 10, "spread: {waits:?}");
        assert!(waits.iter().all(|w| (3240..=3960).contains(w)), "{waits:?}");
    }
}
