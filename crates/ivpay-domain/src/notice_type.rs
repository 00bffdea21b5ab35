//! The kinds of notice a payment's changes announce, and an endpoint's choice of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::status::PaymentStatus;

/// The kinds of notice, named as the body's `type` and in an endpoint's filter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum NoticeType {
    /// IVPAY accepted the payment: it has an IVPAY id and a payment URL.
    #[serde(rename = "payment.created")]
    Created,
    /// IVPAY saw the customer pay; not final yet.
    #[serde(rename = "payment.pending")]
    Pending,
    /// Paid: final.
    #[serde(rename = "payment.paid")]
    Paid,
    /// Timed out unpaid: final.
    #[serde(rename = "payment.timeout")]
    Timeout,
    /// The create's outcome is unknown: IVPAY may or may not have the payment.
    #[serde(rename = "payment.unknown")]
    Unknown,
    /// A payment whose create outcome was unknown was found at IVPAY and linked.
    #[serde(rename = "payment.linked")]
    Linked,
    /// IVPAY refused the create; nothing exists upstream.
    #[serde(rename = "payment.rejected")]
    Rejected,
    /// The payment was given up before IVPAY held it (an operator, or a 429).
    #[serde(rename = "payment.abandoned")]
    Abandoned,
}

/// An event type name that is not one of [`NoticeType`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}, expected one of {list}", list = NoticeType::names())]
pub struct UnknownNoticeType(pub String);

impl NoticeType {
    /// Every type, in the order of a payment's life.
    pub const ALL: [Self; 8] = [
        Self::Created,
        Self::Pending,
        Self::Paid,
        Self::Timeout,
        Self::Unknown,
        Self::Linked,
        Self::Rejected,
        Self::Abandoned,
    ];

    /// The wire name, `payment.<what>`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "payment.created",
            Self::Pending => "payment.pending",
            Self::Paid => "payment.paid",
            Self::Timeout => "payment.timeout",
            Self::Unknown => "payment.unknown",
            Self::Linked => "payment.linked",
            Self::Rejected => "payment.rejected",
            Self::Abandoned => "payment.abandoned",
        }
    }

    /// Every name, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// The notice a status change announces (`Created` announces `payment.created`).
    pub const fn for_status(status: PaymentStatus) -> Option<Self> {
        match status {
            PaymentStatus::Created => Some(Self::Created),
            PaymentStatus::Pending => Some(Self::Pending),
            PaymentStatus::Paid => Some(Self::Paid),
            PaymentStatus::Timeout => Some(Self::Timeout),
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl FromStr for NoticeType {
    type Err = UnknownNoticeType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownNoticeType(s.to_owned()))
    }
}

impl fmt::Display for NoticeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The set of notice types an endpoint wants. Empty means every type, as in Svix.
///
/// ```
/// use ivpay_domain::{NoticeFilter, NoticeType};
///
/// let f: NoticeFilter = "payment.paid, payment.timeout".parse()?;
/// assert!(f.wants(NoticeType::Paid));
/// assert!(!f.wants(NoticeType::Pending));
/// assert!(NoticeFilter::all().wants(NoticeType::Pending));
/// assert_eq!(f.to_string(), "payment.paid,payment.timeout");
/// # Ok::<(), ivpay_domain::UnknownNoticeType>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct NoticeFilter(u16);

impl NoticeFilter {
    /// Every type.
    pub const fn all() -> Self {
        Self(0)
    }

    /// Exactly these types (none given: every type).
    pub fn of(types: impl IntoIterator<Item = NoticeType>) -> Self {
        Self(types.into_iter().fold(0, |acc, t| acc | t.bit()))
    }

    /// Whether a notice of this type goes to the endpoint.
    pub const fn wants(self, t: NoticeType) -> bool {
        self.0 == 0 || self.0 & t.bit() != 0
    }

    /// Whether every type is wanted.
    pub const fn is_all(self) -> bool {
        self.0 == 0
    }

    /// The types chosen, in [`NoticeType::ALL`]'s order (empty for every type).
    pub fn types(self) -> Vec<NoticeType> {
        if self.0 == 0 {
            return Vec::new();
        }
        NoticeType::ALL
            .into_iter()
            .filter(|t| self.0 & t.bit() != 0)
            .collect()
    }
}

impl FromStr for NoticeFilter {
    type Err = UnknownNoticeType;
    /// Comma-separated names; empty or `*` for every type.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s == "*" {
            return Ok(Self::all());
        }
        s.split(',')
            .map(|t| t.trim().parse::<NoticeType>())
            .collect::<Result<Vec<_>, _>>()
            .map(Self::of)
    }
}

impl fmt::Display for NoticeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("*");
        }
        let names: Vec<&str> = self.types().into_iter().map(NoticeType::as_str).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused_with_the_list() {
        for t in NoticeType::ALL {
            assert_eq!(t.as_str().parse::<NoticeType>(), Ok(t));
            assert_eq!(
                serde_json::to_string(&t).expect("json"),
                format!("\"{}\"", t.as_str())
            );
        }
        let err = "payment.refunded"
            .parse::<NoticeType>()
            .expect_err("unknown");
        assert!(err.to_string().contains("payment.refunded"));
        assert!(err.to_string().contains("payment.paid"));
    }

    #[test]
    fn a_filter_keeps_only_its_types_and_empty_means_all() {
        let f = NoticeFilter::of([NoticeType::Paid, NoticeType::Linked]);
        assert!(f.wants(NoticeType::Paid) && f.wants(NoticeType::Linked));
        assert!(!f.wants(NoticeType::Created));
        assert_eq!(f.types(), vec![NoticeType::Paid, NoticeType::Linked]);
        assert_eq!(f.to_string().parse::<NoticeFilter>(), Ok(f));
        assert_eq!("*".parse::<NoticeFilter>(), Ok(NoticeFilter::all()));
        assert!(
            NoticeType::ALL
                .into_iter()
                .all(|t| NoticeFilter::all().wants(t))
        );
        assert!("payment.paid,nope".parse::<NoticeFilter>().is_err());
    }
}
