//! Exact fiat money: ISO 4217 currencies with their minor units, and amounts that respect them.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A fiat currency from ISO 4217, with the number of minor units (decimals) it allows.
///
/// Parsed case-insensitively, always shown uppercase. Precious metals, testing codes and
/// fund codes (XAU, XTS, BOV, ...) are refused: they are not currencies a customer pays in.
///
/// ```
/// use ivpay_domain::FiatCurrency;
///
/// let usd: FiatCurrency = "usd".parse()?;
/// assert_eq!(usd.to_string(), "USD");
/// assert_eq!(usd.minor_units(), 2);
/// assert_eq!("JPY".parse::<FiatCurrency>()?.minor_units(), 0);
/// assert!("XAU".parse::<FiatCurrency>().is_err());
/// # Ok::<(), ivpay_domain::CurrencyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FiatCurrency {
    code: iso_currency::Currency,
    minor_units: u32,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// The code is not three ASCII letters.
    #[error("expected a three-letter ISO 4217 code, got {got:?}")]
    Malformed {
        /// The text that was given, cut to 16 characters.
        got: String,
    },
    /// Three letters, but no ISO 4217 currency has that code.
    #[error("{code} is not an ISO 4217 currency code")]
    Unknown {
        /// The code, uppercased.
        code: String,
    },
    /// An ISO 4217 code that is not a fiat currency (metals, funds, testing codes).
    #[error("{code} is not a fiat currency")]
    NotFiat {
        /// The code.
        code: String,
    },
}

impl FiatCurrency {
    /// The three-letter code, uppercase.
    pub fn code(&self) -> &'static str {
        self.code.code()
    }

    /// How many decimals an amount in this currency may have (USD 2, JPY 0, BHD 3).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl FromStr for FiatCurrency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(CurrencyError::Malformed {
                got: s.chars().take(16).collect(),
            });
        }
        let upper = s.to_ascii_uppercase();
        let code =
            iso_currency::Currency::from_code(&upper).ok_or_else(|| CurrencyError::Unknown {
                code: upper.clone(),
            })?;
        match code.exponent() {
            Some(exp) if !code.is_special() && !code.is_fund() => Ok(Self {
                code,
                minor_units: u32::from(exp),
            }),
            _ => Err(CurrencyError::NotFiat { code: upper }),
        }
    }
}

impl TryFrom<String> for FiatCurrency {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<FiatCurrency> for String {
    fn from(value: FiatCurrency) -> Self {
        value.code().to_owned()
    }
}

impl fmt::Display for FiatCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for FiatCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FiatCurrency({})", self.code())
    }
}

/// A positive, exact amount of a fiat currency, with no more decimals than the currency
/// allows and at most [`FiatAmount::MAX_UNITS`] whole units.
///
/// The amount keeps the scale of its currency, so it always renders with exactly the
/// currency's minor units: `10.5` USD is shown as `10.50`. There is no float anywhere on the
/// way in or out; parsing reads the decimal text digit by digit.
///
/// ```
/// use ivpay_domain::{FiatAmount, FiatCurrency};
///
/// let usd: FiatCurrency = "USD".parse()?;
/// let amount = FiatAmount::parse("10.5", usd)?;
/// assert_eq!(amount.to_string(), "10.50");
///
/// let err = FiatAmount::parse("10.505", usd).unwrap_err();
/// assert_eq!(err.to_string(), "3 decimals, USD allows 2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiatAmount(Decimal);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing was given.
    #[error("must not be empty")]
    Empty,
    /// Not plain decimal text (`123` or `123.45`): signs, exponents, spaces and
    /// separators are refused.
    #[error("not a decimal number: {got:?}")]
    NotANumber {
        /// The text that was given, cut to 32 characters.
        got: String,
    },
    /// Zero or negative.
    #[error("must be greater than zero")]
    NotPositive,
    /// More decimals than the currency's minor units.
    #[error("{got} decimals, {currency} allows {allowed}")]
    TooManyDecimals {
        /// Decimals written in the input.
        got: u32,
        /// The currency's minor units.
        allowed: u32,
        /// The currency code.
        currency: &'static str,
    },
    /// Larger than [`FiatAmount::MAX_UNITS`].
    #[error("must not exceed {max}")]
    TooLarge {
        /// The largest accepted amount in whole units.
        max: u64,
    },
}

impl FiatAmount {
    /// The largest amount accepted, in whole currency units: one trillion, far above any
    /// single crypto invoice, and far below the 28 digits a decimal holds exactly.
    pub const MAX_UNITS: u64 = 1_000_000_000_000;

    /// Longest text accepted before any parsing, so hostile input costs nothing.
    const MAX_TEXT: usize = 40;

