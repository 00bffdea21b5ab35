//! The sandbox's state: merchants, the payment book, the fault plan, the clock and the
//! webhook queues, behind one [`Sandbox`] handle. Every operation that reads or changes
//! them is a method here, so locking, expiry and webhook ordering live in one place; the
//! route handlers only translate HTTP to these methods and back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use ivpay_domain::{PaymentStatus, Timestamp};

use crate::clock::SandboxClock;
use crate::config::{MerchantConfig, SandboxConfig};
use crate::error::{ControlError, SandboxError};
use crate::fault::{FaultCounts, FaultInjector, FaultPlan, HttpFault, HttpRoute};
use crate::lock::{lock, read, write};
use crate::payment::{Change, ChangeOutcome, NewPayment, PaymentBook, PaymentSnapshot, Record};
use crate::webhook::{DeliveryAttempt, Dispatcher};

/// A stateful IVPAY simulator. Cheap to clone: clones share one state.
///
/// Build one with [`Sandbox::new`] to nest its [`router`](Sandbox::router) into another
/// server, or start one on its own port with [`Sandbox::spawn`]. Either way, the methods
/// here steer it and read its truth, exactly like the `/sandbox/...` control API.
///
/// ```
/// # async fn demo() -> Result<(), ivpay_sandbox::SandboxError> {
/// use ivpay_sandbox::{Sandbox, SandboxConfig};
///
/// let sandbox = Sandbox::new(SandboxConfig::default())?;
/// let app = axum::Router::new().nest("/ivpay", sandbox.router());
/// # drop(app);
/// assert!(sandbox.payments().is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

/// Shows the shape, never the merchant keys.
impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("prefix", &self.inner.prefix)
            .field("merchants", &read(&self.inner.merchants).len())
            .field("payments", &lock(&self.inner.book).count())
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

struct Inner {
    prefix: String,
    public_url: Option<String>,
    payment_timeout: Duration,
    create_status: StatusCode,
    unknown_payment_status: StatusCode,
    clock: SandboxClock,
    /// API key -> webhook URL.
    merchants: RwLock<HashMap<Arc<str>, Option<String>>>,
    book: Mutex<PaymentBook>,
    faults: FaultInjector,
    webhooks: Dispatcher,
    /// The latest `GET /payment/{id}` answered, oldest first, bounded like the delivery
    /// log.
    reads: Mutex<std::collections::VecDeque<PaymentRead>>,
    reads_capacity: usize,
    forget_after: Option<Duration>,
}

/// One `GET /payment/{id}` the sandbox answered (found or not): who asked about what,
/// and when, on the real clock (the sandbox's own clock may be manual).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRead {
    /// The id asked about.
    pub payment_id: String,
    /// When the request was handled.
    pub at: std::time::Instant,
}

