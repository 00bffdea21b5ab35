//! Tunables of the use cases, with defaults that suit a single service in front of IVPAY.

use std::time::Duration;

use ivpay_domain::{PaymentId, RedirectUrl};

/// How the service waits, retries and schedules. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// How long an idempotency key is remembered (at least 24 h is advised).
    pub idempotency_ttl: Duration,
    /// How long a repeated request waits for the first request with its key to finish
    /// before answering "in progress".
    pub in_flight_wait: Duration,
    /// How often a waiting request looks again.
    pub in_flight_poll: Duration,
    /// What a repeated request is told to wait when the first one is still running.
    pub in_flight_retry_after: Duration,
    /// Delay before the first reconciliation check of a new payment, and the base of the
    /// exponential back-off.
    pub reconcile_base: Duration,
    /// Longest delay between two checks of one payment.
    pub reconcile_max: Duration,
    /// Payments claimed per reconciliation pass. A full batch is followed at once by
    /// another pass, so a small batch costs no throughput and keeps the lease short.
    pub reconcile_batch: u32,
    /// The slowest IVPAY `GET` can take, retries included (the adapter's retry window
    /// plus one attempt's timeout). A pass starts a claimed payment's check only while
    /// this much of its lease is left, and hands the rest of its batch back at once.
    pub longest_get: Duration,
    /// How long a claim holds a payment before another worker may take it: one
    /// [`ServiceConfig::longest_get`] and a margin for the writes around it, by
    /// [`ServiceConfig::lease_for`]. It does not grow with the batch: a pass that runs
    /// out of lease hands its unstarted payments back (so a slow IVPAY slows a pass, and
    /// a process killed mid-pass holds its payments for this long, not for a batch of
    /// the slowest GETs). Should a check outlast it anyway, its late writes are refused
    /// ([`ivpay_ports::LeaseWrite::LeaseLost`]) rather than overwrite the next claimer's.
    pub reconcile_lease: Duration,
    /// How often a status update is retried after losing a compare-and-set.
    pub max_conflict_retries: u32,
    /// An intent still *initiated* this long after it was recorded belongs to a request
    /// that died (crash, kill) before IVPAY's answer was stored; the reconciler settles it
    /// as *unknown*. Must exceed the longest create call, retries included.
    pub stale_intent_after: Duration,
    /// How long a webhook being confirmed is kept from other workers. A webhook whose
    /// process died mid-confirmation is picked up by the reconciler after this long.
    pub inbox_lease: Duration,
    /// How many inbox webhooks a pass claims and confirms with IVPAY at once (one
    /// payment's webhooks are still confirmed one after the other).
    pub inbox_concurrency: std::num::NonZeroUsize,
    /// How many times an inbox webhook is tried while IVPAY cannot confirm it (its `GET`
    /// fails: unreachable, 5xx, unreadable) before it is given up: recorded as an
    /// *unconfirmed* event with its body and removed from the inbox. The default, 50,
    /// lasts about two days at the default back-off (capped at an hour between tries).
    pub inbox_max_attempts: std::num::NonZeroU32,
    /// How long a webhook for an upstream id we hold no row for stays in the inbox,
    /// retried, waiting for its row to become known (IVPAY's early CREATED racing our
    /// save, or an *unknown* row linked later). After this long it is recorded as
    /// `unknown_payment` and removed.
    pub unknown_webhook_keep: Duration,
    /// The `payment_url` given to a row linked without IVPAY's create answer (IVPAY's
    /// `GET` has no `payment_url`).
    pub payment_url_template: PaymentUrlTemplate,
    /// The budget of calls toward IVPAY that refreshes and webhook confirmations may
    /// cause: per account (both together) and per client (its refreshes). Over budget, a
    /// refresh answers the stored state ([`ivpay_ports::Refresh::Skipped`]) and a webhook
    /// waits in the inbox a second. Default: 50 a second per account (bursts of 100), 5 a
    /// second per client (bursts of 10).
    pub upstream_budget: crate::BudgetConfig,
    /// How many times the answer of a create is written before giving up while storage is
    /// unavailable (the first write included). IVPAY has the payment by then, so a short
    /// storage hiccup must not lose it.
    pub outcome_save_attempts: u32,
    /// Wait before the second write of a create's answer; it doubles after each attempt.
    pub outcome_save_backoff: Duration,
    /// The longest `Retry-After` from IVPAY the service honours: passed on to a client, or
    /// waited before the next reconciliation check. A longer one is cut to this.
    pub max_retry_after: Duration,
    /// Fault points armed for crash and stall tests; none by default.
    pub faults: crate::fault::FaultPoints,
}

