//! Settings: built-in defaults, then `ivpay.toml` (if present), then `IVPAY_*` environment
//! variables (`__` between levels: `IVPAY_DATABASE__URL`). Every value is typed at load, so
//! bad configuration stops the start with the key named. Secrets are `SecretString`:
//! `Debug` shows `[REDACTED]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;

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
    /// Our API clients: name → key. Keys are kept only as SHA-256 digests once loaded.
    pub clients: BTreeMap<String, SecretString>,
    /// Idempotency keys on create.
    pub idempotency: IdempotencySettings,
    /// The background poller for payments webhooks missed.
    pub reconciler: ReconcilerSettings,
    /// Logs.
    pub log: LogSettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Largest request body in bytes. Default 65536.
    pub body_limit: usize,
    /// Seconds a request may take before it is cut off. Default 30.
    pub request_timeout_secs: u64,
    /// Requests per second each client may make on average (429 above); 0 turns the
    /// limit off. Default 100.
    pub rate_limit_per_second: u32,
    /// Requests a client may make at once after a quiet spell. Default 200.
    pub rate_limit_burst: u32,
    /// Seconds in-flight requests get to finish after a shutdown signal; connections
    /// still open then are dropped. Default 30.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: 64 * 1024,
            request_timeout_secs: 30,
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            shutdown_grace_secs: 30,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://FILE?mode=rwc` or `postgres://...`. Default `sqlite://ivpay.db?mode=rwc`.
    pub url: String,
    /// Pool size. Default 8.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://ivpay.db?mode=rwc".into(),
            max_connections: 8,
        }
    }
}

/// `[ivpay]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IvpaySettings {
    /// IVPAY's API base URL. Default `https://api.ivpay.io/api/v4`.
    pub base_url: String,
    /// The merchant API key. Unset: run against an embedded sandbox.
    pub api_key: Option<SecretString>,
    /// Allow a plain-http base URL (tests, a local sandbox). Default false.
    pub allow_http: bool,
    /// Seconds to wait for a connection. Default 5.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a whole request. Default 15.
    pub request_timeout_secs: u64,
}

impl Default for IvpaySettings {
    fn default() -> Self {
        Self {
            base_url: ivpay_http_adapter::DEFAULT_BASE_URL.into(),
            api_key: None,
            allow_http: false,
            connect_timeout_secs: 5,
            request_timeout_secs: 15,
        }
    }
}

/// `[idempotency]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// Seconds a key is remembered (IETF draft: at least a day). Default 86400.
    pub retention_secs: u64,
    /// Seconds a repeated request waits for the first one with its key to finish before
    /// answering 409. Keep it below `server.request_timeout_secs`. Default 20.
    pub wait_secs: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            retention_secs: 24 * 3600,
            wait_secs: 20,
        }
    }
}

/// `[reconciler]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerSettings {
    /// Run the poller. Default true.
    pub enabled: bool,
    /// Seconds between passes when there was nothing to do. Default 5.
    pub interval_secs: u64,
    /// Seconds before the first check of a new payment; the back-off doubles from here.
    /// Default 30.
    pub first_check_secs: u64,
    /// Longest pause between two checks of one payment, in seconds. Default 3600.
    pub max_delay_secs: u64,
    /// Seconds after which an intent still waiting for IVPAY's answer is taken for the
    /// trace of a dead request and settled as *unknown*. Must exceed the longest create
    /// call. Default 300.
    pub stale_intent_secs: u64,
    /// Seconds a webhook being confirmed is kept from other workers; one whose process
    /// died mid-way is retried after this long. Must exceed the longest confirmation
    /// (IVPAY's GET with its retries). Default 60.
    pub inbox_lease_secs: u64,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 5,
            first_check_secs: 30,
            max_delay_secs: 3600,
            stale_intent_secs: 300,
            inbox_lease_secs: 60,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info,ivpay_service=debug`. Default `info`.
    pub filter: String,
    /// JSON lines instead of human-readable text. Default false.
    pub json: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            json: false,
        }
    }
}

/// The top-level sections, as spelled in environment variables.
const SECTIONS: [&str; 6] = [
    "SERVER",
    "DATABASE",
    "IVPAY",
    "CLIENTS",
    "RECONCILER",
    "LOG",
];

/// Configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(#[from] config::ConfigError);

impl Settings {
    /// Loads defaults < `file` (optional unless `required`) < `IVPAY_*` environment.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key that is missing, unknown or of the wrong type.
    pub fn load(file: &Path, required: bool) -> Result<Self, SettingsError> {
        // Only variables that name a section are settings: IVPAY_TEST_DATABASE_URL and
        // friends belong to the test suites and must not trip the unknown-key check.
        let env: config::Map<String, String> = std::env::vars()
            .filter(|(k, _)| {
                SECTIONS.iter().any(|s| {
                    k.strip_prefix("IVPAY_")
                        .and_then(|rest| rest.strip_prefix(s))
                        .is_some_and(|rest| rest.starts_with("__"))
                })
            })
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from(file).required(required))
            .add_source(
                config::Environment::with_prefix("IVPAY")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()?;
        Ok(built.try_deserialize()?)
    }

    /// Whether no IVPAY key is configured, so an embedded sandbox stands in.
    pub fn uses_embedded_sandbox(&self) -> bool {
        self.ivpay.api_key.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_secrets_stay_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ivpay.toml");
        std::fs::write(
            &path,
            "[server]\nbind = \"127.0.0.1:0\"\n[ivpay]\napi_key = \"live-secret\"\n[clients]\nshop = \"client-secret\"\n",
        )
        .expect("write");
        let s = Settings::load(&path, true).expect("loads");
        assert_eq!(s.server.bind.port(), 0);
        assert_eq!(s.database.url, "sqlite://ivpay.db?mode=rwc");
        assert!(!s.uses_embedded_sandbox());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("live-secret") && !shown.contains("client-secret"),
            "{shown}"
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ivpay.toml");
        std::fs::write(&path, "[server]\nbnd = \"x\"\n").expect("write");
        let err = Settings::load(&path, true)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn every_section_is_read_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ivpay.toml");
        std::fs::write(
            &path,
            "[idempotency]\nretention_secs = 3600\nwait_secs = 5\n[reconciler]\nstale_intent_secs = 60\n[log]\njson = true\n",
        )
        .expect("write");
        let s = Settings::load(&path, true).expect("loads");
        assert_eq!(
            (s.idempotency.retention_secs, s.idempotency.wait_secs),
            (3600, 5)
        );
        assert_eq!(s.reconciler.stale_intent_secs, 60);
        assert!(s.log.json);
    }

    #[test]
    fn a_missing_optional_file_gives_the_defaults() {
        let s = Settings::load(Path::new("/nonexistent/ivpay.toml"), false).expect("defaults");
        assert!(s.uses_embedded_sandbox());
        assert_eq!(s.server.bind.port(), 8080);
    }
}