impl Sandbox {
    /// Builds a sandbox and starts its background work (timeout sweeper, webhook
    /// queues) on the current Tokio runtime. They stop when the last clone is dropped.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Config`] for an invalid configuration, [`SandboxError::NoRuntime`]
    /// outside a Tokio runtime, [`SandboxError::Client`] or [`SandboxError::Tls`] if the
    /// webhook client cannot be built.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SandboxError::NoRuntime);
        }
        let webhooks = Dispatcher::start(
            config.webhooks.clone(),
            config.clock.clone(),
            config.delivery_log_capacity,
        )?;
        let merchants = config
            .merchants
            .into_iter()
            .map(|m| (Arc::from(m.api_key), m.webhook_url))
            .collect();
        let inner = Arc::new(Inner {
            prefix: config.prefix,
            public_url: config
                .public_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            payment_timeout: config.payment_timeout,
            create_status: config.create_status,
            unknown_payment_status: config.unknown_payment_status,
            clock: config.clock.clone(),
            merchants: RwLock::new(merchants),
            book: Mutex::new(PaymentBook::default()),
            faults: FaultInjector::new(config.faults),
            webhooks,
            reads: Mutex::new(std::collections::VecDeque::new()),
            reads_capacity: config.delivery_log_capacity,
            forget_after: config.forget_after,
        });
        tokio::spawn(sweep(
            Arc::downgrade(&inner),
            config.clock,
            config.sweep_interval,
        ));
        Ok(Self { inner })
    }

    /// The configured path prefix (empty or `/...`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The clock the sandbox reads.
    pub fn clock(&self) -> &SandboxClock {
        &self.inner.clock
    }

    /// Moves the clock forward and expires, at once, every payment whose window has
    /// passed (webhooks included), without waiting for the sweeper.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.clock.advance(by);
        self.inner.expire_due();
    }

    /// Every payment with its status, oldest first: the truth a ledger checker compares
    /// a service's records against. Expired payments are reported as TIMEOUT.
    pub fn payments(&self) -> Vec<PaymentSnapshot> {
        self.inner.expire_due();
        lock(&self.inner.book).list()
    }

    /// One payment, if it exists.
    pub fn payment(&self, payment_id: &str) -> Option<PaymentSnapshot> {
        self.inner
            .read_payment(payment_id)
            .map(|(snapshot, _)| snapshot)
    }

    /// Sets a payment's status as IVPAY would move it, and sends the webhook. Moves the
    /// state machine refuses (PAID -> TIMEOUT, PAID -> PENDING) are applied only with
    /// `force`, to simulate an upstream that misbehaves.
    ///
    /// # Errors
    ///
    /// [`ControlError::UnknownPayment`], or [`ControlError::Refused`] without `force`.
    pub fn set_status(
        &self,
        payment_id: &str,
        status: PaymentStatus,
        force: bool,
    ) -> Result<ChangeOutcome, ControlError> {
        self.inner.change(payment_id, status, force, None)
    }

    /// Sends the webhook for the payment's current status again (a new event, subject to
    /// the webhook faults). `None` when its merchant has no webhook URL.
    ///
    /// # Errors
    ///
    /// [`ControlError::UnknownPayment`].
    pub fn redeliver(&self, payment_id: &str) -> Result<Option<u64>, ControlError> {
        let book = lock(&self.inner.book);
        let record = book
            .get(payment_id)
            .ok_or_else(|| ControlError::UnknownPayment(payment_id.to_owned()))?;
        Ok(self.inner.announce(&Change::of(record)))
    }

    /// The latest `GET /payment/{id}` requests answered (past the key check), oldest
    /// first, bounded by the delivery log's capacity.
    pub fn reads(&self) -> Vec<PaymentRead> {
        lock(&self.inner.reads).iter().cloned().collect()
    }

    /// Records a `GET /payment/{id}` handled now.
    pub(crate) fn record_read(&self, payment_id: &str) {
        let mut reads = lock(&self.inner.reads);
        if reads.len() >= self.inner.reads_capacity {
            reads.pop_front();
        }
        reads.push_back(PaymentRead {
            payment_id: payment_id.to_owned(),
            at: std::time::Instant::now(),
        });
    }

    /// Every logged webhook attempt, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.inner.webhooks.deliveries()
    }

    /// Empties the delivery log.
    pub fn clear_deliveries(&self) {
        self.inner.webhooks.clear();
    }

    /// Waits until `done` holds for the delivery log, or `timeout` (real time) passes.
    /// Returns the log that satisfied it, or `None` on timeout.
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        done: impl Fn(&[DeliveryAttempt]) -> bool,
    ) -> Option<Vec<DeliveryAttempt>> {
        self.inner.webhooks.wait_for(timeout, done).await
    }

    /// Replaces the fault plan (and reseeds its generator).
    ///
    /// # Errors
    ///
    /// [`ControlError::Config`] when the plan fails [`FaultPlan::validate`].
    pub fn set_faults(&self, plan: FaultPlan) -> Result<(), ControlError> {
        plan.validate()?;
        self.inner.faults.install(plan);
        Ok(())
    }

    /// The fault plan as it stands: scripts show the faults not yet used.
    pub fn faults(&self) -> FaultPlan {
        self.inner.faults.plan()
    }

    /// How many faults have been applied since the sandbox started, per route (what a
    /// chaos run injected); new plans keep counting.
    pub fn faults_injected(&self) -> FaultCounts {
        self.inner.faults.injected()
    }

    /// Adds a merchant key, or changes the webhook URL of an existing one. Typical use:
    /// start the sandbox, start the service against it, then point the key's webhooks at
    /// the service's port.
    ///
    /// # Errors
    ///
    /// [`ControlError::Config`] for an empty key or an invalid URL.
    pub fn set_merchant(&self, merchant: MerchantConfig) -> Result<(), ControlError> {
        merchant.validate()?;
        write(&self.inner.merchants).insert(Arc::from(merchant.api_key), merchant.webhook_url);
        Ok(())
    }

    // ---- for the route handlers ----

    /// The configured base of `payment_url`, without a trailing slash.
    pub(crate) fn public_url(&self) -> Option<&str> {
        self.inner.public_url.as_deref()
    }

    /// The status a successful create answers with.
    pub(crate) fn create_status(&self) -> StatusCode {
        self.inner.create_status
    }

    /// The status a get of an unknown payment answers with.
    pub(crate) fn unknown_payment_status(&self) -> StatusCode {
        self.inner.unknown_payment_status
    }

    /// The fault for the next request on `route`, if the plan calls for one.
    pub(crate) fn next_http_fault(&self, route: HttpRoute) -> Option<HttpFault> {
        self.inner.faults.next_http(route)
    }

    /// The configured merchant key equal to `api_key`, shared with the records so
    /// webhooks can echo it.
    pub(crate) fn merchant_key(&self, api_key: &str) -> Option<Arc<str>> {
        read(&self.inner.merchants)
            .get_key_value(api_key)
            .map(|(k, _)| Arc::clone(k))
    }

    /// Records a new CREATED payment for the merchant `api_key` under a fresh id, and
    /// queues its webhook.
    pub(crate) fn create(&self, order: NewPayment, api_key: Arc<str>) -> PaymentSnapshot {
        let inner = &self.inner;
        let now = inner.clock.now_millis();
        let timeout = i64::try_from(inner.payment_timeout.as_millis()).unwrap_or(i64::MAX);
        let deadline = now.saturating_add(timeout);
        let created_at = Timestamp::from_unix_seconds(now.div_euclid(1000));
        let mut book = lock(&inner.book);
        let payment_id = loop {
            let candidate = format!("{:032x}", fastrand::u128(..));
            if !book.contains(&candidate) {
                break candidate;
            }
        };
        let snapshot = PaymentSnapshot {
            payment_id,
            foreign_id: order.foreign_id,
            status: PaymentStatus::Created,
            amount_fiat: order.money.amount().to_string(),
            currency_fiat: order.money.currency().code().to_owned(),
            created_at,
            processed_at: created_at,
            expires_at: Timestamp::from_unix_seconds(deadline.div_euclid(1000)),
            coin: None,
            url_success: order.url_success,
            url_failed: order.url_failed,
            received: None,
        };
        let record = Record::new(snapshot.clone(), api_key, deadline);
        inner.announce(&Change::of(&record));
        book.insert(record);
        snapshot
    }

    /// The payment, if it exists and belongs to the merchant `api_key`: another
    /// merchant's payment does not exist for this key.
    pub(crate) fn merchant_payment(
        &self,
        payment_id: &str,
        api_key: &str,
    ) -> Option<PaymentSnapshot> {
        self.inner
            .read_payment(payment_id)
            .filter(|(_, owner)| **owner == *api_key)
            .map(|(snapshot, _)| snapshot)
    }

    /// The payment and the whole seconds left until it times out (0 once it has), by the
    /// sandbox's clock: what the checkout page counts down from.
    pub(crate) fn checkout_view(&self, payment_id: &str) -> Option<(PaymentSnapshot, i64)> {
        let (snapshot, _) = self.inner.read_payment(payment_id)?;
        // A final payment has no time left, whatever its window said: the page hides its
        // countdown and a poller sees 0.
        let left = if snapshot.status.is_final() {
            0
        } else {
            let now = self.inner.clock.now_millis().div_euclid(1000);
            snapshot
                .expires_at
                .unix_seconds()
                .saturating_sub(now)
                .max(0)
        };
        Some((snapshot, left))
    }

    /// The customer sends less than asked (half the amount, rounded down to its
    /// decimals): recorded as `received`; the payment stays PENDING, so it times out
    /// unless paid in full. Only a PENDING payment (a coin chosen) can be underpaid.
    ///
    /// # Errors
    ///
    /// [`ControlError::UnknownPayment`]; [`ControlError::NotPending`].
    pub(crate) fn underpay_from_checkout(&self, payment_id: &str) -> Result<String, ControlError> {
        let now = self.inner.clock.now_millis();
        let mut book = lock(&self.inner.book);
        if let Some(change) = book.expire_one(payment_id, now) {
            self.inner.announce(&change);
        }
        let record = book
            .get_mut(payment_id)
            .ok_or_else(|| ControlError::UnknownPayment(payment_id.to_owned()))?;
        let status = record.snapshot.status;
        if status != PaymentStatus::Pending {
            return Err(ControlError::NotPending(status));
        }
        let received = half(&record.snapshot.amount_fiat);
        record.snapshot.received = Some(received.clone());
        Ok(received)
    }

    /// A status change the customer made on the checkout page; `coin` is their choice.
    pub(crate) fn change_from_checkout(
        &self,
        payment_id: &str,
        status: PaymentStatus,
        coin: Option<String>,
    ) -> Result<ChangeOutcome, ControlError> {
        self.inner.change(payment_id, status, false, coin)
    }
}

