//! Settings: built-in defaults, then `ivpay.toml` (if present), then `IVPAY_*` environment
//! variables (`__` between levels: `IVPAY_DATABASE__URL`).
//!
//! Every value is typed when loaded (client names are [`ClientId`]s, durations
//! [`Duration`]s, URLs [`Url`]s, counts `NonZero*`) and checked against its range, so bad
//! configuration stops the start with the key named:
//! `reconciler.interval_secs: must be at least 1`. Nothing is clamped. Durations are whole
//! seconds, in keys ending `_secs`. Secrets are `SecretString`, and the database URL's
//! password is hidden too: `Debug` shows neither.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ivpay_domain::{AccountId, ClientId};
use ivpay_service::PaymentUrlTemplate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use url::Url;

mod notify;
mod tenancy;

pub use notify::{EndpointSettings, NotifySettings};
pub use tenancy::{AccountSettings, Accounts, ClientSettings, KeySettings, SandboxSettings};

/// The name `admin.key` is known by in logs: a client may not take it.
pub const ADMIN_KEY_OWNER: &str = "admin";

/// Everything the service can be told.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Our HTTP server.
    pub server: ServerSettings,
    /// Storage.
    pub database: DatabaseSettings,
    /// The upstream IVPAY account. Without an `api_key`, an embedded sandbox stands in.
    pub ivpay: IvpaySettings,
    /// Our API clients: name → key, or name → table (keys with scopes, account, redirect
    /// hosts). Keys are kept only as SHA-256 digests once the service starts, and may be
    /// given as digests. Names from environment variables arrive lower-cased.
    pub clients: BTreeMap<ClientId, ClientSettings>,
    /// The embedded sandbox.
    pub sandbox: SandboxSettings,
    /// Idempotency keys on create.
    pub idempotency: IdempotencySettings,
    /// The background poller for payments webhooks missed.
    pub reconciler: ReconcilerSettings,
    /// Operators: the key of the `/admin` routes.
    pub admin: AdminSettings,
    /// Signed notifications to clients' endpoints.
    pub notify: NotifySettings,
    /// How long old rows are kept.
    pub retention: RetentionSettings,
    /// Logs.
    pub log: LogSettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Largest request body in bytes (413 above). Default 65536.
    #[serde(deserialize_with = "at_least_one")]
    pub body_limit: NonZeroUsize,
    /// `request_timeout_secs`: how long a request may run before it is answered 503. At
    /// least 1 s. Default 30 s.
    #[serde(rename = "request_timeout_secs", deserialize_with = "secs")]
    pub request_timeout: Duration,
    /// Requests per second each client may make on average (429 above); `None` (0 in the
    /// file or the environment) turns the limit off. Default 100.
    #[serde(deserialize_with = "zero_is_off")]
    pub rate_limit_per_second: Option<NonZeroU32>,
    /// Requests a client may make at once after a quiet spell. Default 200.
    #[serde(deserialize_with = "at_least_one")]
    pub rate_limit_burst: NonZeroU32,
    /// `shutdown_grace_secs`: how long in-flight requests, and creates whose call to IVPAY
    /// outlived their request, get to finish after a shutdown signal; connections still
    /// open then are dropped. Default 30 s.
    #[serde(rename = "shutdown_grace_secs", deserialize_with = "secs")]
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: const { NonZeroUsize::new(64 * 1024).expect("not zero") },
            request_timeout: Duration::from_secs(30),
            rate_limit_per_second: NonZeroU32::new(100),
            rate_limit_burst: const { NonZeroU32::new(200).expect("not zero") },
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://FILE?mode=rwc`, `sqlite::memory:` or `postgres://...`. Default
    /// `sqlite://ivpay.db?mode=rwc`.
    #[serde(deserialize_with = "parsed")]
    pub url: DatabaseUrl,
    /// Pool size. Default 8.
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections: NonZeroU32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::sqlite_default(),
            max_connections: const { NonZeroU32::new(8).expect("not zero") },
        }
    }
}

/// `[ivpay]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IvpaySettings {
    /// IVPAY's API base URL: https, or plain http with `allow_http`. Default
    /// `https://api.ivpay.io/api/v4`.
    #[serde(deserialize_with = "parsed")]
    pub base_url: Url,
    /// The merchant API key (the account named `default`); not empty. Unset: run against
    /// an embedded sandbox.
    pub api_key: Option<SecretString>,
    /// The merchant's other IVPAY accounts (points of sale with their own keys), by name.
    pub accounts: Accounts,
    /// Allow a plain-http base URL (tests, a local sandbox). Default false.
    pub allow_http: bool,
    /// `connect_timeout_secs`: how long to wait for a connection. At least 1 s. Default 5 s.
    #[serde(rename = "connect_timeout_secs", deserialize_with = "secs")]
    pub connect_timeout: Duration,
    /// `request_timeout_secs`: how long one attempt may take. At least 1 s. Default 15 s.
    #[serde(rename = "request_timeout_secs", deserialize_with = "secs")]
    pub request_timeout: Duration,
    /// The `payment_url` of a payment linked from a webhook or by an operator, whose
    /// create answer we never read (IVPAY's `GET` has none): `{payment_id}` is replaced by
    /// IVPAY's id. Default `https://pay.ivpay.io/payment/{payment_id}`, IVPAY's documented
    /// payment page.
    #[serde(deserialize_with = "parsed")]
    pub payment_url_template: PaymentUrlTemplate,
    /// Calls toward IVPAY per second that refreshes and webhook confirmations together may
    /// cause, per account; `None` (0) turns the budget off. Default 50.
    #[serde(deserialize_with = "zero_is_off")]
    pub budget_per_second: Option<NonZeroU32>,
    /// Such calls at once after a quiet spell, per account. Default 100.
    #[serde(deserialize_with = "at_least_one")]
    pub budget_burst: NonZeroU32,
    /// Refreshes (`?refresh=true`) per second each client may make; `None` (0) turns the
    /// limit off. Default 5.
    #[serde(deserialize_with = "zero_is_off")]
    pub refresh_per_client_per_second: Option<NonZeroU32>,
    /// Refreshes a client may make at once after a quiet spell. Default 10.
    #[serde(deserialize_with = "at_least_one")]
    pub refresh_per_client_burst: NonZeroU32,
}

impl IvpaySettings {
    /// The budget of calls toward IVPAY, as the service takes it.
    pub fn upstream_budget(&self) -> ivpay_service::BudgetConfig {
        let rate = |per_second: Option<NonZeroU32>, burst| {
            per_second.map(|per_second| ivpay_service::Rate { per_second, burst })
        };
        ivpay_service::BudgetConfig {
            per_account: rate(self.budget_per_second, self.budget_burst),
            per_client: rate(
                self.refresh_per_client_per_second,
                self.refresh_per_client_burst,
            ),
        }
    }

