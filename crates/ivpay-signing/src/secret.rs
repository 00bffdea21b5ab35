//! An endpoint's signing secret: read from its written form, made new, never printed.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// Standard base64 that also takes a last character with unused low bits set (`...Ab==`
/// read as `...AQ==` would be): such a secret names the same bytes, so it is not refused.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);
use hmac::{KeyInit, Mac};

use crate::UnixTime;

pub(crate) type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The prefix of a written secret.
const PREFIX: &str = "whsec_";
/// Bytes of a generated secret.
const GENERATED_BYTES: usize = 32;
/// The shortest accepted secret, in bytes (the specification's lower bound).
pub(crate) const MIN_BYTES: usize = 24;
/// The longest accepted secret, in bytes (the specification's upper bound).
pub(crate) const MAX_BYTES: usize = 64;

/// Why a written secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Nothing, or nothing after `whsec_`.
    #[error("the secret is empty")]
    Empty,
    /// The part after `whsec_` is not standard, padded base64.
    #[error("the secret is not standard base64 after `whsec_`")]
    NotBase64,
    /// Fewer bytes than the specification allows, once decoded.
    #[error("the secret has {got} bytes, fewer than the {min} required")]
    TooShort {
        /// Bytes decoded.
        got: usize,
        /// The fewest accepted.
        min: usize,
    },
    /// More bytes than the specification allows, once decoded.
    #[error("the secret has {got} bytes, more than the {max} allowed")]
    TooLong {
        /// Bytes decoded.
        got: usize,
        /// The most accepted.
        max: usize,
    },
}

/// A signing secret: its key bytes, and its written form `whsec_` + base64.
///
/// `Debug` and `Display` never show it; [`expose`](Self::expose) does, for storage.
///
/// ```
/// use ivpay_signing::SigningSecret;
///
/// let secret = SigningSecret::generate();
/// assert!(secret.expose().starts_with("whsec_"));
/// assert_eq!(secret.expose().parse::<SigningSecret>(), Ok(secret.clone()));
/// assert_eq!(format!("{secret:?}"), "SigningSecret(whsec_…redacted)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
    text: String,
}

impl SigningSecret {
    /// Reads a written secret: `whsec_` and standard base64 of 24 to 64 bytes. Without the
    /// prefix the whole text is taken as the base64, as the reference libraries do, so a
    /// secret pasted bare is the same secret. Surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`SecretError`]: empty, not base64, or too short or too long once decoded.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = LENIENT
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if key.len() < MIN_BYTES {
            return Err(SecretError::TooShort {
                got: key.len(),
                min: MIN_BYTES,
            });
        }
        if key.len() > MAX_BYTES {
            return Err(SecretError::TooLong {
                got: key.len(),
                max: MAX_BYTES,
            });
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

    /// The written form, `whsec_...`, to store or to hand to the endpoint's owner. Always
    /// with the prefix, also for a secret read without it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// This secret's signature of one message: `v1,` and the base64 of the HMAC-SHA256 of
    /// `{message_id}.{timestamp}.{body}`. [`sign`](crate::sign) joins those of several
    /// secrets.
    pub fn sign(&self, message_id: &str, timestamp: impl Into<UnixTime>, body: &[u8]) -> String {
        let tag = self
            .mac(message_id, timestamp.into(), body)
            .finalize()
            .into_bytes();
        format!("{},{}", crate::VERSION, STANDARD.encode(tag))
    }

    /// The HMAC of `{id}.{timestamp}.{body}` under this secret, not yet finalized, so that
    /// a verifier absorbs the body once per secret and compares it with every candidate.
    pub(crate) fn mac(&self, message_id: &str, timestamp: UnixTime, body: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.seconds().to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for SigningSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
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
