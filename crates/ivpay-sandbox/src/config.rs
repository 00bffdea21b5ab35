//! What a sandbox is built from: merchant keys, the payment window, webhook delivery
//! policy and the initial fault plan.

use std::fmt;
use std::time::Duration;

use axum::http::StatusCode;

use crate::clock::SandboxClock;
use crate::error::ConfigError;
use crate::fault::FaultPlan;

/// The API key of the merchant a default [`SandboxConfig`] accepts.
pub const DEFAULT_API_KEY: &str = "sandbox-key";

/// Everything a [`Sandbox`](crate::Sandbox) needs. Fields are public: start from
/// `SandboxConfig::default()` and change what the test cares about.
///
/// ```
/// use std::time::Duration;
/// use ivpay_sandbox::{MerchantConfig, SandboxClock, SandboxConfig};
///
/// let config = SandboxConfig {
///     prefix: "/api/v4".into(),
///     merchants: vec![MerchantConfig::new("shop-key").with_webhook("http://127.0.0.1:9/hook")],
///     payment_timeout: Duration::from_secs(15 * 60),
///     clock: SandboxClock::manual(1_726_248_776),
///     ..SandboxConfig::default()
/// };
/// assert_eq!(config.webhooks.attempts, 3);
/// ```
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Path prefix for every route (IVPAY's, the checkout page, `/sandbox/...`): empty
    /// (the default) or `/something` without a trailing slash, e.g. `/api/v4` to mimic
    /// IVPAY's public base URL.
    pub prefix: String,
    /// The accepted `X-API-KEY`s, each with its own webhook URL. At least one.
    pub merchants: Vec<MerchantConfig>,
    /// Base URL that `payment_url` points at (the checkout page is
    /// `{public_url}/checkout/{payment_id}`). `None` (the default) derives it from the
    /// create request's `Host` header and path, which is right when the client reaches
    /// the sandbox directly.
    pub public_url: Option<String>,
    /// How long a payment may stay CREATED or PENDING before it becomes TIMEOUT
    /// (IVPAY says "minutes to hours"; default 30 minutes).
    pub payment_timeout: Duration,
    /// The clock timestamps and deadlines come from; [`SandboxClock::manual`] in tests.
    pub clock: SandboxClock,
    /// How often (real time) the background sweeper looks for expired payments; it also
    /// runs at once whenever the clock is advanced. Default 1 s.
    pub sweep_interval: Duration,
    /// Webhook delivery: attempts, spacing, timeout.
    pub webhooks: WebhookPolicy,
    /// Faults armed from the start (none by default); replaceable at run time.
    pub faults: FaultPlan,
    /// HTTP status of a successful create. IVPAY does not document it (200 or 201);
    /// default 200.
    pub create_status: StatusCode,
    /// HTTP status for `GET /payment/{id}` with an unknown id. Undocumented at IVPAY
    /// (404, or maybe 400); default 404. The body is always the error envelope.
    pub unknown_payment_status: StatusCode,
    /// Most delivery attempts kept in the log; the oldest are dropped first. Default 10 000.
    pub delivery_log_capacity: usize,
    /// A final payment (PAID or TIMEOUT) whose last change is older than this is forgotten
    /// by the sweeper, so a long development run stays small; `None` keeps every payment.
    /// Default 7 days.
    pub forget_after: Option<Duration>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            merchants: vec![MerchantConfig::new(DEFAULT_API_KEY)],
            public_url: None,
            payment_timeout: Duration::from_secs(30 * 60),
            clock: SandboxClock::system(),
            sweep_interval: Duration::from_secs(1),
            webhooks: WebhookPolicy::default(),
            faults: FaultPlan::default(),
            create_status: StatusCode::OK,
            unknown_payment_status: StatusCode::NOT_FOUND,
            delivery_log_capacity: 10_000,
            forget_after: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

impl SandboxConfig {
    /// Replaces the merchant list with one key and its webhook URL: the common test setup.
    #[must_use]
    pub fn with_merchant(mut self, merchant: MerchantConfig) -> Self {
        self.merchants = vec![merchant];
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        validate_prefix(&self.prefix)?;
        if self.merchants.is_empty() {
            return Err(ConfigError::NoMerchant);
        }
        let mut seen = std::collections::HashSet::new();
        for merchant in &self.merchants {
            merchant.validate()?;
            if !seen.insert(merchant.api_key.as_str()) {
                return Err(ConfigError::DuplicateKey);
            }
        }
        if let Some(url) = &self.public_url {
            validate_http_url(url).map_err(|reason| ConfigError::PublicUrl {
                url: url.clone(),
                reason,
            })?;
        }
        if self.webhooks.attempts == 0 {
            return Err(ConfigError::NoAttempts);
        }
        if self.webhooks.workers == 0 {
            return Err(ConfigError::NoWorkers);
        }
        if !self.create_status.is_success() {
            return Err(ConfigError::CreateStatus(self.create_status.as_u16()));
        }
        self.faults.validate()?;
        Ok(())
    }
}

/// One accepted API key (a "Point of Sale" at IVPAY) and where its webhooks go.
#[derive(Clone, PartialEq, Eq)]
pub struct MerchantConfig {
    /// The `X-API-KEY` value; also echoed in this merchant's webhooks.
    pub api_key: String,
    /// Where status changes are posted (plain `http://`); `None` sends none.
    pub webhook_url: Option<String>,
}

impl MerchantConfig {
    /// A key without a webhook URL.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            webhook_url: None,
        }
    }

    /// Sets the webhook URL.
    #[must_use]
    pub fn with_webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.api_key.is_empty() {
            return Err(ConfigError::EmptyKey);
        }
        if let Some(url) = &self.webhook_url {
            let plain_http = if url.starts_with("http://") {
                Ok(())
            } else {
                Err("only http:// is supported: the sandbox trusts no certificate".to_owned())
            };
            plain_http
                .and_then(|()| validate_http_url(url))
                .map_err(|reason| ConfigError::WebhookUrl {
                    url: url.clone(),
                    reason,
                })?;
        }
        Ok(())
    }
}

