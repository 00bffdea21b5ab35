//! Identifiers: IVPAY's payment id, the merchant's foreign id, our own internal id, API
//! clients and idempotency keys. Each can only hold text that passed its rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing was given.
    #[error("must not be empty")]
    Empty,
    /// Longer than the identifier allows.
    #[error("must be at most {max} characters, got {got}")]
    TooLong {
        /// The limit.
        max: usize,
        /// The length given.
        got: usize,
    },
    /// A character outside the identifier's alphabet.
    #[error("character {found:?} at position {position} is not allowed ({allowed})")]
    BadCharacter {
        /// The offending character.
        found: char,
        /// Zero-based character position.
        position: usize,
        /// What is allowed, in words.
        allowed: &'static str,
    },
    /// Leading or trailing whitespace, which would make two ids look alike.
    #[error("must not start or end with whitespace")]
    Padded,
}

/// Implements the shared plumbing of a validated string identifier: `FromStr` through
/// `check`, `TryFrom<String>`, `Display`, `AsRef<str>` and serde through the constructor.
macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::check(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::check(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn check_length(s: &str, max: usize) -> Result<(), IdError> {
    let len = s.chars().count();
    if len == 0 {
        Err(IdError::Empty)
    } else if len > max {
        Err(IdError::TooLong { max, got: len })
    } else {
        Ok(())
    }
}

fn check_chars(s: &str, allowed: &'static str, ok: impl Fn(char) -> bool) -> Result<(), IdError> {
    match s.chars().enumerate().find(|&(_, c)| !ok(c)) {
        Some((position, found)) => Err(IdError::BadCharacter {
            found,
            position,
            allowed,
        }),
        None => Ok(()),
    }
}

/// IVPAY's id for a payment (`6b577835afbefe60335b6e5cd04410a9` in its docs).
///
/// IVPAY does not document the format, so this accepts 1–64 ASCII letters, digits, `-` and
/// `_`: wide enough for any id seen, narrow enough to be safe in a URL path without escaping.
///
/// ```
/// use ivpay_domain::PaymentId;
///
/// let id: PaymentId = "6b577835afbefe60335b6e5cd04410a9".parse()?;
/// assert_eq!(id.as_str().len(), 32);
/// assert!("../admin".parse::<PaymentId>().is_err());
/// # Ok::<(), ivpay_domain::IdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentId(String);

impl PaymentId {
    /// Longest accepted id.
    pub const MAX_LEN: usize = 64;

    fn check(s: &str) -> Result<(), IdError> {
        check_length(s, Self::MAX_LEN)?;
        check_chars(s, "ASCII letters, digits, '-' and '_'", |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        })
    }
}
string_id!(PaymentId);

/// The merchant's own reference for a payment, usually an order id.
///
/// 1–255 characters, no control characters, no surrounding whitespace. IVPAY does not say
/// it is unique, and neither do we.
///
/// ```
/// use ivpay_domain::ForeignId;
///
/// let order: ForeignId = "order-123456".parse()?;
/// assert_eq!(order.to_string(), "order-123456");
/// assert!(" padded".parse::<ForeignId>().is_err());
/// # Ok::<(), ivpay_domain::IdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ForeignId(String);

impl ForeignId {
    /// Longest accepted foreign id, in characters.
    pub const MAX_LEN: usize = 255;

    fn check(s: &str) -> Result<(), IdError> {
        check_length(s, Self::MAX_LEN)?;
        check_chars(s, "no control characters", |c| !c.is_control())?;
        if s.trim() != s {
            return Err(IdError::Padded);
        }
        Ok(())
    }
}
string_id!(ForeignId);

/// A client's `Idempotency-Key`: 1–255 visible ASCII characters (IETF draft).
///
/// ```
/// use ivpay_domain::IdempotencyKey;
///
/// assert!("8e03978e-40d5-43e8-bc93-6894a57f9324".parse::<IdempotencyKey>().is_ok());
/// assert!("has space".parse::<IdempotencyKey>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest accepted key.
    pub const MAX_LEN: usize = 255;

    fn check(s: &str) -> Result<(), IdError> {
        check_length(s, Self::MAX_LEN)?;
        check_chars(s, "visible ASCII", |c| c.is_ascii_graphic())
    }
}
string_id!(IdempotencyKey);

