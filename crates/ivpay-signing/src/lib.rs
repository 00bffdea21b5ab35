//! Standard Webhooks signatures for ivpay's notifications: how ivpay signs each notice it
//! posts to a client's endpoint, and how a receiver checks one.
//!
//! **Role.** Pure computation, shared by the sender (ivpay-service) and by merchants'
//! receivers, who may depend on this crate alone. No IO, no async, no clock unless asked
//! ([`verify_now`]).
//!
//! **May depend on:** `hmac`, `sha2`, `base64`, `getrandom` (new secrets and message ids),
//! `thiserror`, and `http` behind the default `http` feature.
//!
//! The scheme, as the [Standard Webhooks](https://www.standardwebhooks.com) specification
//! defines it:
//!
//! - three headers: `webhook-id` (the message id, the same on every retry),
//!   `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`;
//! - the signed text is `{id}.{timestamp}.{body}`, the body byte for byte;
//! - a signature is `v1,` and the base64 of its HMAC-SHA256, keyed with the secret's bytes;
//! - a secret is written `whsec_` and the base64 of its bytes;
//! - while a secret is rotated the header holds one signature per secret, separated by
//!   spaces, and a receiver accepts any one that matches a secret it holds.
//!
//! ```
//! use std::time::Duration;
//! use ivpay_signing::{Headers, SigningSecret};
//!
//! let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"test": 2432232314}"#;
//! let signature = ivpay_signing::sign(&[secret.clone()], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let headers = Headers {
//!     id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
//!     timestamp: "1614265330",
//!     signature: &signature,
//! };
//! ivpay_signing::verify(&[secret], &headers, body, 1614265330 + 10, Duration::from_secs(300))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The message id header.
pub const HEADER_ID: &str = "webhook-id";
/// The attempt's timestamp header (Unix seconds).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The signatures header.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a notice's timestamp may be from the receiver's clock, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The prefix of a written secret.
const PREFIX: &str = "whsec_";
/// The version of the signatures made and checked here.
const VERSION: &str = "v1";
/// Bytes of a generated secret.
const GENERATED_BYTES: usize = 32;
/// Shortest and longest accepted secret, in bytes.
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;

/// Why a written secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Nothing after the prefix.
    #[error("the secret is empty")]
    Empty,
    /// The part after `whsec_` is not standard base64.
    #[error("the secret is not base64 after `whsec_`")]
    NotBase64,
    /// Too short or too long once decoded.
    #[error("the secret has {got} bytes; expected {MIN_BYTES} to {MAX_BYTES}")]
    Length {
        /// Bytes decoded.
        got: usize,
    },
}

/// A signing secret: its bytes, and its written form `whsec_...`.
///
/// `Debug` and `Display` never show it.
///
/// ```
/// use ivpay_signing::SigningSecret;
///
/// let secret = SigningSecret::generate();
/// assert!(secret.expose().starts_with("whsec_"));
/// assert_eq!(SigningSecret::parse(secret.expose()), Ok(secret.clone()));
/// assert_eq!(format!("{secret:?}"), "SigningSecret(whsec_…redacted)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
    text: String,
}

impl SigningSecret {
    /// Reads a written secret: `whsec_` and base64 of 24 to 64 bytes. Without the prefix
    /// the whole text is taken as the base64, as the reference libraries do.
    ///
    /// # Errors
    ///
    /// [`SecretError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&key.len()) {
            return Err(SecretError::Length { got: key.len() });
        }
        Ok(Self {
            key,
            text: format!("{PREFIX}{encoded}"),
        })
    }

    /// A new secret of 32 random bytes from the operating system.
    ///
    /// # Panics
    ///
    /// If the operating system has no randomness to give, which no supported one lacks.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_BYTES];
        getrandom::fill(&mut key).expect("the operating system gives random bytes");
        let text = format!("{PREFIX}{}", STANDARD.encode(&key));
        Self { key, text }
    }

    /// The written form, `whsec_...`, to store or to hand to the endpoint's owner.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// This secret's signature of one message: `v1,` and base64.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "{VERSION},{}",
            STANDARD.encode(self.mac(message_id, timestamp, body))
        )
    }

    fn mac(&self, message_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        self.keyed(message_id, timestamp, body)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `signature` (raw bytes) is this secret's for the message, in constant time.
    fn matches(&self, message_id: &str, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
        self.keyed(message_id, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    }

    /// The HMAC of `{id}.{timestamp}.{body}` under this secret, before finalizing.
    fn keyed(&self, message_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_…redacted)")
    }
}

impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_…redacted")
    }
}

/// The `webhook-signature` value for a message: one signature per secret (newest first,
/// as given), separated by spaces.
pub fn sign(secrets: &[SigningSecret], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A new message id: `msg_` and 32 random hex digits.
///
/// # Panics
///
/// If the operating system has no randomness to give.
pub fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// The three headers of a received notice, as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

#[cfg(feature = "http")]
impl<'a> Headers<'a> {
    /// The three headers from a request's header map.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingHeader`] when one is absent or not text.
    pub fn from_map(map: &'a http::HeaderMap) -> Result<Self, VerifyError> {
        let get = |name: &'static str| {
            map.get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(VerifyError::MissingHeader(name))
        };
        Ok(Self {
            id: get(HEADER_ID)?,
            timestamp: get(HEADER_TIMESTAMP)?,
            signature: get(HEADER_SIGNATURE)?,
        })
    }
}

/// Why a notice does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing, empty or not text.
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not whole seconds.
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    /// Older than the tolerance allows: perhaps replayed.
    #[error("webhook-timestamp is too old")]
    TooOld,
    /// Newer than the tolerance allows: a clock is wrong.
    #[error("webhook-timestamp is in the future")]
    TooNew,
    /// No `v1` signature matches any secret held.
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// Checks a received notice: every header present, its timestamp within `tolerance` of
/// `now` (Unix seconds) either way, and one of its `v1` signatures made with one of
/// `secrets` over exactly `body`. Signatures of other versions are ignored.
///
/// # Errors
///
/// [`VerifyError`], saying which check failed.
pub fn verify(
    secrets: &[SigningSecret],
    headers: &Headers<'_>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    for (name, value) in [
        (HEADER_ID, headers.id),
        (HEADER_TIMESTAMP, headers.timestamp),
        (HEADER_SIGNATURE, headers.signature),
    ] {
        if value.trim().is_empty() {
            return Err(VerifyError::MissingHeader(name));
        }
    }
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if timestamp < now.saturating_sub(tolerance) {
        return Err(VerifyError::TooOld);
    }
    if timestamp > now.saturating_add(tolerance) {
        return Err(VerifyError::TooNew);
    }
    let found = headers
        .signature
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|raw| {
            secrets
                .iter()
                .any(|s| s.matches(headers.id, timestamp, body, &raw))
        });
    if found {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// [`verify`] from a request's headers, against the system clock, with the default
/// tolerance (five minutes).
///
/// # Errors
///
/// [`VerifyError`], saying which check failed.
#[cfg(feature = "http")]
pub fn verify_now(
    secrets: &[SigningSecret],
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), VerifyError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    verify(
        secrets,
        &Headers::from_map(headers)?,
        body,
        now,
        DEFAULT_TOLERANCE,
    )
}

#[cfg(test)]
mod tests;