    /// The slowest `GET` the client can make with these timeouts: the adapter starts no
    /// retry later than its retry window after the first attempt, and that last attempt may
    /// take `request_timeout`. The reconciler's claim lease is sized from it.
    pub fn longest_get(&self) -> Duration {
        ivpay_http_adapter::RetryPolicy::default()
            .max_elapsed
            .saturating_add(self.request_timeout)
    }
}

impl Default for IvpaySettings {
    fn default() -> Self {
        Self {
            base_url: Url::parse(ivpay_http_adapter::DEFAULT_BASE_URL)
                .expect("the default IVPAY base URL is a URL"),
            api_key: None,
            accounts: Accounts::new(),
            allow_http: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            payment_url_template: PaymentUrlTemplate::default(),
            budget_per_second: NonZeroU32::new(50),
            budget_burst: const { NonZeroU32::new(100).expect("not zero") },
            refresh_per_client_per_second: NonZeroU32::new(5),
            refresh_per_client_burst: const { NonZeroU32::new(10).expect("not zero") },
        }
    }
}

/// `[idempotency]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// `retention_secs`: how long a key is remembered (the IETF draft advises at least a
    /// day). At least 60 s. Default 86400 s.
    #[serde(rename = "retention_secs", deserialize_with = "secs")]
    pub retention: Duration,
    /// `wait_secs`: how long a repeated request waits for the first one with its key to
    /// finish before answering 409. Below `server.request_timeout_secs`, or the wait would
    /// end in a 503. Default 20 s.
    #[serde(rename = "wait_secs", deserialize_with = "secs")]
    pub wait: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            wait: Duration::from_secs(20),
        }
    }
}

/// `[reconciler]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerSettings {
    /// Run the poller. Default true.
    pub enabled: bool,
    /// `interval_secs`: pause between passes when there was nothing to do. At least 1 s.
    /// Default 5 s.
    #[serde(rename = "interval_secs", deserialize_with = "secs")]
    pub interval: Duration,
    /// `first_check_secs`: delay before the first check of a new payment; the back-off
    /// doubles from here. At least 1 s, at most `max_delay_secs`. Default 30 s.
    #[serde(rename = "first_check_secs", deserialize_with = "secs")]
    pub first_check: Duration,
    /// `max_delay_secs`: longest pause between two checks of one payment. At least 1 s.
    /// Default 3600 s.
    #[serde(rename = "max_delay_secs", deserialize_with = "secs")]
    pub max_delay: Duration,
    /// `stale_intent_secs`: an intent still waiting for IVPAY's answer after this long is
    /// taken for the trace of a dead request and settled as *unknown*. Must exceed the
    /// longest create call. At least 1 s. Default 300 s.
    #[serde(rename = "stale_intent_secs", deserialize_with = "secs")]
    pub stale_intent: Duration,
    /// `inbox_lease_secs`: how long a webhook being confirmed is kept from other workers;
    /// one whose process died mid-way is retried after this long. Must exceed the longest
    /// confirmation (IVPAY's GET with its retries). At least 1 s. Default 60 s.
    #[serde(rename = "inbox_lease_secs", deserialize_with = "secs")]
    pub inbox_lease: Duration,
    /// How many webhooks the inbox worker confirms with IVPAY at once (one payment's are
    /// still confirmed one after the other). When idle, the worker looks at the inbox
    /// every `interval_secs`, besides being woken by each webhook. Default 8.
    #[serde(deserialize_with = "at_least_one")]
    pub inbox_concurrency: NonZeroUsize,
    /// How many times a webhook is tried while IVPAY cannot confirm it (its `GET` fails)
    /// before it is given up: recorded as an *unconfirmed* event with its body and removed
    /// from the inbox. At least 1. Default 50 (about two days at the default back-off).
    #[serde(deserialize_with = "at_least_one")]
    pub inbox_max_attempts: NonZeroU32,
    /// `unknown_webhook_keep_secs`: how long a webhook for a payment IVPAY knows but no row
    /// holds stays in the inbox, retried, waiting for its row (our create's save, or a link
    /// by foreign id); then it is recorded as `unknown_payment` and removed. At least 1 s.
    /// Default 14400 s (4 h).
    #[serde(rename = "unknown_webhook_keep_secs", deserialize_with = "secs")]
    pub unknown_webhook_keep: Duration,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(5),
            first_check: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            stale_intent: Duration::from_secs(300),
            inbox_lease: Duration::from_secs(60),
            inbox_concurrency: const { NonZeroUsize::new(8).expect("not zero") },
            inbox_max_attempts: const { NonZeroU32::new(50).expect("not zero") },
            unknown_webhook_keep: Duration::from_secs(4 * 3600),
        }
    }
}

/// `[retention]`: old rows deleted in bounded batches by a worker. Payments are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Status events (payments' history and evidence) older than this many days are
    /// deleted; 0 keeps them. Default 0.
    pub events_days: u32,
    /// Delivered, failed and skipped notifications (with their attempts) older than this
    /// many days are deleted; 0 keeps them. Default 30.
    pub notifications_days: u32,
    /// `interval_secs`: time between purge passes. At least 1 s. Default 3600 s.
    #[serde(rename = "interval_secs", deserialize_with = "secs")]
    pub interval: Duration,
    /// Rows deleted per statement. Default 1000.
    #[serde(deserialize_with = "at_least_one")]
    pub batch: NonZeroU32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            events_days: 0,
            notifications_days: 30,
            interval: Duration::from_secs(3600),
            batch: const { NonZeroU32::new(1000).expect("not zero") },
        }
    }
}