    /// Parses decimal text (`"10"`, `"10.5"`, `"10.50"`) for `currency`.
    ///
    /// # Errors
    ///
    /// [`AmountError`] says why: empty, not plain decimal text, not positive, more
    /// decimals than the currency allows, or above [`FiatAmount::MAX_UNITS`].
    pub fn parse(text: &str, currency: FiatCurrency) -> Result<Self, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let not_a_number = || AmountError::NotANumber {
            got: text.chars().take(32).collect(),
        };
        if text.len() > Self::MAX_TEXT {
            // Still say "too large" for long digit strings, which is what they are.
            return Err(if text.bytes().all(|b| b.is_ascii_digit()) {
                AmountError::TooLarge {
                    max: Self::MAX_UNITS,
                }
            } else {
                not_a_number()
            });
        }
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
            return Err(not_a_number());
        }
        let decimals = frac.map_or(0, str::len) as u32;
        if decimals > currency.minor_units() {
            return Err(AmountError::TooManyDecimals {
                got: decimals,
                allowed: currency.minor_units(),
                currency: currency.code(),
            });
        }
        // Whole part first, so the digit count can be bounded before building a Decimal.
        let whole_trimmed = whole.trim_start_matches('0');
        if whole_trimmed.len() > 13 {
            return Err(AmountError::TooLarge {
                max: Self::MAX_UNITS,
            });
        }
        let value = Decimal::from_str_exact(text).map_err(|_| not_a_number())?;
        Self::new(value, currency)
    }

    /// Builds an amount from an exact decimal, checking scale, sign and bound.
    ///
    /// # Errors
    ///
    /// As [`FiatAmount::parse`], except that text errors cannot happen. Trailing zeros
    /// beyond the currency's minor units are tolerated here (`10.500` is `10.50`) because a
    /// decimal value, unlike text, does not say how it was written.
    pub fn new(value: Decimal, currency: FiatCurrency) -> Result<Self, AmountError> {
        let normalized = value.normalize();
        if normalized.scale() > currency.minor_units() {
            return Err(AmountError::TooManyDecimals {
                got: normalized.scale(),
                allowed: currency.minor_units(),
                currency: currency.code(),
            });
        }
        if normalized <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        if normalized > Decimal::from(Self::MAX_UNITS) {
            return Err(AmountError::TooLarge {
                max: Self::MAX_UNITS,
            });
        }
        let mut exact = normalized;
        exact.rescale(currency.minor_units());
        Ok(Self(exact))
    }

    /// The exact value, at the currency's scale.
    pub fn value(&self) -> Decimal {
        self.0
    }

    /// The amount in minor units (cents for USD): `10.50` USD is `1050`.
    pub fn minor_units(&self) -> i128 {
        self.0.mantissa()
    }
}

impl fmt::Display for FiatAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Decimal's Display keeps the scale set in `new`, which is the currency's.
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for FiatAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FiatAmount({})", self.0)
    }
}

/// An amount together with its currency: what a customer is asked to pay.
///
/// ```
/// use ivpay_domain::Money;
///
/// let price = Money::parse("1500", "jpy")?;
/// assert_eq!(price.to_string(), "1500 JPY");
///
/// let err = Money::parse("9.999", "USD").unwrap_err();
/// assert_eq!(err.to_string(), "amount_fiat: 3 decimals, USD allows 2");
/// # Ok::<(), ivpay_domain::FieldError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Money {
    amount: FiatAmount,
    currency: FiatCurrency,
}

impl Money {
    /// Pairs an already valid amount with the currency it was checked against.
    ///
    /// # Errors
    ///
    /// [`AmountError`] when the amount has more decimals than `currency` allows.
    pub fn new(amount: FiatAmount, currency: FiatCurrency) -> Result<Self, AmountError> {
        let amount = FiatAmount::new(amount.value(), currency)?;
        Ok(Self { amount, currency })
    }

    /// Parses IVPAY's two text fields, `amount_fiat` and `currency_fiat`.
    ///
    /// # Errors
    ///
    /// A [`FieldError`](crate::field::FieldError) naming `currency_fiat` or `amount_fiat` and the reason. The
    /// currency is checked first: an amount cannot be judged without it.
    pub fn parse(amount_fiat: &str, currency_fiat: &str) -> Result<Self, crate::field::FieldError> {
        use crate::field::{Field, FieldError};
        let currency: FiatCurrency = currency_fiat
            .parse()
            .map_err(|e| FieldError::new(Field::CurrencyFiat, e))?;
        let amount = FiatAmount::parse(amount_fiat, currency)
            .map_err(|e| FieldError::new(Field::AmountFiat, e))?;
        Ok(Self { amount, currency })
    }

