//! Validation errors that name the field they are about.

use std::error::Error as StdError;
use std::fmt;

/// The request fields a client can get wrong. Names follow IVPAY's wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `amount_fiat`
    AmountFiat,
    /// `currency_fiat`
    CurrencyFiat,
    /// `foreign_id`
    ForeignId,
    /// `url_success`
    UrlSuccess,
    /// `url_failed`
    UrlFailed,
    /// `payment_id`
    PaymentId,
    /// The `Idempotency-Key` header.
    IdempotencyKey,
    /// `status`
    Status,
}

impl Field {
    /// The wire name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmountFiat => "amount_fiat",
            Self::CurrencyFiat => "currency_fiat",
            Self::ForeignId => "foreign_id",
            Self::UrlSuccess => "url_success",
            Self::UrlFailed => "url_failed",
            Self::PaymentId => "payment_id",
            Self::IdempotencyKey => "Idempotency-Key",
            Self::Status => "status",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value refused for one field: shown as `field: reason`, e.g.
/// `amount_fiat: 3 decimals, USD allows 2`.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    field: Field,
    #[source]
    reason: Box<dyn StdError + Send + Sync + 'static>,
}

impl FieldError {
    /// Attaches a field name to a value type's own error.
    pub fn new(field: Field, reason: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            field,
            reason: Box::new(reason),
        }
    }

    /// The field that was refused.
    pub fn field(&self) -> Field {
        self.field
    }

    /// The reason, without the field name.
    pub fn reason(&self) -> String {
        self.reason.to_string()
    }
}
