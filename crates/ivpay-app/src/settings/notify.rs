//! `[notify]`: outbound notifications to clients' endpoints, and endpoints given in the
//! configuration.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use ivpay_domain::{ClientId, EndpointId, EndpointUrl, NoticeFilter};
use ivpay_persistence::SecretsKeys;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::Deserializer;

use super::tenancy::List;
use super::{at_least_one, secs};

/// `[notify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Run the delivery worker. Default true. Off, notices are still written (with the
    /// changes they announce) and wait for a worker.
    pub enabled: bool,
    /// Let endpoints on loopback and private addresses through (development). Unset: on in
    /// sandbox mode on a loopback address, off otherwise. Link-local and cloud metadata
    /// addresses are refused either way.
    pub allow_private_targets: Option<bool>,
    /// `interval_millis`: how often an idle worker looks for due notifications. At least
    /// 10 ms. Default 250 ms.
    #[serde(rename = "interval_millis", deserialize_with = "millis")]
    pub interval: Duration,
    /// Notifications claimed per pass. Default 64.
    #[serde(deserialize_with = "at_least_one")]
    pub batch: NonZeroU32,
    /// Attempts in flight at once. Default 16.
    #[serde(deserialize_with = "at_least_one")]
    pub concurrency: NonZeroUsize,
    /// `timeout_secs`: how long one attempt may take, connecting included. At least 1 s.
    /// Default 15 s.
    #[serde(rename = "timeout_secs", deserialize_with = "secs")]
    pub timeout: Duration,
    /// `retry_schedule_secs`: the waits between attempts (the first goes at once). Default
    /// 5, 300, 1800, 7200, 18000, 36000, 36000, 86400, 86400: about three days.
    #[serde(rename = "retry_schedule_secs", deserialize_with = "schedule")]
    pub retry_schedule: Vec<Duration>,
    /// `disable_after_secs`: an endpoint whose every attempt failed for this long is
    /// disabled. At least 1 s. Default 432000 s (5 days).
    #[serde(rename = "disable_after_secs", deserialize_with = "secs")]
    pub disable_after: Duration,
    /// How many payments being created at once make the service busy; 0 for never.
    /// While it is busy, delivery passes take at most `busy_share_percent` of the time, so
    /// a burst of creates is not slowed by its own notices, which wait (never lost) and go
    /// at full speed when the burst is over. Default 8.
    pub busy_creates: usize,
    /// The share of the time (percent) delivery passes may take while the service is
    /// busy: 1 to 100, 100 for no pause. Default 5.
    #[serde(deserialize_with = "percent")]
    pub busy_share_percent: u8,
    /// `directory_refresh_secs`: how often the list of listening endpoints is read again
    /// (an endpoint added through another instance is heard from within this). At least
    /// 1 s. Default 5 s.
    #[serde(rename = "directory_refresh_secs", deserialize_with = "secs")]
    pub directory_refresh: Duration,
    /// `secrets_keys`: keys that seal endpoint signing secrets in the database
    /// (ChaCha20-Poly1305), each 32 bytes in base64 (`openssl rand -base64 32`), as a list
    /// or separated by commas. The first seals; every one opens, so a new key goes first and
    /// the old one stays until the start-up has sealed every row anew. Unset: secrets are
    /// stored in clear (a warning at start outside the sandbox).
    #[serde(deserialize_with = "secrets_keys")]
    pub secrets_keys: Option<SecretsKeys>,
    /// Endpoints given here rather than through `/admin/endpoints`, by id; written to the
    /// database at start (URL, secret, events and description from here; a disabled one
    /// stays disabled until an operator enables it).
    pub endpoints: BTreeMap<EndpointId, EndpointSettings>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_private_targets: None,
            interval: Duration::from_millis(250),
            batch: const { NonZeroU32::new(64).expect("not zero") },
            concurrency: const { NonZeroUsize::new(16).expect("not zero") },
            timeout: Duration::from_secs(15),
            retry_schedule: ivpay_service::NotifyConfig::default_schedule(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            directory_refresh: Duration::from_secs(5),
            busy_creates: 8,
            busy_share_percent: 5,
            secrets_keys: None,
            endpoints: BTreeMap::new(),
        }
    }
}

/// `[notify.endpoints.<id>]`: an endpoint given in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// The client whose payments it hears about.
    pub client: ClientId,
    /// Where notices are posted.
    #[serde(deserialize_with = "endpoint_url")]
    pub url: EndpointUrl,
    /// Its signing secret, `whsec_` and base64 of 24 to 64 bytes.
    pub secret: SecretString,
    /// The types it wants: a list, or text separated by commas; empty or `*` for every
    /// type.
    #[serde(default, deserialize_with = "events")]
    pub events: NoticeFilter,
    /// A note for people.
    #[serde(default)]
    pub description: Option<String>,
}

fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let n = u8::deserialize(deserializer)?;
    if (1..=100).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} is not a share in percent: 1 to 100"
        )))
    }
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

fn secrets_keys<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretsKeys>, D::Error> {
    let List(texts) = List::<KeyText>::deserialize(deserializer)?;
    if texts.is_empty() {
        return Ok(None);
    }
    SecretsKeys::from_base64(&texts)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// One key as written; its bytes are checked by [`SecretsKeys::from_base64`].
struct KeyText(String);

impl std::str::FromStr for KeyText {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Self(s.to_owned()))
    }
}

impl AsRef<str> for KeyText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn schedule<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
    let List(secs) = List::<Seconds>::deserialize(deserializer)?;
    Ok(secs.into_iter().map(|s| s.0).collect())
}

/// One wait of the schedule, at least a second.
struct Seconds(Duration);

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Self(Duration::from_secs(n))),
            _ => Err(format!(
                "{s:?} is not a whole number of seconds, at least 1"
            )),
        }
    }
}

fn endpoint_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EndpointUrl, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// An event type, or `*` for every type, for a [`List`].
struct EventName(Option<ivpay_domain::NoticeType>);

impl std::str::FromStr for EventName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self(None));
        }
        s.parse()
            .map(|t| Self(Some(t)))
            .map_err(|e: ivpay_domain::UnknownNoticeType| e.to_string())
    }
}

fn events<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NoticeFilter, D::Error> {
    let List(names) = List::<EventName>::deserialize(deserializer)?;
    // `*` among them means every type, as an empty list does.
    let types: Option<Vec<_>> = names.into_iter().map(|n| n.0).collect();
    Ok(types.map_or_else(NoticeFilter::all, NoticeFilter::of))
}
