//! The sandbox itself: its state, IVPAY's two routes, and the router that puts them
//! together with the checkout page and the control API.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ivpay_domain::{ForeignId, Money, PaymentStatus, RedirectUrl, Timestamp};
use serde::Serialize;

use crate::clock::SandboxClock;
use crate::config::{MerchantConfig, SandboxConfig};
use crate::error::{ControlError, SandboxError};
use crate::fault::{FaultInjector, FaultPlan, HttpFault, HttpRoute};
use crate::lock::{lock, read, write};
use crate::payment::{Change, ChangeOutcome, PaymentBook, PaymentSnapshot, Record};
use crate::webhook::{DeliveryAttempt, Dispatcher};
use crate::wire::{self, CreateRequest, CreatedData, PaymentData};
use crate::{checkout, control};

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
        });
        tokio::spawn(sweep(
            Arc::downgrade(&inner),
            config.clock,
            config.sweep_interval,
        ));
        Ok(Self { inner })
    }

    /// The routes, under the configured prefix: IVPAY's `POST /payment/create` and
    /// `GET /payment/{payment_id}`, the checkout page under `/checkout/`, and the control
    /// API under `/sandbox/`. Nest it anywhere; `payment_url` follows the path it is
    /// reached by (unless `public_url` is set).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/payment/create", post(create))
            .route("/payment/{payment_id}", get(get_payment))
            .merge(checkout::routes())
            .merge(control::routes())
            .with_state(self.clone());
        if self.inner.prefix.is_empty() {
            routes
        } else {
            Router::new().nest(&self.inner.prefix, routes)
        }
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

// ---- IVPAY's routes ----

async fn create(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &sandbox.inner;
    let fault = inner.faults.next_http(HttpRoute::Create);
    if let Some(response) = fault_before(fault.as_ref()).await {
        return response;
    }
    let Some(api_key) = authenticate(inner, &headers) else {
        return unauthorized();
    };
    if !is_json(&headers) {
        return bad_request("Content-Type must be application/json");
    }
    let request: CreateRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(&format!("invalid JSON body: {e}")),
    };
    let Validated {
        money,
        foreign_id,
        url_success,
        url_failed,
    } = match validate(request) {
        Ok(valid) => valid,
        Err(message) => return bad_request(&message),
    };

    let base = payment_base(inner, &headers, uri.path());
    let now = inner.clock.now_millis();
    let timeout = i64::try_from(inner.payment_timeout.as_millis()).unwrap_or(i64::MAX);
    let deadline = now.saturating_add(timeout);
    let created_at = Timestamp::from_unix_seconds(now.div_euclid(1000));
    let snapshot = {
        let mut book = lock(&inner.book);
        let payment_id = loop {
            let candidate = format!("{:032x}", fastrand::u128(..));
            if !book.contains(&candidate) {
                break candidate;
            }
        };
        let snapshot = PaymentSnapshot {
            payment_id,
            foreign_id,
            status: PaymentStatus::Created,
            amount_fiat: money.amount().to_string(),
            currency_fiat: money.currency().code().to_owned(),
            created_at,
            processed_at: created_at,
            expires_at: Timestamp::from_unix_seconds(deadline.div_euclid(1000)),
            coin: None,
            url_success,
            url_failed,
        };
        let record = Record::new(snapshot.clone(), api_key, deadline);
        inner.announce(&Change::of(&record));
        book.insert(record);
        snapshot
    };
    let payment_url = format!("{base}/checkout/{}", snapshot.payment_id);
    let data = CreatedData {
        payment_id: &snapshot.payment_id,
        payment_url: &payment_url,
        created_at: snapshot.created_at.unix_seconds(),
        foreign_id: snapshot.foreign_id.as_deref(),
    };
    fault_after(fault, inner.create_status, &data)
}

