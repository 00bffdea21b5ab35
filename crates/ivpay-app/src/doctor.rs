//! `ivpay-app doctor`: is this deployment configured and able to work? One line per check,
//! each failure with the fix, and a non-zero exit when any check fails. It changes
//! nothing (but for creating an empty SQLite file where `database.url` names one that does
//! not exist yet): no migration is run, and IVPAY is only asked to read a payment that
//! does not exist (which shows the key is accepted).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ivpay_http_adapter::{IvpayClient, IvpayError, RetryPolicy};
use secrecy::SecretString;

use crate::settings::{Settings, SettingsError};

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// Works, but not as advised.
    Warn,
    Fail,
    /// Not applicable here.
    Skip,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok  ",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        })
    }
}

/// One check's line: what, how it came out, and for a failure or a warning the fix.
#[derive(Clone, Debug)]
pub(crate) struct Check {
    pub(crate) verdict: Verdict,
    pub(crate) what: String,
    pub(crate) fix: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn skip(what: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Skip,
            what: what.into(),
            fix: None,
        }
    }

    fn bad(verdict: Verdict, what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            verdict,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verdict, self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

/// Longest a check waits for a database or IVPAY.
const PATIENCE: Duration = Duration::from_secs(5);
/// Largest clock difference with IVPAY that passes.
const MAX_SKEW: Duration = Duration::from_secs(30);

/// Every check, in order. `settings` is what loading the configuration gave.
pub(crate) async fn checks(settings: Result<Settings, SettingsError>) -> Vec<Check> {
    // reqwest is built without a crypto provider (crates.md): ring, as the adapter's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::bad(
                Verdict::Fail,
                format!("configuration: {e}"),
                "correct the setting named above (docs/configuration.md lists every one)",
            )];
        }
    };
    let mut out = vec![Check::ok("configuration loads and every setting is valid")];
    out.extend(database(&settings).await);
    out.extend(ivpay(&settings).await);
    out.push(webhook_route(&settings).await);
    out
}

async fn database(settings: &Settings) -> Vec<Check> {
    let url = settings.database.url.expose_secret();
    let shown = settings.database.url.to_string();
    let connected = tokio::time::timeout(
        PATIENCE,
        ivpay_persistence::connect(url, &ivpay_persistence::DatabaseOptions::default()),
    )
    .await;
    let db = match connected {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            return vec![Check::bad(
                Verdict::Fail,
                format!("database {shown} does not answer: {e}"),
                "start the database, or correct database.url (IVPAY_DATABASE__URL): host, port, name, user and password",
            )];
        }
        Err(_) => {
            return vec![Check::bad(
                Verdict::Fail,
                format!(
                    "database {shown} did not answer within {} s",
                    PATIENCE.as_secs()
                ),
                "check that the database's host and port are reachable from here (firewall, DNS)",
            )];
        }
    };
    let mut out = vec![Check::ok(format!("database {shown} answers"))];
    match ivpay_persistence::pending_migrations(&db).await {
        Ok(pending) if pending.is_empty() => out.push(Check::ok("database schema is up to date")),
        Ok(pending) => out.push(Check::bad(
            Verdict::Fail,
            format!(
                "database schema is behind: {} not applied ({})",
                pending.len(),
                pending.join(", ")
            ),
            "run `ivpay-app migrate` (serve also migrates at start)",
        )),
        Err(e) => out.push(Check::bad(
            Verdict::Fail,
            format!("database schema cannot be read: {e}"),
            "check that database.url names ivpay's database and its user may read it",
        )),
    }
    match db.sqlite_settings().await {
        Ok(None) => {}
        Ok(Some(s)) => {
            let advised = s.journal_mode.eq_ignore_ascii_case("wal")
                && s.synchronous.eq_ignore_ascii_case("normal")
                && s.foreign_keys
                && s.busy_timeout >= Duration::from_secs(1);
            let what = format!(
                "SQLite settings: journal_mode={}, synchronous={}, foreign_keys={}, busy_timeout={} ms",
                s.journal_mode,
                s.synchronous,
                s.foreign_keys,
                s.busy_timeout.as_millis()
            );
            out.push(if advised {
                Check::ok(what)
            } else {
                Check::bad(
                    Verdict::Warn,
                    what,
                    "ivpay sets WAL, synchronous=NORMAL, foreign keys and a 5 s busy timeout on every connection; a file on a network share or a read-only directory can refuse WAL: keep the database on a local disk",
                )
            });
        }
        Err(e) => out.push(Check::bad(
            Verdict::Warn,
            format!("SQLite settings cannot be read: {e}"),
            "check the file's permissions",
        )),
    }
    let _ = db.close().await;
    out
}

