//! Outgoing webhooks: one per status change, sent like IVPAY sends them (POST, JSON,
//! the merchant's key in `X-API-KEY`, retried until a 200), with every attempt logged.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ivpay_domain::{PaymentStatus, Timestamp};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use crate::clock::SandboxClock;
use crate::config::WebhookPolicy;
use crate::error::{SandboxError, error_chain};
use crate::fault::WebhookFault;
use crate::lock::lock;
use crate::payment::Change;
use crate::wire::WebhookBody;

/// One attempt to deliver one webhook, as the delivery log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    /// The event: one per status change or redelivery; its attempts (and a duplicate's)
    /// share it.
    pub event_id: u64,
    /// The payment it is about.
    pub payment_id: String,
    /// The status it announces.
    pub status: PaymentStatus,
    /// 1 for the first attempt, up to `WebhookPolicy::attempts`.
    pub attempt: u32,
    /// When it was made, on the sandbox clock.
    pub at: Timestamp,
    /// Real milliseconds from the event's creation to this attempt: shows retry spacing
    /// and delays even under a manual clock.
    pub after_ms: u64,
    /// Where it went.
    pub url: String,
    /// What came back.
    pub outcome: DeliveryOutcome,
    /// The fault applied to this event, if any.
    pub fault: Option<WebhookFault>,
    /// The JSON body sent.
    pub body: String,
}

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver answered with this HTTP status; only 200 counts as delivered.
    Status {
        /// The HTTP status code.
        code: u16,
    },
    /// No answer: connection refused, reset, timeout...
    Error {
        /// What the HTTP client said.
        message: String,
    },
    /// Not sent, on purpose (the `drop` fault).
    Dropped,
}

impl DeliveryOutcome {
    /// Whether IVPAY would count this as delivered: an HTTP 200, nothing else.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Status { code: 200 })
    }
}

#[derive(Clone)]
struct Event {
    id: u64,
    payment_id: String,
    status: PaymentStatus,
    api_key: Arc<str>,
    url: String,
    body: Arc<str>,
    created: Instant,
}

struct Job {
    event: Event,
    fault: Option<WebhookFault>,
}

/// Queues webhooks and runs the workers that send them.
pub(crate) struct Dispatcher {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    shared: Arc<Shared>,
}

struct Shared {
    client: reqwest::Client,
    policy: WebhookPolicy,
    clock: SandboxClock,
    capacity: usize,
    log: Mutex<VecDeque<DeliveryAttempt>>,
    logged: Notify,
    held: Mutex<Option<Job>>,
    next_id: AtomicU64,
}

impl Dispatcher {
    /// Starts `policy.workers` delivery queues on the current runtime.
    pub(crate) fn start(
        policy: WebhookPolicy,
        clock: SandboxClock,
        capacity: usize,
    ) -> Result<Self, SandboxError> {
        let shared = Arc::new(Shared {
            client: http_client(&policy)?,
            clock,
            capacity: capacity.max(1),
            log: Mutex::new(VecDeque::new()),
            logged: Notify::new(),
            held: Mutex::new(None),
            next_id: AtomicU64::new(1),
            policy,
        });
        let queues = (0..shared.policy.workers)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_queue(Arc::clone(&shared), rx));
                tx
            })
            .collect();
        Ok(Self { queues, shared })
    }

    /// Queues the webhook for `change` to `url`; returns its event id.
    pub(crate) fn emit(&self, change: &Change, url: &str, fault: Option<WebhookFault>) -> u64 {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_string(&WebhookBody {
            payment_id: &change.payment_id,
            foreign_id: change.foreign_id.as_deref(),
            status: change.status.as_str(),
            processed_at: change.processed_at.unix_seconds(),
            network: change.network.as_deref(),
        })
        .unwrap_or_default();
        let event = Event {
            id,
            payment_id: change.payment_id.clone(),
            status: change.status,
            api_key: Arc::clone(&change.api_key),
            url: url.to_owned(),
            body: body.into(),
            created: Instant::now(),
        };
        let mut hasher = DefaultHasher::new();
        change.payment_id.hash(&mut hasher);
        let queue = usize::try_from(hasher.finish() % self.queues.len().max(1) as u64).unwrap_or(0);
        if let Some(tx) = self.queues.get(queue) {
            // A closed queue means the runtime is shutting down: nothing left to tell.
            let _ = tx.send(Job { event, fault });
        }
        id
    }

    pub(crate) fn deliveries(&self) -> Vec<DeliveryAttempt> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.shared.log).clear();
    }

    /// Waits until `done` holds for the log, or `timeout` passes.
    pub(crate) async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[DeliveryAttempt]) -> bool,
    ) -> Option<Vec<DeliveryAttempt>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.logged.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let log = self.deliveries();
            if done(&log) {
                return Some(log);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => {
                    let log = self.deliveries();
                    return done(&log).then_some(log);
                }
            }
        }
    }
}

