//! Outbound notifications: endpoints, and what a notice says about a payment.
//!
//! A *notice* announces one change of one payment (`payment.paid`, ...). Each client may
//! register *endpoints* (a URL, the notice types it wants); every notice is delivered to
//! every enabled endpoint of the payment's owner that wants its type.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::{ClientId, IdError};
use crate::notice_type::{NoticeFilter, NoticeType};
use crate::payment::Payment;
use crate::redirect::{RedirectUrl, UrlError};
use crate::time::Timestamp;

/// Where an endpoint receives notices: an absolute http(s) URL without user info.
///
/// Whether its host may be reached (not loopback, private or link-local) is decided when a
/// notice is sent, not here: a name can resolve to another address tomorrow.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EndpointUrl(RedirectUrl);

impl EndpointUrl {
    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Its host, for logs: clients put tokens in paths and queries, so those stay out.
    pub fn host(&self) -> String {
        self.0.host()
    }
}

impl FromStr for EndpointUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        let url: RedirectUrl = s.parse()?;
        if s.contains('@')
            && url::Url::parse(s).is_ok_and(|u| {
                u.has_authority() && (!u.username().is_empty() || u.password().is_some())
            })
        {
            return Err(UrlError::Invalid(
                "user info (user:password@) is not allowed in an endpoint URL".into(),
            ));
        }
        Ok(Self(url))
    }
}

impl TryFrom<String> for EndpointUrl {
    type Error = UrlError;
    fn try_from(s: String) -> Result<Self, UrlError> {
        s.parse()
    }
}

impl From<EndpointUrl> for String {
    fn from(u: EndpointUrl) -> String {
        u.0.into()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An endpoint's id: `ep_` and 32 hex digits when made through the API, or a name given
/// in the configuration. 1 to 64 characters of `A-Z a-z 0-9 _ -`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EndpointId(String);

impl EndpointId {
    /// Longest accepted id.
    pub const MAX_LEN: usize = 64;

    /// A new id from a UUID made elsewhere (the service makes random ones).
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(format!("ep_{}", id.simple()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(s: &str) -> Result<(), IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let got = s.chars().count();
        if got > Self::MAX_LEN {
            return Err(IdError::TooLong {
                max: Self::MAX_LEN,
                got,
            });
        }
        if let Some((position, found)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(IdError::BadCharacter {
                found,
                position,
                allowed: "A-Z a-z 0-9 _ -",
            });
        }
        Ok(())
    }
}

impl FromStr for EndpointId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::check(s)?;
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for EndpointId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::check(&s)?;
        Ok(Self(s))
    }
}

impl From<EndpointId> for String {
    fn from(id: EndpointId) -> String {
        id.0
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An endpoint's signing secrets (`whsec_...`), newest first. Every one signs each
/// notice while several are held (a rotation), so a receiver that knows either verifies.
///
/// The text is opaque here; the edges check it with `ivpay-signing`. `Debug` shows how many
/// there are, never what they are.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EndpointSecrets(Vec<String>);

impl EndpointSecrets {
    /// Secrets as given, newest first.
    pub fn new(secrets: Vec<String>) -> Self {
        Self(secrets)
    }

    /// The secrets' text, for signing and storage only.
    pub fn expose(&self) -> &[String] {
        &self.0
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for EndpointSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointSecrets({} redacted)", self.0.len())
    }
}

/// A client's endpoint: where its notices go and which it wants.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Endpoint {
    /// Its id.
    pub id: EndpointId,
    /// The client whose payments it hears about.
    pub client: ClientId,
    /// Where notices are posted.
    pub url: EndpointUrl,
    /// Signing secrets, newest first.
    pub secrets: EndpointSecrets,
    /// The types it wants.
    pub filter: NoticeFilter,
    /// A note for people (what system listens there).
    pub description: Option<String>,
    /// `None` while enabled; why it was disabled otherwise.
    pub disabled: Option<Disabled>,
    /// Since when every attempt to it failed, while that lasts.
    pub failing_since: Option<Timestamp>,
    /// When it was added.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Endpoint {
    /// Whether notices are sent to it.
    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// Whether a notice of `kind` for `client` goes here now.
    pub fn wants(&self, client: &ClientId, kind: NoticeType) -> bool {
        self.is_enabled() && &self.client == client && self.filter.wants(kind)
    }
}

/// Why and when an endpoint was disabled.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Disabled {
    /// `operator`, `gone` (it answered 410) or `failing` (every attempt failed for too long).
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A payment as a notice carries it: the same fields, named the same, as
/// `GET /payment/{id}` answers (ivpay-api holds a test to that).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PaymentSnapshot {
    /// IVPAY's id (null while the create's outcome is not `created`).
    pub payment_id: Option<String>,
    /// The client's reference.
    pub foreign_id: Option<String>,
    /// When IVPAY processed the current status (Unix seconds).
    pub processed_at: Option<i64>,
    /// The status.
    pub status: &'static str,
    /// Our id.
    pub id: String,
    /// The checkout page.
    pub payment_url: Option<String>,
    /// When IVPAY created it, or when we recorded it if IVPAY has not said.
    pub created_at: i64,
    /// The amount at the currency's scale.
    pub amount_fiat: String,
    /// The currency code.
    pub currency_fiat: &'static str,
    /// As sent.
    pub url_success: Option<String>,
    /// As sent.
    pub url_failed: Option<String>,
    /// Our create call: initiated, created, rejected, unknown or abandoned.
    pub outcome: &'static str,
    /// Why, for rejected, unknown and abandoned.
    pub outcome_reason: Option<String>,
    /// Whether the status is PAID or TIMEOUT.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// When we recorded the intent.
    pub recorded_at: i64,
    /// When our record last changed.
    pub updated_at: i64,
    /// Our record's version.
    pub version: u64,
}

impl PaymentSnapshot {
    /// The payment as it is now.
    pub fn of(p: &Payment) -> Self {
        let up = p.upstream();
        Self {
            payment_id: up.map(|u| u.payment_id.to_string()),
            foreign_id: p.foreign_id().map(ToString::to_string),
            processed_at: p.processed_at().map(Timestamp::unix_seconds),
            status: p.status().as_str(),
            id: p.id().to_string(),
            payment_url: up.map(|u| u.payment_url.to_string()),
            created_at: up.map_or(p.created_at(), |u| u.created_at).unix_seconds(),
            amount_fiat: p.money().amount().to_string(),
            currency_fiat: p.money().currency().code(),
            url_success: p.url_success().map(ToString::to_string),
            url_failed: p.url_failed().map(ToString::to_string),
            outcome: p.outcome().as_str(),
            outcome_reason: p.outcome().reason().map(str::to_owned),
            is_final: p.is_final(),
            recorded_at: p.created_at().unix_seconds(),
            updated_at: p.updated_at().unix_seconds(),
            version: p.version(),
        }
    }
}

/// A notice's body: `{"type", "timestamp", "sequence", "data"}`, as the Standard Webhooks
/// specification suggests, with `sequence` the payment's version after the change (it
/// grows with every change of one payment, so a receiver can put notices in order and
/// drop one older than what it holds).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct NoticeBody {
    /// `payment.<what>`.
    #[serde(rename = "type")]
    pub kind: NoticeType,
    /// When the change was recorded, RFC 3339 in UTC.
    pub timestamp: String,
    /// The payment's version after the change.
    pub sequence: u64,
    /// The payment after the change.
    pub data: PaymentSnapshot,
}