/// The name of an API client of our service (not its secret key): the scope of its
/// idempotency keys and the label in logs and metrics.
///
/// ```
/// use ivpay_domain::ClientId;
///
/// assert_eq!("shop-frontend".parse::<ClientId>()?.as_str(), "shop-frontend");
/// # Ok::<(), ivpay_domain::IdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Longest accepted client name.
    pub const MAX_LEN: usize = 64;

    fn check(s: &str) -> Result<(), IdError> {
        check_length(s, Self::MAX_LEN)?;
        check_chars(s, "ASCII letters, digits, '-', '_' and '.'", |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
        })
    }
}
string_id!(ClientId);

/// The name of one of the merchant's IVPAY accounts (a point of sale with its own IVPAY
/// key). Every payment is made through one; [`AccountId::DEFAULT`] is the one configured
/// as `ivpay.api_key`, and the one of payments stored before accounts had names.
///
/// ```
/// use ivpay_domain::AccountId;
///
/// assert_eq!("pos-2".parse::<AccountId>()?.as_str(), "pos-2");
/// assert_eq!(AccountId::default().as_str(), AccountId::DEFAULT);
/// # Ok::<(), ivpay_domain::IdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Longest accepted account name.
    pub const MAX_LEN: usize = 64;
    /// The account configured as `ivpay.api_key`.
    pub const DEFAULT: &'static str = "default";

    fn check(s: &str) -> Result<(), IdError> {
        ClientId::check(s)
    }
}
string_id!(AccountId);

impl Default for AccountId {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

/// Our own id for a payment, given before IVPAY is asked, so an intent whose upstream
/// outcome is unknown still has a name. A UUID (version 7, time-ordered, when we make it).
///
/// ```
/// use ivpay_domain::InternalId;
///
/// let id: InternalId = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d".parse()?;
/// assert_eq!(id.to_string(), "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d");
/// # Ok::<(), ivpay_domain::InternalIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InternalId(uuid::Uuid);

/// The text is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID")]
pub struct InternalIdError;

impl InternalId {
    /// Wraps a UUID made elsewhere (the service makes version 7 ones).
    pub const fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl FromStr for InternalId {
    type Err = InternalIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the hyphenated form, so one id has one spelling in URLs and logs.
        if s.len() != 36 {
            return Err(InternalIdError);
        }
        uuid::Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| InternalIdError)
    }
}

impl fmt::Display for InternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_id_refuses_path_characters_and_length() {
        assert!(matches!(
            "a/b".parse::<PaymentId>(),
            Err(IdError::BadCharacter {
                found: '/',
                position: 1,
                ..
            })
        ));
        assert_eq!(
            "x".repeat(65).parse::<PaymentId>(),
            Err(IdError::TooLong { max: 64, got: 65 })
        );
        assert_eq!("".parse::<PaymentId>(), Err(IdError::Empty));
    }

    #[test]
    fn foreign_id_allows_unicode_but_not_control_characters() {
        assert!("заказ №7".parse::<ForeignId>().is_ok());
        assert!(matches!(
            "a\nb".parse::<ForeignId>(),
            Err(IdError::BadCharacter { found: '\n', .. })
        ));
        assert_eq!("x ".parse::<ForeignId>(), Err(IdError::Padded));
        assert!("é".repeat(255).parse::<ForeignId>().is_ok());
        assert!("é".repeat(256).parse::<ForeignId>().is_err());
    }

    #[test]
    fn idempotency_key_is_visible_ascii_up_to_255() {
        assert!("k".repeat(255).parse::<IdempotencyKey>().is_ok());
        assert!("k".repeat(256).parse::<IdempotencyKey>().is_err());
        assert!("ключ".parse::<IdempotencyKey>().is_err());
        assert!("a\tb".parse::<IdempotencyKey>().is_err());
    }

    #[test]
    fn internal_id_has_one_spelling() {
        let id: InternalId = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
            .parse()
            .expect("valid");
        assert_eq!(id.to_string().parse::<InternalId>(), Ok(id));
        assert!(
            "0192e4f57c3a7b1e9d2a5f6e7a8b9c0d"
                .parse::<InternalId>()
                .is_err()
        );
    }

    #[test]
    fn serde_refuses_invalid_ids() {
        assert!(serde_json::from_str::<PaymentId>("\"ok_id-1\"").is_ok());
        assert!(serde_json::from_str::<PaymentId>("\"bad id\"").is_err());
    }
}