async fn run_queue(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        shared.handle(job).await;
    }
}

impl Shared {
    async fn handle(self: &Arc<Self>, job: Job) {
        let reordered = matches!(job.fault, Some(WebhookFault::Reorder));
        match job.fault.clone() {
            Some(WebhookFault::Drop) => {
                self.record(&job.event, 1, DeliveryOutcome::Dropped, job.fault);
            }
            Some(WebhookFault::Duplicate) => {
                self.deliver(&job.event, job.fault.clone()).await;
                self.deliver(&job.event, job.fault).await;
            }
            Some(WebhookFault::Delay { ms }) => {
                let shared = Arc::clone(self);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    shared.deliver(&job.event, job.fault).await;
                });
            }
            Some(WebhookFault::Reorder) => self.hold(job).await,
            None => self.deliver(&job.event, None).await,
        }
        if !reordered {
            let held = lock(&self.held).take();
            if let Some(held) = held {
                self.deliver(&held.event, held.fault).await;
            }
        }
    }

    /// Keeps `job` back until the next event has gone out (or `reorder_hold` passes).
    async fn hold(self: &Arc<Self>, job: Job) {
        let id = job.event.id;
        let previous = lock(&self.held).replace(job);
        if let Some(previous) = previous {
            self.deliver(&previous.event, previous.fault).await;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(shared.policy.reorder_hold).await;
            let still_held = {
                let mut held = lock(&shared.held);
                if held.as_ref().is_some_and(|h| h.event.id == id) {
                    held.take()
                } else {
                    None
                }
            };
            if let Some(job) = still_held {
                shared.deliver(&job.event, job.fault).await;
            }
        });
    }

    /// The first attempt now; the rest, if needed, in the background.
    async fn deliver(self: &Arc<Self>, event: &Event, fault: Option<WebhookFault>) {
        if self.attempt(event, 1, fault.clone()).await || self.policy.attempts <= 1 {
            return;
        }
        let shared = Arc::clone(self);
        let event = event.clone();
        tokio::spawn(async move {
            for n in 2..=shared.policy.attempts {
                tokio::time::sleep(shared.policy.retry_interval).await;
                if shared.attempt(&event, n, fault.clone()).await {
                    break;
                }
            }
        });
    }

    async fn attempt(&self, event: &Event, n: u32, fault: Option<WebhookFault>) -> bool {
        let sent = self
            .client
            .post(&event.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-API-KEY", &*event.api_key)
            .body(event.body.to_string())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => DeliveryOutcome::Status {
                code: response.status().as_u16(),
            },
            Err(error) => DeliveryOutcome::Error {
                message: error_chain(&error),
            },
        };
        let delivered = outcome.is_delivered();
        tracing::debug!(
            event_id = event.id,
            payment_id = %event.payment_id,
            attempt = n,
            ?outcome,
            "sandbox webhook attempt"
        );
        self.record(event, n, outcome, fault);
        delivered
    }

    fn record(
        &self,
        event: &Event,
        attempt: u32,
        outcome: DeliveryOutcome,
        fault: Option<WebhookFault>,
    ) {
        let entry = DeliveryAttempt {
            event_id: event.id,
            payment_id: event.payment_id.clone(),
            status: event.status,
            attempt,
            at: self.clock.now(),
            after_ms: u64::try_from(event.created.elapsed().as_millis()).unwrap_or(u64::MAX),
            url: event.url.clone(),
            outcome,
            fault,
            body: event.body.to_string(),
        };
        {
            let mut log = lock(&self.log);
            if log.len() >= self.capacity {
                log.pop_front();
            }
            log.push_back(entry);
        }
        self.logged.notify_waiters();
    }
}

/// A plain-HTTP client: no proxy (targets are local), no redirects (IVPAY's key must not
/// follow one), and a rustls setup that trusts nothing, only there because the shared
/// reqwest build has rustls without a default provider.
fn http_client(policy: &WebhookPolicy) -> Result<reqwest::Client, SandboxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SandboxError::Tls)?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(policy.timeout)
        .build()
        .map_err(SandboxError::Client)
}