async fn get_payment(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let inner = &sandbox.inner;
    let fault = inner.faults.next_http(HttpRoute::Get);
    if let Some(response) = fault_before(fault.as_ref()).await {
        return response;
    }
    let Some(api_key) = authenticate(inner, &headers) else {
        return unauthorized();
    };
    // Another merchant's payment does not exist for this key.
    let Some((snapshot, _)) = inner
        .read_payment(&payment_id)
        .filter(|(_, owner)| *owner == api_key)
    else {
        return json_response(
            inner.unknown_payment_status,
            wire::failure("Payment not found"),
        );
    };
    let data = PaymentData {
        payment_id: &snapshot.payment_id,
        foreign_id: snapshot.foreign_id.as_deref(),
        processed_at: snapshot.processed_at.unix_seconds(),
        status: snapshot.status.as_str(),
    };
    fault_after(fault, StatusCode::OK, &data)
}

/// The merchant's key, shared with the record so webhooks can echo it.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Option<Arc<str>> {
    let key = headers.get("x-api-key")?.to_str().ok()?;
    read(&inner.merchants)
        .get_key_value(key)
        .map(|(k, _)| Arc::clone(k))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// An optional text field: absent and `""` both mean "not given".
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// A create request that passed the domain's checks.
struct Validated {
    money: Money,
    foreign_id: Option<String>,
    url_success: Option<String>,
    url_failed: Option<String>,
}

/// Checks the fields with the domain's parsers; the error is the 400 message.
fn validate(request: CreateRequest) -> Result<Validated, String> {
    let money =
        Money::parse(&request.amount_fiat, &request.currency_fiat).map_err(|e| e.to_string())?;
    let foreign_id = non_empty(request.foreign_id)
        .map(|text| text.parse::<ForeignId>().map(|id| id.to_string()))
        .transpose()
        .map_err(|e| format!("foreign_id: {e}"))?;
    Ok(Validated {
        money,
        foreign_id,
        url_success: parse_url("url_success", request.url_success)?,
        url_failed: parse_url("url_failed", request.url_failed)?,
    })
}

fn parse_url(field: &str, value: Option<String>) -> Result<Option<String>, String> {
    non_empty(value)
        .map(|text| {
            text.parse::<RedirectUrl>()
                .map(|url| url.as_str().to_owned())
        })
        .transpose()
        .map_err(|e| format!("{field}: {e}"))
}

/// Where checkout pages live: `public_url`, or the address and prefix this request came
/// in by (which follows any outer `nest`).
fn payment_base(inner: &Inner, headers: &HeaderMap, path: &str) -> String {
    if let Some(url) = &inner.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let prefix = path
        .strip_suffix("/payment/create")
        .unwrap_or(&inner.prefix);
    format!("http://{host}{prefix}")
}

// ---- responses and faults ----

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        wire::WRONG_AUTH.as_bytes().to_vec(),
    )
}

fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, wire::failure(message))
}

/// Faults that act before the request is handled. `Some` is the whole answer.
async fn fault_before(fault: Option<&HttpFault>) -> Option<Response> {
    match fault? {
        HttpFault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            None
        }
        HttpFault::ServerError { status } => Some(json_response(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            wire::failure("Internal server error"),
        )),
        HttpFault::Unauthorized => Some(unauthorized()),
        HttpFault::Reset | HttpFault::Garbage | HttpFault::Truncated | HttpFault::TrailingComma => {
            None
        }
    }
}

/// The success answer, spoiled by the faults that act after handling.
fn fault_after(fault: Option<HttpFault>, status: StatusCode, data: &impl Serialize) -> Response {
    match fault {
        Some(HttpFault::Reset) => reset(),
        Some(HttpFault::Garbage) => json_response(
            StatusCode::OK,
            b"\xff\xfe<html>502 Bad Gateway</html>\x00{\"success\":".to_vec(),
        ),
        Some(HttpFault::Truncated) => {
            let mut body = wire::success(data);
            body.truncate(body.len() / 2);
            json_response(status, body)
        }
        Some(HttpFault::TrailingComma) => {
            json_response(status, wire::success_with_trailing_comma(data))
        }
        _ => json_response(status, wire::success(data)),
    }
}

/// A response whose body fails before its first byte: hyper then closes the connection
/// without a complete answer, which the client sees as a reset.
fn reset() -> Response {
    let failing = futures_util::stream::iter([Err::<Bytes, io::Error>(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "sandbox fault: connection reset",
    ))]);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(failing),
    )
        .into_response()
}
