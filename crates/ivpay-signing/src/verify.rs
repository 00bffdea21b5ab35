//! The receiver's side: is this notice what the holder of the secret sent, and recent?

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;

use crate::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SigningSecret, UnixTime, VERSION};

/// The three headers of a received notice, as text.
///
/// Build it by hand from any HTTP library's request, or with `Headers::from_map` from an
/// `http::HeaderMap` (feature `http`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    /// `webhook-id`: the message id.
    pub id: &'a str,
    /// `webhook-timestamp`: Unix seconds of the attempt.
    pub timestamp: &'a str,
    /// `webhook-signature`: one or more signatures, separated by spaces.
    pub signature: &'a str,
}

#[cfg(feature = "http")]
impl<'a> Headers<'a> {
    /// The three headers from a request's header map.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingHeader`] when one is absent, [`VerifyError::HeaderNotText`]
    /// when one holds bytes other than visible ASCII.
    pub fn from_map(map: &'a http::HeaderMap) -> Result<Self, VerifyError> {
        let get = |name: &'static str| {
            map.get(name)
                .ok_or(VerifyError::MissingHeader(name))?
                .to_str()
                .map_err(|_| VerifyError::HeaderNotText(name))
        };
        Ok(Self {
            id: get(HEADER_ID)?,
            timestamp: get(HEADER_TIMESTAMP)?,
            signature: get(HEADER_SIGNATURE)?,
        })
    }
}

/// Why a notice does not verify. Answer any of them with a 4xx and do not act on the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header is absent or empty; the name says which.
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    /// A header holds bytes that are not visible ASCII; the name says which.
    #[error("header {0} is not text")]
    HeaderNotText(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    #[error("webhook-timestamp is not a whole number of seconds")]
    BadTimestamp,
    /// Older than the tolerance allows: a replay, or a clock far behind.
    #[error("webhook-timestamp is {age} s old, more than the {tolerance} s allowed")]
    TooOld {
        /// Seconds between the timestamp and now.
        age: u64,
        /// The tolerance, in whole seconds.
        tolerance: u64,
    },
    /// Newer than the tolerance allows: a clock far ahead.
    #[error("webhook-timestamp is {ahead} s in the future, more than the {tolerance} s allowed")]
    TooNew {
        /// Seconds between now and the timestamp.
        ahead: u64,
        /// The tolerance, in whole seconds.
        tolerance: u64,
    },
    /// No `v1` signature in the header was made with any of the secrets over exactly this
    /// id, timestamp and body (also when no secret was given).
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// Checks a received notice: every header present, its timestamp within `tolerance` of
/// `now` either way, and one of its `v1` signatures made with one of `secrets` over exactly
/// `body`. Signatures of other versions (`v1a,...`) and ones that are not base64 are
/// skipped; the comparison takes the same time wherever the bytes differ.
///
/// `now` is Unix seconds (`i64`) or a [`SystemTime`](std::time::SystemTime): this
/// function does not read the clock. The usual `tolerance` is
/// [`DEFAULT_TOLERANCE`](crate::DEFAULT_TOLERANCE).
///
/// ```
/// use ivpay_signing::{Headers, SigningSecret, VerifyError, DEFAULT_TOLERANCE};
///
/// let secret = SigningSecret::generate();
/// let signed = ivpay_signing::sign_headers(&[secret.clone()], "msg_1", 1_700_000_000, b"{}");
/// let check = |now: i64| {
///     let secrets = [secret.clone()];
///     ivpay_signing::verify(&secrets, &signed.as_headers(), b"{}", now, DEFAULT_TOLERANCE)
/// };
/// assert_eq!(check(1_700_000_060), Ok(()));
/// assert_eq!(check(1_700_003_600), Err(VerifyError::TooOld { age: 3600, tolerance: 300 }));
/// ```
///
/// # Errors
///
/// [`VerifyError`], saying which check failed, in this order: headers, timestamp,
/// signature.
pub fn verify(
    secrets: &[SigningSecret],
    headers: &Headers<'_>,
    body: &[u8],
    now: impl Into<UnixTime>,
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
    let timestamp = parse_timestamp(headers.timestamp)?;
    check_window(timestamp, now.into(), tolerance)?;

    // The body is hashed once per secret; each candidate is compared with every secret's
    // tag, so a header stuffed with signatures costs comparisons, not hashing.
    let macs: Vec<_> = secrets
        .iter()
        .map(|s| s.mac(headers.id, timestamp, body))
        .collect();
    let found = headers
        .signature
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|raw| macs.iter().any(|m| m.clone().verify_slice(&raw).is_ok()));
    if found {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// [`verify`] from a request's headers, against the system clock, with the default
/// tolerance of five minutes.
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
    verify(
        secrets,
        &Headers::from_map(headers)?,
        body,
        UnixTime::now(),
        crate::DEFAULT_TOLERANCE,
    )
}

/// The timestamp as an integer. The signed text holds it formatted again, as the
/// reference libraries do, so a header spelled `+5` or `05` is read as `5`.
fn parse_timestamp(text: &str) -> Result<UnixTime, VerifyError> {
    text.trim()
        .parse::<i64>()
        .map(UnixTime::from)
        .map_err(|_| VerifyError::BadTimestamp)
}

fn check_window(
    timestamp: UnixTime,
    now: UnixTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let (timestamp, now) = (timestamp.seconds(), now.seconds());
    let tolerance = tolerance.as_secs();
    let gap = now.abs_diff(timestamp);
    if gap <= tolerance {
        Ok(())
    } else if timestamp < now {
        Err(VerifyError::TooOld {
            age: gap,
            tolerance,
        })
    } else {
        Err(VerifyError::TooNew {
            ahead: gap,
            tolerance,
        })
    }
}