/// A `payment_url` with `{payment_id}` where IVPAY's id goes, checked when made so that
/// every valid [`PaymentId`] renders to a valid [`RedirectUrl`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentUrlTemplate(String);

impl PaymentUrlTemplate {
    /// The placeholder replaced by IVPAY's id.
    pub const PLACEHOLDER: &'static str = "{payment_id}";
    /// IVPAY's documented payment page.
    pub const DEFAULT: &'static str = "https://pay.ivpay.io/payment/{payment_id}";

    /// Checks a template: it holds [`Self::PLACEHOLDER`] and renders to a valid URL even
    /// for the longest payment id.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong.
    pub fn new(template: &str) -> Result<Self, String> {
        if !template.contains(Self::PLACEHOLDER) {
            return Err(format!("must contain {}", Self::PLACEHOLDER));
        }
        let longest = "a".repeat(PaymentId::MAX_LEN);
        template
            .replace(Self::PLACEHOLDER, &longest)
            .parse::<RedirectUrl>()
            .map_err(|e| e.to_string())?;
        Ok(Self(template.to_owned()))
    }

    /// The payment page of `id`.
    pub fn render(&self, id: &PaymentId) -> RedirectUrl {
        // An id is at most MAX_LEN letters, digits, '-' and '_', all valid in a URL path,
        // and `new` checked the longest one.
        self.0
            .replace(Self::PLACEHOLDER, id.as_str())
            .parse()
            .expect("a checked template renders every payment id to a URL")
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PaymentUrlTemplate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::new(s)
    }
}

impl Default for PaymentUrlTemplate {
    fn default() -> Self {
        Self::new(Self::DEFAULT).expect("IVPAY's documented payment page is a valid template")
    }
}

/// The slowest IVPAY `GET` with the HTTP adapter's defaults: retries start within 10 s of
/// the first attempt, and the last one may take its full 15 s.
const DEFAULT_LONGEST_GET: Duration = Duration::from_secs(25);

/// What a lease allows beyond its call: the storage writes around it.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// Payments claimed per reconciliation pass by default.
const DEFAULT_BATCH: u32 = 16;

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            idempotency_ttl: Duration::from_secs(24 * 3600),
            in_flight_wait: Duration::from_secs(20),
            in_flight_poll: Duration::from_millis(25),
            in_flight_retry_after: Duration::from_secs(1),
            reconcile_base: Duration::from_secs(30),
            reconcile_max: Duration::from_secs(3600),
            reconcile_batch: DEFAULT_BATCH,
            longest_get: DEFAULT_LONGEST_GET,
            // 25 s + 10 s.
            reconcile_lease: Self::lease_for(DEFAULT_LONGEST_GET),
            max_conflict_retries: 16,
            stale_intent_after: Duration::from_secs(300),
            inbox_lease: Duration::from_secs(60),
            inbox_concurrency: const { std::num::NonZeroUsize::new(8).expect("not zero") },
            inbox_max_attempts: const { std::num::NonZeroU32::new(50).expect("not zero") },
            unknown_webhook_keep: Duration::from_secs(4 * 3600),
            payment_url_template: PaymentUrlTemplate::default(),
            upstream_budget: crate::BudgetConfig {
                per_account: Some(crate::Rate {
                    per_second: const { std::num::NonZeroU32::new(50).expect("not zero") },
                    burst: const { std::num::NonZeroU32::new(100).expect("not zero") },
                }),
                per_client: Some(crate::Rate {
                    per_second: const { std::num::NonZeroU32::new(5).expect("not zero") },
                    burst: const { std::num::NonZeroU32::new(10).expect("not zero") },
                }),
            },
            outcome_save_attempts: 4,
            outcome_save_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(60),
            faults: crate::fault::FaultPoints::default(),
        }
    }
}

