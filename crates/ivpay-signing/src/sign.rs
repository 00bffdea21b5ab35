//! The sender's side: the three headers of a notice.

use crate::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Headers, SigningSecret, UnixTime};

/// The `webhook-signature` value for a message: one signature per secret, in the order
/// given (newest first, by convention), separated by spaces.
///
/// While a secret is rotated, sign with the new one and the old one: a receiver holding
/// either accepts the notice. With no secret the value is empty, and nothing verifies.
///
/// ```
/// use ivpay_signing::SigningSecret;
///
/// let (new, old) = (SigningSecret::generate(), SigningSecret::generate());
/// let value = ivpay_signing::sign(&[new, old], "msg_1", 1_700_000_000, b"{}");
/// assert_eq!(value.split(' ').count(), 2);
/// ```
pub fn sign(
    secrets: &[SigningSecret],
    message_id: &str,
    timestamp: impl Into<UnixTime>,
    body: &[u8],
) -> String {
    let timestamp = timestamp.into();
    secrets
        .iter()
        .map(|s| s.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a notice: its id, its timestamp and its signatures ([`sign`]).
///
/// Give the same `message_id` on every retry of one notice, so that the receiver can drop
/// a duplicate; give the time of this attempt as `timestamp`, so that the receiver's
/// tolerance window starts now.
///
/// ```
/// use ivpay_signing::SigningSecret;
///
/// let secret = SigningSecret::generate();
/// let id = ivpay_signing::new_message_id();
/// let signed = ivpay_signing::sign_headers(&[secret], &id, 1_700_000_000, b"{}");
/// let [(name, value), _, _] = signed.pairs();
/// assert_eq!((name, value), ("webhook-id", id.as_str()));
/// assert_eq!(signed.timestamp(), "1700000000");
/// ```
pub fn sign_headers(
    secrets: &[SigningSecret],
    message_id: &str,
    timestamp: impl Into<UnixTime>,
    body: &[u8],
) -> SignedHeaders {
    let timestamp = timestamp.into();
    SignedHeaders {
        id: message_id.to_owned(),
        timestamp: timestamp.seconds().to_string(),
        signature: sign(secrets, message_id, timestamp, body),
    }
}

/// The header values [`sign_headers`] made, to put on the outgoing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    id: String,
    timestamp: String,
    signature: String,
}

impl SignedHeaders {
    /// The `webhook-id` value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `webhook-timestamp` value: Unix seconds.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The `webhook-signature` value.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// Header names and values, in the order id, timestamp, signature.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_ID, &self.id),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }

    /// The same values as a receiver reads them, to verify what was just signed.
    pub fn as_headers(&self) -> Headers<'_> {
        Headers {
            id: &self.id,
            timestamp: &self.timestamp,
            signature: &self.signature,
        }
    }
}

/// A new message id: `msg_` and 32 random hex digits (128 bits), unique without
/// coordination. Any other id works as well (a notice's own key, say) as long as it
/// stays the same across retries.
///
/// # Panics
///
/// If the operating system has no randomness to give.
pub fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    let mut id = String::with_capacity(4 + 2 * bytes.len());
    id.push_str("msg_");
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

const HEX: &[u8; 16] = b"0123456789abcdef";