impl Inner {
    fn webhook_url(&self, api_key: &str) -> Option<String> {
        read(&self.merchants).get(api_key).cloned().flatten()
    }

    /// Queues the webhook for a change, if the merchant has a URL. Called with the book
    /// locked, so webhooks are queued in the order the changes happened.
    fn announce(&self, change: &Change) -> Option<u64> {
        let url = self.webhook_url(&change.api_key)?;
        let fault = self.faults.next_webhook();
        Some(self.webhooks.emit(change, &url, fault))
    }

    fn expire_due(&self) {
        let now = self.clock.now_millis();
        let mut book = lock(&self.book);
        for change in book.expire_due(now) {
            self.announce(&change);
        }
        if let Some(after) = self.forget_after {
            let keep = i64::try_from(after.as_secs()).unwrap_or(i64::MAX);
            let forgotten = book.forget_final_before(now.div_euclid(1000).saturating_sub(keep));
            if forgotten > 0 {
                tracing::debug!(forgotten, "sandbox forgot old final payments");
            }
        }
    }

    /// The payment, expired first if its window has passed; with its merchant's key.
    fn read_payment(&self, payment_id: &str) -> Option<(PaymentSnapshot, Arc<str>)> {
        let now = self.clock.now_millis();
        let mut book = lock(&self.book);
        if let Some(change) = book.expire_one(payment_id, now) {
            self.announce(&change);
        }
        book.get(payment_id)
            .map(|r| (r.snapshot.clone(), Arc::clone(&r.api_key)))
    }