impl NoticeBody {
    /// The body announcing `kind` for `payment` as it is now.
    pub fn of(kind: NoticeType, payment: &Payment) -> Self {
        Self {
            kind,
            timestamp: payment.updated_at().to_rfc3339(),
            sequence: payment.version(),
            data: PaymentSnapshot::of(payment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_refuse_user_info_and_non_http_schemes() {
        assert!("https://shop.example/hooks".parse::<EndpointUrl>().is_ok());
        assert!(
            "https://u:p@shop.example/hooks"
                .parse::<EndpointUrl>()
                .is_err()
        );
        assert!("ftp://shop.example/hooks".parse::<EndpointUrl>().is_err());
        assert!("https://shop.example/a@b".parse::<EndpointUrl>().is_ok());
    }

    #[test]
    fn endpoint_ids_keep_to_their_alphabet_and_secrets_never_show() {
        let id = EndpointId::from_uuid(uuid::Uuid::from_u128(1));
        assert_eq!(id.as_str(), "ep_00000000000000000000000000000001");
        assert!("orders-hook_2".parse::<EndpointId>().is_ok());
        assert!("a/b".parse::<EndpointId>().is_err());
        assert!("x".repeat(65).parse::<EndpointId>().is_err());
        let secrets = EndpointSecrets::new(vec!["whsec_c2VjcmV0c2VjcmV0c2VjcmV0".into()]);
        assert_eq!(format!("{secrets:?}"), "EndpointSecrets(1 redacted)");
    }

    fn payment() -> Payment {
        let request = crate::NewPayment::from_fields("12.5", "EUR", Some("order-7"), None, None)
            .expect("valid");
        Payment::initiate(
            crate::InternalId::from_uuid(uuid::Uuid::from_u128(9)),
            "shop".parse().expect("client"),
            crate::AccountId::default(),
            request,
            Timestamp::from_unix_seconds(1_614_265_330),
        )
    }

    #[test]
    fn a_body_carries_the_type_the_time_the_version_and_the_payment() {
        let mut p = payment();
        p.mark_rejected("bad".into(), Timestamp::from_unix_seconds(1_614_265_331))
            .expect("settles");
        let body = serde_json::to_value(NoticeBody::of(NoticeType::Rejected, &p)).expect("json");
        assert_eq!(body["type"], "payment.rejected");
        assert_eq!(body["timestamp"], "2021-02-25T15:02:11Z");
        assert_eq!(body["sequence"], 2);
        assert_eq!(body["data"]["amount_fiat"], "12.50");
        assert_eq!(body["data"]["foreign_id"], "order-7");
        assert_eq!(body["data"]["outcome"], "rejected");
        assert_eq!(body["data"]["outcome_reason"], "bad");
        assert_eq!(body["data"]["final"], false);
        assert_eq!(body["data"]["version"], 2);
    }
}