impl ServiceConfig {
    /// IVPAY's `Retry-After`, cut to [`ServiceConfig::max_retry_after`].
    pub fn capped_retry_after(&self, asked: Duration) -> Duration {
        asked.min(self.max_retry_after)
    }

    /// The lease a claim needs so that one upstream call taking at most `longest_call`
    /// (IVPAY's `GET` with its retries) and the writes around it fit: `longest_call`
    /// plus 10 s. The rule behind [`ServiceConfig::reconcile_lease`].
    pub fn lease_for(longest_call: Duration) -> Duration {
        longest_call.saturating_add(LEASE_MARGIN)
    }

    /// Delay before check number `attempt` (1-based) of a payment: `base · 2^(attempt-1)`,
    /// capped at `max`, then spread by up to ±20 % with a jitter derived from `salt` (the
    /// payment id), so payments created together do not hit IVPAY together.
    pub fn reconcile_delay(&self, attempt: u32, salt: u128) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let raw = self
            .reconcile_base
            .saturating_mul(1u32 << exp)
            .min(self.reconcile_max);
        // Deterministic jitter in [-20 %, +20 %]: a cheap hash of the salt and the attempt.
        let mixed = (salt ^ u128::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0x2545_F491_4F6C_DD1D);
        let permille = (mixed >> 64) as u64 % 401; // 0..=400
        let factor = 800 + permille; // 800..=1200 per mille
        let jittered = raw.as_millis().saturating_mul(u128::from(factor)) / 1000;
        let capped = jittered.min(self.reconcile_max.as_millis() * 12 / 10);
        Duration::from_millis(u64::try_from(capped).unwrap_or(u64::MAX)).max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_delay_grows_then_caps_within_jitter() {
        let c = ServiceConfig::default();
        let within = |d: Duration, nominal: u64| {
            let ms = d.as_millis() as u64;
            ms >= nominal * 800 && ms <= nominal * 1200
        };
        for salt in [0u128, 1, 7, u128::MAX] {
            assert!(within(c.reconcile_delay(1, salt), 30), "{salt}");
            assert!(within(c.reconcile_delay(2, salt), 60));
            assert!(within(c.reconcile_delay(4, salt), 240));
            assert!(within(c.reconcile_delay(40, salt), 3600));
        }
    }

    #[test]
    fn the_default_lease_covers_the_slowest_get_and_not_a_whole_batch() {
        let c = ServiceConfig::default();
        assert!(c.reconcile_lease > c.longest_get);
        assert!(
            c.reconcile_lease < c.longest_get * 2,
            "{:?}",
            c.reconcile_lease
        );
        assert_eq!(
            ServiceConfig::lease_for(Duration::from_secs(12)),
            Duration::from_secs(22)
        );
    }

    #[test]
    fn a_payment_url_template_needs_its_placeholder_and_a_url() {
        let t = PaymentUrlTemplate::default();
        let id: PaymentId = "6b577835afbefe60335b6e5cd04410a9".parse().expect("id");
        assert_eq!(
            t.render(&id).as_str(),
            "https://pay.ivpay.io/payment/6b577835afbefe60335b6e5cd04410a9"
        );
        assert!(PaymentUrlTemplate::new("https://pay.example/").is_err());
        assert!(PaymentUrlTemplate::new("ftp://x/{payment_id}").is_err());
        assert!(PaymentUrlTemplate::new("https://pay.example/p?id={payment_id}").is_ok());
    }

    #[test]
    fn retry_after_from_ivpay_is_capped() {
        let c = ServiceConfig::default();
        assert_eq!(
            c.capped_retry_after(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert_eq!(
            c.capped_retry_after(Duration::from_secs(86_400)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn jitter_spreads_payments() {
        let c = ServiceConfig::default();
        let delays: std::collections::HashSet<_> = (0..50u128)
            .map(|salt| c.reconcile_delay(3, salt.wrapping_mul(0x1234_5678_9abc)))
            .collect();
        assert!(delays.len() > 10, "only {} distinct delays", delays.len());
    }
}
