//! What the router is configured with, and what every handler shares.

use std::num::NonZeroU32;
use std::sync::Arc;

use ivpay_ports::{NotificationUseCases, PaymentUseCases};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::keys::{ClientKeys, WebhookKeys};
use crate::policy::RedirectPolicy;

/// Settings of the router.
#[derive(Clone)]
pub struct ApiConfig {
    /// Our clients' keys with their scopes. A key with the `admin` scope opens the
    /// `/admin` routes; with none, they answer 404.
    pub clients: ClientKeys,
    /// IVPAY's keys, one per account, which IVPAY echoes on webhooks; empty refuses every
    /// webhook.
    pub webhook_keys: WebhookKeys,
    /// The hosts each client's redirect URLs may name.
    pub redirects: RedirectPolicy,
    /// What `/readyz` says runs upstream: `live` (IVPAY) or `sandbox`.
    pub mode: Option<&'static str>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Where `/metrics` reads from; `None` answers 404 there.
    pub metrics: Option<PrometheusHandle>,
    /// Requests per second allowed to each client, with a burst; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Longest a request may run before it is answered 503 (`timeout`) in the envelope;
    /// `None` for no limit. A create cut short after its intent was stored is not lost:
    /// its call to IVPAY and the write of the answer run in a task of their own, which
    /// finishes without the request, so a retry with the same `Idempotency-Key` gets the
    /// stored answer (the created payment, replayed), or waits for it while it runs.
    pub request_timeout: Option<std::time::Duration>,
    /// The storage's effective settings, shown by `/readyz` (e.g. SQLite's journal mode
    /// and `synchronous`), so a misconfigured deployment is visible.
    pub storage: Option<serde_json::Value>,
    /// Endpoints and the delivery log of outbound notifications, behind the admin key;
    /// `None` answers 404 on `/admin/endpoints` and `/admin/notifications`.
    pub notifications: Option<Arc<dyn NotificationUseCases>>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("clients", &self.clients)
            .field("webhook_keys", &self.webhook_keys)
            .field("redirects", &self.redirects)
            .field("mode", &self.mode)
            .field("body_limit", &self.body_limit)
            .field("metrics", &self.metrics.is_some())
            .field("rate_limit", &self.rate_limit)
            .field("request_timeout", &self.request_timeout)
            .field("storage", &self.storage)
            .field("notifications", &self.notifications.is_some())
            .finish()
    }
}

/// A per-client request rate: `per_second` on average, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

pub(crate) type Limiter = governor::DefaultKeyedRateLimiter<ivpay_domain::ClientId>;

impl ApiConfig {
    /// Defaults: no webhook key, 64 KiB bodies, no metrics.
    pub fn new(clients: ClientKeys) -> Self {
        Self {
            clients,
            webhook_keys: WebhookKeys::new(),
            redirects: RedirectPolicy::new(),
            mode: None,
            body_limit: 64 * 1024,
            metrics: None,
            rate_limit: None,
            request_timeout: None,
            storage: None,
            notifications: None,
        }
    }
}

/// What every handler shares, behind one `Arc`: axum clones the state for every request,
/// so a clone is one reference count, not one per field.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

/// The handlers' shared settings and handles.
pub(crate) struct Shared {
    pub(crate) use_cases: Arc<dyn PaymentUseCases>,
    pub(crate) clients: ClientKeys,
    pub(crate) webhook_keys: WebhookKeys,
    pub(crate) redirects: RedirectPolicy,
    pub(crate) mode: Option<&'static str>,
    pub(crate) body_limit: usize,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) storage: Option<Arc<serde_json::Value>>,
    pub(crate) notifications: Option<Arc<dyn NotificationUseCases>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The state the handlers share, from the router's settings.
    pub(crate) fn new(use_cases: Arc<dyn PaymentUseCases>, config: ApiConfig) -> Self {
        Self(Arc::new(Shared {
            use_cases,
            clients: config.clients,
            webhook_keys: config.webhook_keys,
            redirects: config.redirects,
            mode: config.mode,
            body_limit: config.body_limit,
            metrics: config.metrics,
            storage: config.storage.map(Arc::new),
            notifications: config.notifications,
            limiter: config.rate_limit.map(|r| {
                governor::RateLimiter::keyed(
                    governor::Quota::per_second(r.per_second).allow_burst(r.burst),
                )
            }),
        }))
    }
}