impl RetentionSettings {
    /// The service's retention from these settings.
    pub fn config(&self) -> ivpay_service::RetentionConfig {
        let days = |d: u32| (d > 0).then(|| Duration::from_secs(u64::from(d) * 24 * 3600));
        ivpay_service::RetentionConfig {
            events: days(self.events_days),
            notifications: days(self.notifications_days),
            batch: self.batch.get(),
            ..ivpay_service::RetentionConfig::default()
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// The operators' key for the `/admin` routes (`X-API-KEY`); not empty. Kept only as
    /// a SHA-256 digest once the service starts. Unset: the admin routes answer 404.
    pub key: Option<SecretString>,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info,ivpay_service=debug`. `RUST_LOG`, when set, wins.
    /// Default `info`.
    #[serde(deserialize_with = "parsed")]
    pub filter: LogFilter,
    /// JSON lines instead of human-readable text. Default false.
    pub json: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: LogFilter(String::from("info")),
            json: false,
        }
    }
}

/// A database URL: `sqlite:...` or `postgres://...` (`postgresql://`). It may hold a
/// password (`user:password@`, or `?password=`), so it is kept as a secret: `Debug` and
/// `Display` show it with the password replaced by `REDACTED`.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: SecretString,
    shown: String,
}

impl DatabaseUrl {
    fn sqlite_default() -> Self {
        let text = "sqlite://ivpay.db?mode=rwc";
        Self {
            url: SecretString::from(text),
            shown: text.to_owned(),
        }
    }

    /// The URL as given, password included, for opening the database.
    pub fn expose_secret(&self) -> &str {
        self.url.expose_secret()
    }
}

/// Why a database URL was refused. The URL itself is not repeated: it may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    /// Another scheme than SQLite's or PostgreSQL's.
    #[error("must start with sqlite:, postgres:// or postgresql://")]
    Scheme,
    /// A PostgreSQL URL that does not parse.
    #[error("not a URL: {0}")]
    Syntax(#[from] url::ParseError),
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown = if text.starts_with("sqlite:") {
            text.to_owned()
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            without_password(Url::parse(text)?)
        } else {
            return Err(DatabaseUrlError::Scheme);
        };
        Ok(Self {
            url: SecretString::from(text),
            shown,
        })
    }
}

/// A PostgreSQL URL with the password replaced, wherever sqlx would read one.
fn without_password(mut url: Url) -> String {
    const HIDDEN: &str = "REDACTED";
    if url.password().is_some() && url.set_password(Some(HIDDEN)).is_err() {
        return format!("{}://{HIDDEN}", url.scheme());
    }
    if url.query_pairs().any(|(name, _)| name == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if name == "password" {
                    HIDDEN.into()
                } else {
                    value
                };
                (name.into_owned(), value.into_owned())
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

impl fmt::Display for DatabaseUrl {
    /// The URL with its password replaced, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}

/// A `tracing` filter (`info,ivpay_service=debug`), checked when loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LogFilter {
    type Err = tracing_subscriber::filter::ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        tracing_subscriber::EnvFilter::try_new(text)?;
        Ok(Self(text.to_owned()))
    }
}

/// Configuration could not be loaded, or a value is out of range. Each message starts with
/// the key at fault (`reconciler.interval_secs: must be at least 1`).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is not of its type: bad syntax, wrong type, or a key its section lacks.
    #[error("{key}: {reason}")]
    Invalid {
        /// The full key, `section.name`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A duration below its minimum.
    #[error("{key}: must be at least {min}")]
    TooSmall {
        /// The full key.
        key: &'static str,
        /// The smallest value accepted, in the key's unit (seconds).
        min: u64,
    },
    /// A duration that must stay below another setting does not.
    #[error("{key}: must be below {limit_key} ({limit})")]
    NotBelow {
        /// The full key.
        key: &'static str,
        /// The setting it must stay below.
        limit_key: &'static str,
        /// That setting's value, in seconds.
        limit: u64,
    },
    /// A duration that may not exceed another setting does.
    #[error("{key}: must not exceed {limit_key} ({limit})")]
    Exceeds {
        /// The full key.
        key: &'static str,
        /// The setting it may not exceed.
        limit_key: &'static str,
        /// That setting's value, in seconds.
        limit: u64,
    },
    /// A secret that is set but empty.
    #[error("{key}: must not be empty")]
    Empty {
        /// The full key.
        key: String,
    },
    /// An IVPAY base URL that cannot be used: plain http without `ivpay.allow_http`, or
    /// credentials in it.
    #[error("ivpay.base_url: {reason}")]
    BaseUrl {
        /// Why.
        reason: &'static str,
    },
    /// A settings variable whose value is not valid Unicode.
    #[error("{variable}: not valid Unicode")]
    NotUnicode {
        /// The environment variable.
        variable: String,
    },
    /// The file could not be read or parsed, or a section is unknown.
    #[error("configuration: {0}")]
    Load(#[source] config::ConfigError),
}

impl From<config::ConfigError> for SettingsError {
    /// Lifts the key out of config's message (`... for key `a.b``) to the front.
    fn from(error: config::ConfigError) -> Self {
        match error {
            config::ConfigError::At {
                error,
                key: Some(key),
                ..
            } => Self::Invalid {
                key,
                reason: error.to_string(),
            },
            config::ConfigError::Type {
                origin,
                unexpected,
                expected,
                key: Some(key),
            } => Self::Invalid {
                key,
                reason: match origin {
                    Some(origin) => format!("expected {expected}, found {unexpected} in {origin}"),
                    None => format!("expected {expected}, found {unexpected}"),
                },
            },
            other => Self::Load(other),
        }
    }
}

/// The variables that are settings: `IVPAY_<SECTION>__<KEY>`, the prefix and a double
/// underscore. There is no list of sections to keep up to date: an unknown section is
/// refused by name, and variables without `__` (`IVPAY_CONFIG`, `IVPAY_FAULT_POINTS`, the
/// test suites' `IVPAY_TEST_DATABASE_URL`) are not settings.
fn is_setting(variable: &str) -> bool {
    variable
        .strip_prefix("IVPAY_")
        .is_some_and(|rest| rest.contains("__"))
}

impl Settings {
    /// Loads defaults < `file` (optional unless `required`) < `IVPAY_*` environment, and
    /// checks every range ([`validate`](Self::validate)).
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key that is unknown, of the wrong type or out of range.
    pub fn load(file: &Path, required: bool) -> Result<Self, SettingsError> {
        Self::load_with_env(file, required, std::env::vars_os())
    }

    /// [`load`](Self::load) with the environment given as `(name, value)` pairs instead of
    /// read from the process, so tests need not change the process environment.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load); also [`SettingsError::NotUnicode`] for a settings variable
    /// whose value is not Unicode (other variables are not looked at).
    pub fn load_with_env<I, K, V>(
        file: &Path,
        required: bool,
        env: I,
    ) -> Result<Self, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut settings_env = config::Map::new();
        for (name, value) in env {
            let Ok(name) = name.into().into_string() else {
                continue;
            };
            if !is_setting(&name) {
                continue;
            }
            let value = value
                .into()
                .into_string()
                .map_err(|_| SettingsError::NotUnicode {
                    variable: name.clone(),
                })?;
            settings_env.insert(name, value);
        }
        let built = config::Config::builder()
            .add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(required),
            )
            // Values stay text until their field's type reads them: config's own guessing
            // would turn a client key `0123` into the number 123.
            .add_source(
                config::Environment::with_prefix("IVPAY")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(settings_env)),
            )
            .build()?;
        check_client_names(&built)?;
        let settings: Self = built.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the ranges a type alone does not hold: minimum durations, settings that
    /// must stay below others, secrets that are set but empty. [`load`](Self::load) calls
    /// it; settings built in code are checked when the service is built from them.
    ///
    /// # Errors
    ///
    /// The first [`SettingsError`] found, naming its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let minimums = [
            (
                "server.request_timeout_secs",
                self.server.request_timeout,
                1,
            ),
            ("ivpay.connect_timeout_secs", self.ivpay.connect_timeout, 1),
            ("ivpay.request_timeout_secs", self.ivpay.request_timeout, 1),
            ("idempotency.retention_secs", self.idempotency.retention, 60),
            ("reconciler.interval_secs", self.reconciler.interval, 1),
            (
                "reconciler.first_check_secs",
                self.reconciler.first_check,
                1,
            ),
            ("reconciler.max_delay_secs", self.reconciler.max_delay, 1),
            (
                "reconciler.stale_intent_secs",
                self.reconciler.stale_intent,
                1,
            ),
            (
                "reconciler.inbox_lease_secs",
                self.reconciler.inbox_lease,
                1,
            ),
            (
                "reconciler.unknown_webhook_keep_secs",
                self.reconciler.unknown_webhook_keep,
                1,
            ),
            ("notify.timeout_secs", self.notify.timeout, 1),
            ("retention.interval_secs", self.retention.interval, 1),
            ("notify.disable_after_secs", self.notify.disable_after, 1),
            (
                "notify.directory_refresh_secs",
                self.notify.directory_refresh,
                1,
            ),
        ];
        for (key, value, min) in minimums {
            if value < Duration::from_secs(min) {
                return Err(SettingsError::TooSmall { key, min });
            }
        }
        if self.idempotency.wait >= self.server.request_timeout {
            return Err(SettingsError::NotBelow {
                key: "idempotency.wait_secs",
                limit_key: "server.request_timeout_secs",
                limit: self.server.request_timeout.as_secs(),
            });
        }
        if self.reconciler.first_check > self.reconciler.max_delay {
            return Err(SettingsError::Exceeds {
                key: "reconciler.first_check_secs",
                limit_key: "reconciler.max_delay_secs",
                limit: self.reconciler.max_delay.as_secs(),
            });
        }
        let base_url = &self.ivpay.base_url;
        if base_url.scheme() == "http" && !self.ivpay.allow_http {
            return Err(SettingsError::BaseUrl {
                reason: "plain http needs ivpay.allow_http = true",
            });
        }
        // The key travels in a header; a password here would also show in `Debug`.
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(SettingsError::BaseUrl {
                reason: "credentials are not allowed in the URL",
            });
        }
        self.validate_tenancy()?;
        self.validate_notify()
    }

    /// Notifications: a sensible poll interval, and each configured endpoint's client
    /// known (`dev` in development, with no clients) and its secret readable.
    fn validate_notify(&self) -> Result<(), SettingsError> {
        if self.notify.interval < Duration::from_millis(10) {
            return Err(SettingsError::Invalid {
                key: "notify.interval_millis".into(),
                reason: "must be at least 10".into(),
            });
        }
        for (id, e) in &self.notify.endpoints {
            let known = self.clients.contains_key(&e.client)
                || (self.clients.is_empty() && e.client.as_str() == "dev");
            if !known {
                return Err(SettingsError::Invalid {
                    key: format!("notify.endpoints.{id}.client"),
                    reason: format!("{} is not a configured client", e.client),
                });
            }
            if let Err(reason) = ivpay_signing::SigningSecret::parse(e.secret.expose_secret()) {
                return Err(SettingsError::Invalid {
                    key: format!("notify.endpoints.{id}.secret"),
                    reason: reason.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Keys, scopes, accounts and names: every key set and not empty, each digest 64 hex
    /// digits, no key shared by two clients or equal to an IVPAY key (a client could
    /// then forge webhooks), every client's account configured.
    fn validate_tenancy(&self) -> Result<(), SettingsError> {
        let mut secrets: Vec<(String, &SecretString)> = Vec::new();
        secrets.extend(
            self.ivpay
                .api_key
                .iter()
                .map(|k| ("ivpay.api_key".to_owned(), k)),
        );
        for (name, account) in &self.ivpay.accounts {
            if name.as_str() == AccountId::DEFAULT {
                return Err(SettingsError::Invalid {
                    key: format!("ivpay.accounts.{name}"),
                    reason: "the default account is ivpay.api_key".into(),
                });
            }
            secrets.push((format!("ivpay.accounts.{name}.api_key"), &account.api_key));
        }
        if self.ivpay.api_key.is_none()
            && let Some(name) = self.ivpay.accounts.keys().next()
        {
            return Err(SettingsError::Invalid {
                key: format!("ivpay.accounts.{name}"),
                reason: "named accounts need ivpay.api_key (the default account): \
                             without it an embedded sandbox stands in for IVPAY"
                    .into(),
            });
        }
        let upstream = secrets.len();
        secrets.extend(self.admin.key.iter().map(|k| ("admin.key".to_owned(), k)));
        for (name, client) in &self.clients {
            if name.as_str() == ADMIN_KEY_OWNER && self.admin.key.is_some() {
                return Err(SettingsError::Invalid {
                    key: format!("clients.{name}"),
                    reason: "the name is taken by admin.key".into(),
                });
            }
            let known = name_is_configured(&client.account, &self.ivpay.accounts);
            if !known {
                return Err(SettingsError::Invalid {
                    key: format!("clients.{name}.account"),
                    reason: format!(
                        "no IVPAY account {:?} (configured: default{})",
                        client.account.as_str(),
                        self.ivpay
                            .accounts
                            .keys()
                            .map(|a| format!(", {a}"))
                            .collect::<String>()
                    ),
                });
            }
            for (i, key) in client.keys.iter().enumerate() {
                let at = if client.keys.len() == 1 {
                    format!("clients.{name}")
                } else {
                    format!("clients.{name}.keys[{i}]")
                };
                secrets.push((at, &key.key));
            }
        }
        let mut digests: Vec<(ivpay_api::KeyDigest, &str)> = Vec::new();
        for (i, (key, secret)) in secrets.iter().enumerate() {
            if secret.expose_secret().is_empty() {
                return Err(SettingsError::Empty { key: key.clone() });
            }
            // IVPAY's keys are sent to IVPAY as they are: never a digest.
            let digest = if i < upstream {
                ivpay_api::KeyDigest::of(secret.expose_secret().as_bytes())
            } else {
                ivpay_api::KeyDigest::from_config(secret).map_err(|reason| {
                    SettingsError::Invalid {
                        key: key.clone(),
                        reason,
                    }
                })?
            };
            if let Some((_, first)) = digests.iter().find(|(d, _)| *d == digest) {
                return Err(SettingsError::Invalid {
                    key: key.clone(),
                    reason: format!("the same key as {first}: every key must be distinct"),
                });
            }
            digests.push((digest, key.as_str()));
        }
        Ok(())
    }

    /// Whether no IVPAY key is configured, so an embedded sandbox stands in.
    pub fn uses_embedded_sandbox(&self) -> bool {
        self.ivpay.api_key.is_none()
    }
}

/// Whether `account` is the default one or a named one.
fn name_is_configured(account: &AccountId, accounts: &Accounts) -> bool {
    account.as_str() == AccountId::DEFAULT || accounts.contains_key(account)
}

/// Client and account names are map keys, and config names only the map (`clients`)
/// when a key does not parse; checking them first names the client or account.
fn check_client_names(config: &config::Config) -> Result<(), SettingsError> {
    if let Ok(clients) = config.get_table("clients") {
        for name in clients.keys() {
            name.parse::<ClientId>()
                .map_err(|e| SettingsError::Invalid {
                    key: format!("clients.{name}"),
                    reason: e.to_string(),
                })?;
        }
    }
    if let Ok(accounts) = config.get_table("ivpay.accounts") {
        for name in accounts.keys() {
            name.parse::<AccountId>()
                .map_err(|e| SettingsError::Invalid {
                    key: format!("ivpay.accounts.{name}"),
                    reason: e.to_string(),
                })?;
        }
    }
    Ok(())
}

/// A whole number, strictly: `30`, or `"30"` as environment variables are text. Not
/// `1.5`, `-1` or `yes`, which config's own conversion would round or read as 1.
fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            s.parse()
                .map_err(|_| E::invalid_value(Unexpected::Str(s), &self))
        }
    }
    deserializer.deserialize_any(Whole)
}

/// Whole seconds.
pub(super) fn secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    whole(deserializer).map(Duration::from_secs)
}