    /// The amount, at the currency's scale.
    pub fn amount(&self) -> FiatAmount {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> FiatCurrency {
        self.currency
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> FiatCurrency {
        code.parse().expect("valid test currency")
    }

    #[test]
    fn currency_is_case_insensitive_and_shown_uppercase() {
        assert_eq!(cur("eUr").to_string(), "EUR");
        assert_eq!(cur("bhd").minor_units(), 3);
    }

    #[test]
    fn refuses_unknown_malformed_and_non_fiat_codes() {
        assert_eq!(
            "ABC".parse::<FiatCurrency>(),
            Err(CurrencyError::Unknown { code: "ABC".into() })
        );
        assert!(matches!(
            "US".parse::<FiatCurrency>(),
            Err(CurrencyError::Malformed { .. })
        ));
        assert!(matches!(
            "U$D".parse::<FiatCurrency>(),
            Err(CurrencyError::Malformed { .. })
        ));
        for code in ["XAU", "XTS", "XXX", "BOV"] {
            assert_eq!(
                code.parse::<FiatCurrency>(),
                Err(CurrencyError::NotFiat { code: code.into() }),
                "{code}"
            );
        }
    }

    #[test]
    fn renders_the_currency_scale() {
        assert_eq!(
            FiatAmount::parse("10", cur("USD")).map(|a| a.to_string()),
            Ok("10.00".into())
        );
        assert_eq!(
            FiatAmount::parse("0.1", cur("BHD")).map(|a| a.to_string()),
            Ok("0.100".into())
        );
        assert_eq!(
            FiatAmount::parse("007", cur("JPY")).map(|a| a.to_string()),
            Ok("7".into())
        );
        assert_eq!(
            FiatAmount::parse("10.50", cur("USD")).map(|a| a.minor_units()),
            Ok(1050)
        );
    }

    #[test]
    fn refuses_text_that_is_not_plain_decimal() {
        for bad in [
            "1e3", "+1", "-1", " 1", "1 ", "1,00", "1.", ".5", "0x10", "1.2.3", "NaN", "١٢",
        ] {
            assert!(
                matches!(
                    FiatAmount::parse(bad, cur("USD")),
                    Err(AmountError::NotANumber { .. })
                ),
                "{bad:?} should be refused as not a number"
            );
        }
        assert_eq!(FiatAmount::parse("", cur("USD")), Err(AmountError::Empty));
    }

    #[test]
    fn refuses_zero_and_too_many_decimals() {
        assert_eq!(
            FiatAmount::parse("0.00", cur("USD")),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            FiatAmount::parse("1.5", cur("JPY")).map_err(|e| e.to_string()),
            Err("1 decimals, JPY allows 0".into())
        );
        // Written decimals count, even trailing zeros: the client sent something USD cannot mean.
        assert!(matches!(
            FiatAmount::parse("1.000", cur("USD")),
            Err(AmountError::TooManyDecimals {
                got: 3,
                allowed: 2,
                ..
            })
        ));
    }

    #[test]
    fn bounds_the_amount() {
        assert!(FiatAmount::parse("1000000000000", cur("USD")).is_ok());
        assert_eq!(
            FiatAmount::parse("1000000000000.01", cur("USD")),
            Err(AmountError::TooLarge {
                max: FiatAmount::MAX_UNITS
            })
        );
        assert_eq!(
            FiatAmount::parse(&"9".repeat(200), cur("USD")),
            Err(AmountError::TooLarge {
                max: FiatAmount::MAX_UNITS
            })
        );
        assert!(FiatAmount::parse("00000000000000000001.5", cur("USD")).is_ok());
    }

    #[test]
    fn money_errors_name_the_field() {
        assert_eq!(
            Money::parse("10", "usdt").map_err(|e| e.to_string()),
            Err("currency_fiat: expected a three-letter ISO 4217 code, got \"usdt\"".into())
        );
        assert_eq!(
            Money::parse("-3", "EUR").map_err(|e| e.to_string()),
            Err("amount_fiat: not a decimal number: \"-3\"".into())
        );
    }

    #[test]
    fn serde_goes_through_the_constructor() {
        let c: FiatCurrency = serde_json::from_str("\"chf\"").expect("valid");
        assert_eq!(serde_json::to_string(&c).expect("serializes"), "\"CHF\"");
        assert!(serde_json::from_str::<FiatCurrency>("\"XAU\"").is_err());
    }

    fn fiat_currency() -> impl Strategy<Value = FiatCurrency> {
        use iso_currency::IntoEnumIterator;
        let all: Vec<FiatCurrency> = iso_currency::Currency::iter()
            .filter_map(|c| c.code().parse().ok())
            .collect();
        proptest::sample::select(all)
    }

    proptest! {
        #[test]
        fn amounts_round_trip_through_text(
            currency in fiat_currency(),
            whole in 0u64..=FiatAmount::MAX_UNITS,
            frac in 0u64..1000,
        ) {
            let scale = 10u64.pow(currency.minor_units());
            let frac = if whole == FiatAmount::MAX_UNITS { 0 } else { frac % scale };
            let whole = if whole == 0 && frac == 0 { 1 } else { whole };
            let minor = i128::from(whole) * i128::from(scale) + i128::from(frac);
            let value = Decimal::from_i128_with_scale(minor, currency.minor_units());
            let amount = FiatAmount::new(value, currency).expect("in range");
            let text = amount.to_string();
            prop_assert_eq!(text.split_once('.').map_or(0, |(_, f)| f.len()) as u32, currency.minor_units());
            let again = FiatAmount::parse(&text, currency).expect("own rendering parses");
            prop_assert_eq!(again, amount);
            prop_assert_eq!(again.to_string(), text);
        }

        #[test]
        fn parsing_never_panics_and_accepts_only_valid_text(text in "\\PC{0,24}") {
            if let Ok(amount) = FiatAmount::parse(&text, cur("USD")) {
                prop_assert!(amount.value() > Decimal::ZERO);
                prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            }
        }
    }
}