    fn change(
        &self,
        payment_id: &str,
        status: PaymentStatus,
        force: bool,
        coin: Option<String>,
    ) -> Result<ChangeOutcome, ControlError> {
        let now = self.clock.now_millis();
        let mut book = lock(&self.book);
        let changed = book.change(payment_id, status, force, now, coin);
        for change in &changed.changes {
            self.announce(change);
        }
        changed.result
    }
}

/// Expires payments on a timer, and at once when the clock is advanced.
async fn sweep(inner: Weak<Inner>, clock: SandboxClock, interval: Duration) {
    loop {
        let advanced = clock.advanced();
        tokio::pin!(advanced);
        advanced.as_mut().enable();
        match inner.upgrade() {
            Some(inner) => inner.expire_due(),
            None => return,
        }
        tokio::select! {
            () = &mut advanced => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Half of `amount` (decimal text), rounded down to its own decimals: what an underpaying
/// customer sent. Exact: decimal arithmetic, never a float.
fn half(amount: &str) -> String {
    use rust_decimal::{Decimal, RoundingStrategy};
    match amount.parse::<Decimal>() {
        Ok(a) => (a / Decimal::TWO)
            .round_dp_with_strategy(a.scale(), RoundingStrategy::ToZero)
            .to_string(),
        // The sandbox stored it canonical; nothing sensible to halve otherwise.
        Err(_) => "0".to_owned(),
    }
}

#[cfg(test)]
mod half_tests {
    #[test]
    fn half_keeps_the_decimals_and_rounds_down() {
        assert_eq!(super::half("12.50"), "6.25");
        assert_eq!(super::half("0.05"), "0.02");
        assert_eq!(super::half("7"), "3");
        assert_eq!(super::half("1.000"), "0.500");
    }
}