/// A count of at least 1.
pub(super) fn at_least_one<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<NonZeroU64>,
{
    let n = NonZeroU64::new(whole(deserializer)?)
        .ok_or_else(|| de::Error::custom("must be at least 1"))?;
    T::try_from(n).map_err(|_| de::Error::custom("is too large"))
}

/// A rate where 0 means no limit.
fn zero_is_off<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NonZeroU32>, D::Error> {
    let n = u32::try_from(whole(deserializer)?).map_err(|_| de::Error::custom("is too large"))?;
    Ok(NonZeroU32::new(n))
}

/// Text read through the type's `FromStr`.
fn parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    String::deserialize(deserializer)?
        .parse()
        .map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads with no file and exactly these environment variables.
    fn from_env(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_with_env(
            Path::new("/nonexistent/ivpay.toml"),
            false,
            vars.iter().copied(),
        )
    }

    fn refusal(vars: &[(&str, &str)]) -> String {
        from_env(vars).expect_err("refused").to_string()
    }

    fn from_file(toml: &str) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ivpay.toml");
        std::fs::write(&path, toml).expect("write");
        Settings::load_with_env(&path, true, std::iter::empty::<(String, String)>())
    }

    fn file_refusal(toml: &str) -> String {
        from_file(toml).expect_err("refused").to_string()
    }

    #[test]
    fn notification_endpoints_load_from_file_and_environment_and_mistakes_name_the_key() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let s = from_file(&format!(
            "[clients]\nshop = \"k\"\n[notify]\nretry_schedule_secs = [1, 2]\n\
             [notify.endpoints.orders]\nclient = \"shop\"\nurl = \"https://shop.example/n\"\n\
             secret = \"{secret}\"\nevents = [\"payment.paid\", \"payment.timeout\"]\n"
        ))
        .expect("loads");
        let e = &s.notify.endpoints[&"orders".parse().expect("id")];
        assert_eq!(e.client.as_str(), "shop");
        assert_eq!(e.events.to_string(), "payment.paid,payment.timeout");
        assert_eq!(
            s.notify.retry_schedule,
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        let env = from_env(&[
            ("IVPAY_CLIENTS__SHOP", "k"),
            ("IVPAY_NOTIFY__ENDPOINTS__ORDERS__CLIENT", "shop"),
            (
                "IVPAY_NOTIFY__ENDPOINTS__ORDERS__URL",
                "https://shop.example/n",
            ),
            ("IVPAY_NOTIFY__ENDPOINTS__ORDERS__SECRET", secret),
            (
                "IVPAY_NOTIFY__ENDPOINTS__ORDERS__EVENTS",
                "payment.paid, payment.linked",
            ),
            ("IVPAY_NOTIFY__RETRY_SCHEDULE_SECS", "5, 60"),
        ])
        .expect("loads");
        let e = &env.notify.endpoints[&"orders".parse().expect("id")];
        assert_eq!(e.events.to_string(), "payment.paid,payment.linked");
        assert_eq!(env.notify.retry_schedule.len(), 2);
        assert!(
            !format!("{env:?}").contains("MfKQ9r8G"),
            "the secret stays out of Debug"
        );

        let base = "[clients]\nshop = \"k\"\n[notify.endpoints.orders]\nurl = \"https://shop.example/n\"\n";
        let cases = [
            (
                format!("{base}client = \"other\"\nsecret = \"{secret}\"\n"),
                "notify.endpoints.orders.client: other is not a configured client",
            ),
            (
                format!("{base}client = \"shop\"\nsecret = \"whsec_c2hvcnQ=\"\n"),
                "notify.endpoints.orders.secret: the secret has 5 bytes",
            ),
            (
                format!(
                    "{base}client = \"shop\"\nsecret = \"{secret}\"\nevents = \"payment.refunded\"\n"
                ),
                "notify.endpoints",
            ),
            (
                "[notify]\nretry_schedule_secs = [0]\n".to_owned(),
                "notify.retry_schedule_secs",
            ),
            (
                "[notify]\ninterval_millis = 1\n".to_owned(),
                "notify.interval_millis: must be at least 10",
            ),
            (
                "[notify]\nsecrets_keys = [\"c2hvcnQ=\"]\n".to_owned(),
                "notify.secrets_keys: key 1 has 5 bytes, not 32",
            ),
        ];
        for (toml, expected) in cases {
            let err = file_refusal(&toml);
            assert!(err.starts_with(expected), "{toml}\n{err}");
        }
    }

    #[test]
    fn tenancy_mistakes_stop_the_start_naming_the_setting() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let cases = [
            (
                "[clients]\na = \"same-key\"\nb = \"same-key\"\n".to_owned(),
                "clients.b: the same key as clients.a: every key must be distinct",
            ),
            (
                "[ivpay]\napi_key = \"merchant\"\n[clients]\nshop = \"merchant\"\n".to_owned(),
                "clients.shop: the same key as ivpay.api_key",
            ),
            (
                format!(
                    "[clients]\nshop = \"{digest}\"\nkiosk = \"sha256:{}\"\n",
                    "AB".repeat(32)
                ),
                "clients.shop: the same key as clients.kiosk",
            ),
            (
                "[clients.shop]\nkey = \"k\"\naccount = \"pos-9\"\n".to_owned(),
                "clients.shop.account: no IVPAY account \"pos-9\" (configured: default)",
            ),
            (
                "[clients]\nshop = \"sha256:abc\"\n".to_owned(),
                "clients.shop: sha256: must be followed by 64 hex digits",
            ),
            (
                "[clients.shop]\nkeys = [\"k1\", \"\"]\n".to_owned(),
                "clients.shop.keys[1]: must not be empty",
            ),
            (
                "[admin]\nkey = \"ops\"\n[clients]\nadmin = \"k\"\n".to_owned(),
                "clients.admin: the name is taken by admin.key",
            ),
            (
                "[ivpay.accounts.pos-2]\napi_key = \"k2\"\n".to_owned(),
                "ivpay.accounts.pos-2: named accounts need ivpay.api_key",
            ),
            (
                "[ivpay]\napi_key = \"k\"\n[ivpay.accounts.default]\napi_key = \"k2\"\n".to_owned(),
                "ivpay.accounts.default: the default account is ivpay.api_key",
            ),
        ];
        for (toml, expected) in cases {
            let err = file_refusal(&toml);
            assert!(err.starts_with(expected), "{toml}\n{err}");
        }
        // A digest equal to the digest of another plaintext key is the same key too.
        let shop_digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"plain"))
        );
        let err = file_refusal(&format!(
            "[clients]\na = \"plain\"\nb = \"{shop_digest}\"\n"
        ));
        assert!(
            err.starts_with("clients.b: the same key as clients.a"),
            "{err}"
        );
    }

    #[test]
    fn accounts_and_client_tables_load_from_file_and_environment() {
        let s = Settings::load_with_env(
            Path::new("/nonexistent/ivpay.toml"),
            false,
            [
                ("IVPAY_IVPAY__API_KEY", "main"),
                ("IVPAY_IVPAY__ACCOUNTS__POS2__API_KEY", "acct-two-secret"),
                ("IVPAY_CLIENTS__KIOSK__KEY", "kiosk-key"),
                ("IVPAY_CLIENTS__KIOSK__SCOPES", "read,create"),
                ("IVPAY_CLIENTS__KIOSK__ACCOUNT", "pos2"),
                (
                    "IVPAY_CLIENTS__KIOSK__REDIRECT_HOSTS",
                    "kiosk.example,*.kiosk.example",
                ),
            ],
        )
        .expect("loads");
        let pos2: AccountId = "pos2".parse().expect("id");
        assert_eq!(
            s.ivpay
                .accounts
                .get(&pos2)
                .map(|a| a.api_key.expose_secret()),
            Some("acct-two-secret")
        );
        let kiosk = s.clients.get(&"kiosk".parse().expect("id")).expect("kiosk");
        assert_eq!(kiosk.account, pos2);
        assert_eq!(kiosk.keys.len(), 1);
        assert!(kiosk.keys[0].scopes.allows(ivpay_api::Scope::Read));
        assert!(!kiosk.keys[0].scopes.allows(ivpay_api::Scope::Admin));
        assert_eq!(kiosk.redirect_hosts.len(), 2);
        assert!(
            !format!("{s:?}").contains("acct-two-secret"),
            "account keys are redacted"
        );
        assert!(
            !format!("{s:?}").contains("kiosk-key"),
            "client keys are redacted"
        );
    }

    // One variable of every section, read from the environment and typed.

    #[test]
    fn server_settings_are_read_from_the_environment() {
        let s = from_env(&[
            ("IVPAY_SERVER__REQUEST_TIMEOUT_SECS", "45"),
            ("IVPAY_SERVER__BIND", "0.0.0.0:9000"),
        ])
        .expect("loads");
        assert_eq!(s.server.request_timeout, Duration::from_secs(45));
        assert_eq!(s.server.bind, SocketAddr::from(([0, 0, 0, 0], 9000)));
    }

    #[test]
    fn database_settings_are_read_from_the_environment() {
        let url = "postgres://ivpay:hunter2@db.internal:5432/ivpay";
        let s = from_env(&[("IVPAY_DATABASE__URL", url)]).expect("loads");
        assert_eq!(s.database.url.expose_secret(), url);
    }

    #[test]
    fn ivpay_settings_are_read_from_the_environment() {
        let s = from_env(&[
            ("IVPAY_IVPAY__BASE_URL", "http://127.0.0.1:8090/api/v4"),
            ("IVPAY_IVPAY__ALLOW_HTTP", "true"),
        ])
        .expect("loads");
        assert_eq!(s.ivpay.base_url.port(), Some(8090));
        assert!(s.ivpay.allow_http);
    }

    #[test]
    fn clients_are_read_from_the_environment_with_lower_cased_names() {
        let s = from_env(&[("IVPAY_CLIENTS__SHOP", "0123")]).expect("loads");
        let shop: ClientId = "shop".parse().expect("name");
        let key = s.clients.get(&shop).expect("the client");
        // Text stays text: a key of digits is not read as the number 123.
        assert_eq!(key.keys[0].key.expose_secret(), "0123");
    }

    #[test]
    fn idempotency_settings_are_read_from_the_environment() {
        // The section the old hand-kept list of sections left out.
        let s = from_env(&[("IVPAY_IDEMPOTENCY__RETENTION_SECS", "3600")]).expect("loads");
        assert_eq!(s.idempotency.retention, Duration::from_secs(3600));
    }

    #[test]
    fn reconciler_settings_are_read_from_the_environment() {
        let s = from_env(&[
            ("IVPAY_RECONCILER__INTERVAL_SECS", "2"),
            ("IVPAY_RECONCILER__ENABLED", "false"),
            ("IVPAY_RECONCILER__INBOX_CONCURRENCY", "3"),
        ])
        .expect("loads");
        assert!(!s.reconciler.enabled);
        assert_eq!(s.reconciler.interval, Duration::from_secs(2));
        assert_eq!(s.reconciler.inbox_concurrency.get(), 3);
    }

    #[test]
    fn log_settings_are_read_from_the_environment() {
        let s = from_env(&[("IVPAY_LOG__FILTER", "warn,ivpay_service=debug")]).expect("loads");
        assert_eq!(s.log.filter.as_str(), "warn,ivpay_service=debug");
    }

    // Which variables are settings.

    #[test]
    fn an_unknown_section_in_the_environment_is_refused_by_name() {
        let err = refusal(&[("IVPAY_RECONCILR__INTERVAL_SECS", "2")]);
        assert!(err.contains("reconcilr"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_the_environment_is_refused_with_its_section() {
        let err = refusal(&[("IVPAY_SERVER__BND", "127.0.0.1:1")]);
        assert!(err.starts_with("server: ") && err.contains("bnd"), "{err}");
    }

    #[test]
    fn variables_without_a_double_underscore_are_not_settings() {
        let s = from_env(&[
            ("IVPAY_TEST_DATABASE_URL", "postgres://x"),
            ("IVPAY_FAULT_POINTS", "create.after_intent_commit=crash"),
            ("IVPAY_CONFIG", "other.toml"),
            ("SERVER__BIND", "nonsense"),
        ])
        .expect("loads");
        assert_eq!(s.server.bind.port(), 8080);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ivpay.toml");
        std::fs::write(
            &path,
            "[reconciler]\ninterval_secs = 7\nmax_delay_secs = 60\n",
        )
        .expect("write");
        let s = Settings::load_with_env(&path, true, [("IVPAY_RECONCILER__INTERVAL_SECS", "3")])
            .expect("loads");
        assert_eq!(s.reconciler.interval, Duration::from_secs(3));
        assert_eq!(
            s.reconciler.max_delay,
            Duration::from_secs(60),
            "the file's"
        );
    }

    // Out of range or of the wrong type: refused, with the key first.

    #[test]
    fn a_zero_interval_is_refused_with_its_key() {
        assert_eq!(
            refusal(&[("IVPAY_RECONCILER__INTERVAL_SECS", "0")]),
            "reconciler.interval_secs: must be at least 1"
        );
    }

    #[test]
    fn every_duration_below_its_minimum_is_refused_with_its_key() {
        let minimums = [
            ("server.request_timeout_secs", 1),
            ("ivpay.connect_timeout_secs", 1),
            ("ivpay.request_timeout_secs", 1),
            ("idempotency.retention_secs", 60),
            ("reconciler.interval_secs", 1),
            ("reconciler.first_check_secs", 1),
            ("reconciler.max_delay_secs", 1),
            ("reconciler.stale_intent_secs", 1),
            ("reconciler.inbox_lease_secs", 1),
        ];
        for (key, min) in minimums {
            let var = format!("IVPAY_{}", key.to_uppercase().replace('.', "__"));
            // first_check may not exceed max_delay, and wait must stay below the request
            // timeout: keep both out of the way.
            let base = [
                ("IVPAY_RECONCILER__FIRST_CHECK_SECS", "1"),
                ("IVPAY_IDEMPOTENCY__WAIT_SECS", "0"),
            ];
            let below = (min - 1).to_string();
            let vars = base.iter().copied().chain([(var.as_str(), below.as_str())]);
            let err = Settings::load_with_env(Path::new("/nonexistent/ivpay.toml"), false, vars)
                .expect_err(key)
                .to_string();
            assert_eq!(err, format!("{key}: must be at least {min}"));
            let at = min.to_string();
            let vars = base.iter().copied().chain([(var.as_str(), at.as_str())]);
            Settings::load_with_env(Path::new("/nonexistent/ivpay.toml"), false, vars).expect(key);
        }
    }

    #[test]
    fn zero_counts_are_refused_with_their_key() {
        for (var, key) in [
            ("IVPAY_SERVER__BODY_LIMIT", "server.body_limit"),
            ("IVPAY_SERVER__RATE_LIMIT_BURST", "server.rate_limit_burst"),
            (
                "IVPAY_DATABASE__MAX_CONNECTIONS",
                "database.max_connections",
            ),
            (
                "IVPAY_RECONCILER__INBOX_CONCURRENCY",
                "reconciler.inbox_concurrency",
            ),
        ] {
            assert_eq!(refusal(&[(var, "0")]), format!("{key}: must be at least 1"));
        }
    }

    #[test]
    fn delivery_gives_way_by_default_and_its_share_is_a_percentage() {
        let s = from_env(&[]).expect("loads");
        assert_eq!((s.notify.busy_creates, s.notify.busy_share_percent), (8, 5));
        let s = from_env(&[
            ("IVPAY_NOTIFY__BUSY_CREATES", "0"),
            ("IVPAY_NOTIFY__BUSY_SHARE_PERCENT", "100"),
        ])
        .expect("loads");
        assert_eq!(
            (s.notify.busy_creates, s.notify.busy_share_percent),
            (0, 100)
        );
        for bad in ["0", "101"] {
            let err = refusal(&[("IVPAY_NOTIFY__BUSY_SHARE_PERCENT", bad)]);
            assert_eq!(
                err,
                format!("notify.busy_share_percent: {bad} is not a share in percent: 1 to 100")
            );
        }
    }

    #[test]
    fn a_rate_limit_of_zero_turns_the_limit_off() {
        let s = from_env(&[("IVPAY_SERVER__RATE_LIMIT_PER_SECOND", "0")]).expect("loads");
        assert_eq!(s.server.rate_limit_per_second, None);
        let s = from_env(&[("IVPAY_SERVER__RATE_LIMIT_PER_SECOND", "7")]).expect("loads");
        assert_eq!(s.server.rate_limit_per_second, NonZeroU32::new(7));
    }

    #[test]
    fn numbers_are_whole_and_not_negative() {
        for bad in ["1.5", "-1", "yes", "", "ten"] {
            let err = refusal(&[("IVPAY_RECONCILER__INTERVAL_SECS", bad)]);
            assert!(
                err.starts_with("reconciler.interval_secs: "),
                "{bad}: {err}"
            );
        }
        let err = file_refusal("[reconciler]\ninterval_secs = 1.5\n");
        assert!(err.starts_with("reconciler.interval_secs: "), "{err}");
    }

    #[test]
    fn a_number_too_large_for_its_type_is_refused() {
        let err = refusal(&[("IVPAY_SERVER__RATE_LIMIT_BURST", "4294967296")]);
        assert_eq!(err, "server.rate_limit_burst: is too large");
        let err = refusal(&[("IVPAY_SERVER__RATE_LIMIT_PER_SECOND", "4294967296")]);
        assert_eq!(err, "server.rate_limit_per_second: is too large");
    }

    #[test]
    fn values_that_do_not_parse_are_refused_with_their_key() {
        for (var, value, key) in [
            ("IVPAY_SERVER__BIND", "localhost", "server.bind: "),
            ("IVPAY_DATABASE__URL", "mysql://db/ivpay", "database.url: "),
            (
                "IVPAY_DATABASE__URL",
                "postgres://[oops/x",
                "database.url: ",
            ),
            ("IVPAY_IVPAY__BASE_URL", "not a url", "ivpay.base_url: "),
            ("IVPAY_IVPAY__ALLOW_HTTP", "sometimes", "ivpay.allow_http: "),
            ("IVPAY_LOG__FILTER", "info,ivpay=loud", "log.filter: "),
            ("IVPAY_LOG__JSON", "sometimes", "log.json: "),
        ] {
            let err = refusal(&[(var, value)]);
            assert!(err.starts_with(key), "{var}={value}: {err}");
        }
    }

    #[test]
    fn a_bad_client_name_is_refused_with_the_name() {
        let err = file_refusal("[clients]\n\"Bad Name\" = \"a-secret\"\n");
        assert!(err.starts_with("clients.Bad Name: "), "{err}");
    }

    #[test]
    fn client_names_from_the_file_keep_their_case() {
        let s = from_file("[clients]\nShop-Frontend = \"a-secret\"\n").expect("loads");
        let name: ClientId = "Shop-Frontend".parse().expect("name");
        assert!(s.clients.contains_key(&name), "{:?}", s.clients.keys());
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert_eq!(
            refusal(&[("IVPAY_CLIENTS__SHOP", "")]),
            "clients.shop: must not be empty"
        );
        assert_eq!(
            refusal(&[("IVPAY_IVPAY__API_KEY", "")]),
            "ivpay.api_key: must not be empty"
        );
        assert_eq!(
            refusal(&[("IVPAY_ADMIN__KEY", "")]),
            "admin.key: must not be empty"
        );
    }

    #[test]
    fn unknown_outcome_settings_are_read_and_checked() {
        let s = from_env(&[
            ("IVPAY_ADMIN__KEY", "operator-secret"),
            ("IVPAY_RECONCILER__UNKNOWN_WEBHOOK_KEEP_SECS", "600"),
            (
                "IVPAY_IVPAY__PAYMENT_URL_TEMPLATE",
                "https://pay.example/p/{payment_id}?from=ivpay",
            ),
        ])
        .expect("loads");
        assert_eq!(s.reconciler.unknown_webhook_keep, Duration::from_secs(600));
        assert_eq!(
            s.ivpay
                .payment_url_template
                .render(&"abc".parse().expect("id"))
                .as_str(),
            "https://pay.example/p/abc?from=ivpay"
        );
        assert!(
            !format!("{s:?}").contains("operator-secret"),
            "the key is a secret"
        );
        assert_eq!(
            refusal(&[("IVPAY_RECONCILER__UNKNOWN_WEBHOOK_KEEP_SECS", "0")]),
            "reconciler.unknown_webhook_keep_secs: must be at least 1"
        );
        let err = refusal(&[("IVPAY_IVPAY__PAYMENT_URL_TEMPLATE", "https://pay.example/")]);
        assert!(
            err.starts_with("ivpay.payment_url_template: ") && err.contains("{payment_id}"),
            "{err}"
        );
        let err = refusal(&[("IVPAY_IVPAY__PAYMENT_URL_TEMPLATE", "ftp://x/{payment_id}")]);
        assert!(err.starts_with("ivpay.payment_url_template: "), "{err}");
    }

    #[test]
    fn the_idempotency_wait_must_end_before_the_request_timeout() {
        assert_eq!(
            refusal(&[("IVPAY_IDEMPOTENCY__WAIT_SECS", "30")]),
            "idempotency.wait_secs: must be below server.request_timeout_secs (30)"
        );
        from_env(&[("IVPAY_IDEMPOTENCY__WAIT_SECS", "29")]).expect("just below");
    }

    #[test]
    fn the_first_check_may_not_come_after_the_longest_delay() {
        assert_eq!(
            refusal(&[("IVPAY_RECONCILER__MAX_DELAY_SECS", "10")]),
            "reconciler.first_check_secs: must not exceed reconciler.max_delay_secs (10)"
        );
        from_env(&[
            ("IVPAY_RECONCILER__MAX_DELAY_SECS", "10"),
            ("IVPAY_RECONCILER__FIRST_CHECK_SECS", "10"),
        ])
        .expect("equal is fine");
    }

    #[test]
    fn a_plain_http_base_url_needs_allow_http() {
        assert_eq!(
            refusal(&[("IVPAY_IVPAY__BASE_URL", "http://127.0.0.1:8090")]),
            "ivpay.base_url: plain http needs ivpay.allow_http = true"
        );
        from_env(&[
            ("IVPAY_IVPAY__BASE_URL", "http://127.0.0.1:8090"),
            ("IVPAY_IVPAY__ALLOW_HTTP", "true"),
        ])
        .expect("allowed");
    }

    #[test]
    fn a_base_url_with_credentials_is_refused() {
        assert_eq!(
            refusal(&[("IVPAY_IVPAY__BASE_URL", "https://u:p@api.ivpay.io/api/v4")]),
            "ivpay.base_url: credentials are not allowed in the URL"
        );
    }

    #[test]
    fn settings_built_in_code_are_checked_too() {
        let mut s = Settings::default();
        s.reconciler.inbox_lease = Duration::from_millis(500);
        assert_eq!(
            s.validate().expect_err("refused").to_string(),
            "reconciler.inbox_lease_secs: must be at least 1"
        );
    }

    // Secrets.

    #[test]
    fn debug_shows_no_secret() {
        let s = from_env(&[
            ("IVPAY_IVPAY__API_KEY", "live-secret"),
            ("IVPAY_CLIENTS__SHOP", "client-secret"),
            (
                "IVPAY_DATABASE__URL",
                "postgres://ivpay:db-secret@db.internal:5432/ivpay",
            ),
        ])
        .expect("loads");
        let shown = format!("{s:?}");
        for secret in ["live-secret", "client-secret", "db-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("postgres://ivpay:REDACTED@db.internal:5432/ivpay"),
            "{shown}"
        );
    }

    #[test]
    fn a_database_url_shows_everything_but_its_password() {
        let show = |text: &str| text.parse::<DatabaseUrl>().expect("a URL").to_string();
        assert_eq!(
            show("postgres://u:p%40ss@db:5432/x?sslmode=disable"),
            "postgres://u:REDACTED@db:5432/x?sslmode=disable"
        );
        assert_eq!(
            show("postgres://u@db/x?sslmode=disable&password=p4ss"),
            "postgres://u@db/x?sslmode=disable&password=REDACTED"
        );
        assert_eq!(show("postgresql://u@db/x"), "postgresql://u@db/x");
        assert_eq!(
            show("sqlite://ivpay.db?mode=rwc"),
            "sqlite://ivpay.db?mode=rwc"
        );
        assert_eq!(show("sqlite::memory:"), "sqlite::memory:");
    }

    // The file and the defaults.

    #[test]
    fn every_section_is_read_from_the_file() {
        let s = from_file(
            "[server]\nbind = \"127.0.0.1:0\"\n[database]\nmax_connections = 2\n\
             [ivpay]\napi_key = \"k\"\n[clients]\nshop = \"c\"\n\
             [idempotency]\nretention_secs = 3600\nwait_secs = 5\n\
             [reconciler]\nstale_intent_secs = 60\n[log]\njson = true\n",
        )
        .expect("loads");
        assert_eq!(s.server.bind.port(), 0);
        assert_eq!(s.database.max_connections.get(), 2);
        assert!(!s.uses_embedded_sandbox());
        assert_eq!(s.clients.len(), 1);
        assert_eq!(s.idempotency.retention, Duration::from_secs(3600));
        assert_eq!(s.idempotency.wait, Duration::from_secs(5));
        assert_eq!(s.reconciler.stale_intent, Duration::from_secs(60));
        assert!(s.log.json);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let err = file_refusal("[server]\nbnd = \"x\"\n");
        assert!(err.starts_with("server: ") && err.contains("bnd"), "{err}");
    }

    #[test]
    fn a_missing_optional_file_gives_the_defaults() {
        let s = from_env(&[]).expect("defaults");
        assert!(s.uses_embedded_sandbox());
        assert_eq!(s.server.bind.port(), 8080);
        assert_eq!(format!("{s:?}"), format!("{:?}", Settings::default()));
    }

    #[test]
    fn a_missing_required_file_is_refused() {
        let err = Settings::load_with_env(
            Path::new("/nonexistent/ivpay.toml"),
            true,
            std::iter::empty::<(String, String)>(),
        )
        .expect_err("refused")
        .to_string();
        assert!(err.contains("/nonexistent/ivpay.toml"), "{err}");
    }
}