impl fmt::Debug for MerchantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantConfig")
            .field("api_key", &"[REDACTED]")
            .field("webhook_url", &self.webhook_url)
            .finish()
    }
}

/// How webhooks are delivered. Defaults follow IVPAY: 3 attempts, 5 s apart, and only an
/// HTTP 200 counts as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Attempts per event, first included (IVPAY: "up to 3"). At least 1.
    pub attempts: u32,
    /// Pause between attempts (IVPAY: 5 s). Real time, not the sandbox clock; make it
    /// short in tests.
    pub retry_interval: Duration,
    /// Timeout of one attempt. Default 5 s.
    pub timeout: Duration,
    /// How long a webhook held back by the `reorder` fault waits for a later one to
    /// overtake it before it is sent anyway. Default 2 s.
    pub reorder_hold: Duration,
    /// Parallel delivery queues. Events of one payment always share a queue, so they are
    /// sent in order unless a fault says otherwise. Default 4.
    pub workers: usize,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            retry_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            reorder_hold: Duration::from_secs(2),
            workers: 4,
        }
    }
}

fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains("//")
            && !prefix.contains(['{', '}', '*', '?', '#']));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Prefix(prefix.to_owned()))
    }
}

pub(crate) fn validate_http_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", parsed.scheme()));
    }
    if parsed.host_str().is_none() {
        return Err("no host".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid() {
        assert_eq!(SandboxConfig::default().validate(), Ok(()));
    }

    #[test]
    fn refuses_a_prefix_with_a_trailing_slash() {
        let config = SandboxConfig {
            prefix: "/api/v4/".into(),
            ..SandboxConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::Prefix("/api/v4/".into()))
        );
    }

    #[test]
    fn refuses_a_key_configured_twice() {
        let config = SandboxConfig {
            merchants: vec![MerchantConfig::new("a"), MerchantConfig::new("a")],
            ..SandboxConfig::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::DuplicateKey));
    }

    #[test]
    fn refuses_a_relative_webhook_url() {
        let config =
            SandboxConfig::default().with_merchant(MerchantConfig::new("a").with_webhook("/hook"));
        assert!(matches!(
            config.validate(),
            Err(ConfigError::WebhookUrl { .. })
        ));
    }

    #[test]
    fn refuses_zero_attempts() {
        let mut config = SandboxConfig::default();
        config.webhooks.attempts = 0;
        assert_eq!(config.validate(), Err(ConfigError::NoAttempts));
    }

    #[test]
    fn debug_hides_merchant_keys() {
        let shown = format!("{:?}", MerchantConfig::new("very-secret"));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }
}