/// Asks IVPAY, with each account's key, for a payment that cannot exist: "not found" means
/// IVPAY is reachable and took the key. Also compares clocks with IVPAY's `Date` header.
async fn ivpay(settings: &Settings) -> Vec<Check> {
    let Some(default_key) = &settings.ivpay.api_key else {
        return vec![Check::skip(
            "IVPAY: sandbox mode (no ivpay.api_key): the embedded simulator stands in",
        )];
    };
    let base = settings.ivpay.base_url.to_string();
    let mut accounts: Vec<(String, &SecretString)> = vec![("ivpay.api_key".into(), default_key)];
    for (name, account) in &settings.ivpay.accounts {
        accounts.push((format!("ivpay.accounts.{name}.api_key"), &account.api_key));
    }
    let mut out = Vec::new();
    for (setting, key) in accounts {
        out.push(probe(settings, &base, &setting, key).await);
    }
    out.push(clock(&base, settings.ivpay.allow_http).await);
    out
}

async fn probe(settings: &Settings, base: &str, setting: &str, key: &SecretString) -> Check {
    let client = match IvpayClient::builder(key.clone())
        .base_url(base.to_owned())
        .allow_http(settings.ivpay.allow_http)
        .connect_timeout(PATIENCE)
        .request_timeout(PATIENCE)
        .retry_policy(RetryPolicy::NONE)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Check::bad(
                Verdict::Fail,
                format!("IVPAY client for {setting}: {e}"),
                "correct ivpay.base_url or the key",
            );
        }
    };
    let nobody = format!("ivpay-doctor-{}", std::process::id())
        .parse()
        .expect("letters, digits and dashes make a payment id");
    match client.get_payment(&nobody).await {
        Err(IvpayError::NotFound { .. }) | Ok(_) => {
            Check::ok(format!("IVPAY at {base} answers and accepts {setting}"))
        }
        Err(IvpayError::Unauthorized) => Check::bad(
            Verdict::Fail,
            format!("IVPAY at {base} refuses {setting} (401 Wrong auth parameters)"),
            format!(
                "set {setting} to the key of your IVPAY account (IVPAY_{}); look for a typo, a stray space or a key of another account",
                setting.to_uppercase().replace('.', "__").replace('-', "_")
            ),
        ),
        Err(IvpayError::Unavailable { cause, .. }) => Check::bad(
            Verdict::Fail,
            format!("IVPAY at {base} cannot be reached: {cause}"),
            "check ivpay.base_url, DNS and the firewall toward IVPAY (outgoing HTTPS); if IVPAY is down, try again later",
        ),
        Err(other) => Check::bad(
            Verdict::Fail,
            format!("IVPAY at {base} answered oddly: {other}"),
            "check that ivpay.base_url is IVPAY's API (not its web site or a proxy's page)",
        ),
    }
}

async fn clock(base: &str, allow_http: bool) -> Check {
    let Ok(http) = reqwest::Client::builder()
        .timeout(PATIENCE)
        .https_only(!allow_http)
        .build()
    else {
        return Check::skip("clock: no HTTP client");
    };
    let date = match http.head(base).send().await {
        Ok(answer) => answer
            .headers()
            .get("date")
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok()),
        Err(_) => None,
    };
    let Some(theirs) = date else {
        return Check::skip("clock: IVPAY sent no Date header to compare with");
    };
    let ours = SystemTime::now();
    let skew = ours
        .duration_since(theirs)
        .or_else(|_| theirs.duration_since(ours))
        .unwrap_or_default();
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if skew <= MAX_SKEW {
        Check::ok(format!("clock within {} s of IVPAY's", skew.as_secs()))
    } else {
        Check::bad(
            Verdict::Fail,
            format!(
                "clock is {} s off IVPAY's (ours {}, theirs {})",
                skew.as_secs(),
                secs(ours),
                secs(theirs)
            ),
            "synchronise this machine's clock (NTP: chrony or systemd-timesyncd); payment times and webhook checks depend on it",
        )
    }
}

/// Whether the service's webhook route answers where it listens: it must refuse an
/// unsigned notice with 401 (so the route is there and checks keys).
async fn webhook_route(settings: &Settings) -> Check {
    let bind = settings.server.bind;
    let host = if bind.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bind.ip().to_string()
    };
    let url = if bind.is_ipv6() && !bind.ip().is_unspecified() {
        format!("http://[{host}]:{}/webhooks/ivpay", bind.port())
    } else {
        format!("http://{host}:{}/webhooks/ivpay", bind.port())
    };
    let Ok(http) = reqwest::Client::builder().timeout(PATIENCE).build() else {
        return Check::skip("webhook route: no HTTP client");
    };
    match http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(r#"{"payment_id":"doctor"}"#)
        .send()
        .await
    {
        Ok(r) if r.status().as_u16() == 401 => Check::ok(format!(
            "webhook route {url} answers (and refuses a notice without IVPAY's key)"
        )),
        Ok(r) => Check::bad(
            Verdict::Fail,
            format!("webhook route {url} answered {}", r.status()),
            "another program listens on server.bind; stop it or change server.bind",
        ),
        Err(_) => Check::bad(
            Verdict::Warn,
            format!("webhook route {url} does not answer: the service is not running here"),
            "start it (`ivpay-app serve`), then set the webhook URL in IVPAY's dashboard to this route as IVPAY reaches it (your public address)",
        ),
    }
}
