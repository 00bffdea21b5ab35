//! Standard Webhooks signatures for ivpay's notifications: how ivpay signs each notice it
//! posts to a client's endpoint, and how a receiver checks one.
//!
//! **Role.** Pure computation, shared by the sender (ivpay-service) and by merchants'
//! receivers, who may depend on this crate alone. No IO, no async, and no clock unless
//! asked for by name ([`UnixTime::now`], `verify_now`).
//!
//! **May depend on:** `hmac`, `sha2`, `base64`, `getrandom` (new secrets and message ids),
//! `thiserror`, and `http` behind the default `http` feature. Nothing of ivpay's.
//!
//! The scheme, as the [Standard Webhooks](https://www.standardwebhooks.com) specification
//! defines it:
//!
//! - three headers: `webhook-id` (the message id, the same on every retry),
//!   `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`;
//! - the signed text is `{id}.{timestamp}.{body}`, the body byte for byte as sent;
//! - a signature is `v1,` and the base64 of the text's HMAC-SHA256, keyed with the
//!   secret's bytes;
//! - a secret is written `whsec_` and the base64 of its 24 to 64 bytes;
//! - while a secret is rotated the header holds one signature per secret, separated by
//!   spaces, and a receiver accepts any one that matches a secret it holds;
//! - a receiver refuses a timestamp too far from its clock (five minutes, by default), so
//!   that a captured notice cannot be replayed later.
//!
//! The sender calls [`sign_headers`] (or [`sign`] for the signature alone) with a
//! [`new_message_id`] kept across retries; the receiver calls [`verify`] with the time, or
//! `verify_now` with an `http::HeaderMap` (feature `http`, on by default).
//!
//! ```
//! use ivpay_signing::{Headers, SigningSecret, DEFAULT_TOLERANCE};
//!
//! // The specification's own example.
//! let secret: SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let body = br#"{"test": 2432232314}"#;
//! let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
//! let signed = ivpay_signing::sign_headers(&[secret.clone()], id, 1614265330, body);
//! assert_eq!(signed.signature(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! // The receiver, ten seconds later by its clock.
//! let received = Headers {
//!     id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
//!     timestamp: "1614265330",
//!     signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
//! };
//! ivpay_signing::verify(&[secret], &received, body, 1614265340, DEFAULT_TOLERANCE)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

mod secret;
mod sign;
mod unix_time;
mod verify;

pub use secret::{SecretError, SigningSecret};
pub use sign::{SignedHeaders, new_message_id, sign, sign_headers};
pub use unix_time::UnixTime;
#[cfg(feature = "http")]
pub use verify::verify_now;
pub use verify::{Headers, VerifyError, verify};

/// The message id header.
pub const HEADER_ID: &str = "webhook-id";
/// The attempt's timestamp header (Unix seconds).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The signatures header.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a notice's timestamp may be from the receiver's clock, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The version of the signatures made and checked here.
const VERSION: &str = "v1";

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
