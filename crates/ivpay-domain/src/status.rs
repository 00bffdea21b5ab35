//! IVPAY's payment statuses and the one function that decides what an update does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A payment's status at IVPAY.
///
/// ```
/// use ivpay_domain::PaymentStatus;
///
/// let s: PaymentStatus = "PAID".parse()?;
/// assert!(s.is_final());
/// assert_eq!(PaymentStatus::Pending.to_string(), "PENDING");
/// # Ok::<(), ivpay_domain::UnknownStatus>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PaymentStatus {
    /// Just created; the customer has not chosen a coin yet.
    Created,
    /// Waiting for the crypto transfer.
    Pending,
    /// Paid. Final.
    Paid,
    /// Not paid in time. Final.
    Timeout,
}

impl PaymentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [PaymentStatus; 4] = [Self::Created, Self::Pending, Self::Paid, Self::Timeout];

    /// Whether no further change is possible.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Paid | Self::Timeout)
    }

    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Pending => "PENDING",
            Self::Paid => "PAID",
            Self::Timeout => "TIMEOUT",
        }
    }

    /// Position in the lifecycle: CREATED 0, PENDING 1, finals 2.
    const fn rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Pending => 1,
            Self::Paid | Self::Timeout => 2,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status text that is not one of IVPAY's four (a predecessor API also had `CANCELED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}, expected CREATED, PENDING, PAID or TIMEOUT")]
pub struct UnknownStatus(pub String);

impl FromStr for PaymentStatus {
    type Err = UnknownStatus;
    /// Exact, uppercase: IVPAY spells statuses this way, and a different spelling is news
    /// worth recording rather than guessing at.
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.chars().take(64).collect()))
    }
}

/// A status as someone reported it: one we know, or a text we keep and report but do not
/// act on.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ReportedStatus {
    /// One of the four.
    Known(PaymentStatus),
    /// Anything else, kept verbatim (cut to 64 characters).
    Unknown(String),
}

impl From<String> for ReportedStatus {
    fn from(s: String) -> Self {
        match s.parse() {
            Ok(st) => Self::Known(st),
            Err(UnknownStatus(text)) => Self::Unknown(text),
        }
    }
}

impl From<&str> for ReportedStatus {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

impl From<PaymentStatus> for ReportedStatus {
    fn from(s: PaymentStatus) -> Self {
        Self::Known(s)
    }
}

impl From<ReportedStatus> for String {
    fn from(s: ReportedStatus) -> String {
        s.to_string()
    }
}

impl fmt::Display for ReportedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(s) => f.write_str(s.as_str()),
            Self::Unknown(s) => f.write_str(s),
        }
    }
}

/// What a status update does to a payment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transition {
    /// Move to the new status.
    Apply,
    /// Already there: nothing changes, the update is recorded as a duplicate.
    Duplicate,
    /// Not allowed: nothing changes, the update is recorded with the reason.
    Refuse(RefusalReason),
}

/// Why an update was refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The payment is final and the update names the other final status (PAID vs
    /// TIMEOUT). Something is wrong upstream or in transit: record it and alert.
    #[error("conflicting final status")]
    ConflictingFinal,
    /// The payment is final; a non-final update came late or out of order.
    #[error("payment is already final")]
    AlreadyFinal,
    /// The update would move the lifecycle backwards (PENDING to CREATED).
    #[error("status would move backwards")]
    Backwards,
}

/// Decides, for every pair of statuses, what an update from `from` to `to` does.
///
/// The single place where this is decided: final states never change; a repeat is a
/// duplicate; the lifecycle only moves forward (CREATED, PENDING, then PAID or TIMEOUT),
/// and may skip steps, since IVPAY does not promise to report each one.
///
/// ```
/// use ivpay_domain::{transition, PaymentStatus::*, RefusalReason, Transition};
///
/// assert_eq!(transition(Created, Paid), Transition::Apply);
/// assert_eq!(transition(Paid, Paid), Transition::Duplicate);
/// assert_eq!(transition(Paid, Pending), Transition::Refuse(RefusalReason::AlreadyFinal));
/// assert_eq!(transition(Paid, Timeout), Transition::Refuse(RefusalReason::ConflictingFinal));
/// ```
pub const fn transition(from: PaymentStatus, to: PaymentStatus) -> Transition {
    use PaymentStatus::{Paid, Timeout};
    match (from, to) {
        (Paid, Timeout) | (Timeout, Paid) => Transition::Refuse(RefusalReason::ConflictingFinal),
        _ if from as u8 == to as u8 => Transition::Duplicate,
        _ if from.is_final() => Transition::Refuse(RefusalReason::AlreadyFinal),
        _ if to.rank() < from.rank() => Transition::Refuse(RefusalReason::Backwards),
        _ => Transition::Apply,
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    #[test]
    fn every_pair_has_the_expected_outcome() {
        use RefusalReason::*;
        use Transition::*;
        let table = [
            (Created, Created, Duplicate),
            (Created, Pending, Apply),
            (Created, Paid, Apply),
            (Created, Timeout, Apply),
            (Pending, Created, Refuse(Backwards)),
            (Pending, Pending, Duplicate),
            (Pending, Paid, Apply),
            (Pending, Timeout, Apply),
            (Paid, Created, Refuse(AlreadyFinal)),
            (Paid, Pending, Refuse(AlreadyFinal)),
            (Paid, Paid, Duplicate),
            (Paid, Timeout, Refuse(ConflictingFinal)),
            (Timeout, Created, Refuse(AlreadyFinal)),
            (Timeout, Pending, Refuse(AlreadyFinal)),
            (Timeout, Paid, Refuse(ConflictingFinal)),
            (Timeout, Timeout, Duplicate),
        ];
        assert_eq!(table.len(), 16);
        for (from, to, expected) in table {
            assert_eq!(transition(from, to), expected, "{from} -> {to}");
        }
    }

    #[test]
    fn unknown_statuses_are_kept_not_failed() {
        assert_eq!(
            ReportedStatus::from("CANCELED"),
            ReportedStatus::Unknown("CANCELED".into())
        );
        assert_eq!(ReportedStatus::from("PAID"), ReportedStatus::Known(Paid));
        assert_eq!(
            ReportedStatus::from("paid"),
            ReportedStatus::Unknown("paid".into())
        );
        let json = serde_json::to_string(&ReportedStatus::Unknown("CANCELED".into())).expect("ok");
        assert_eq!(json, "\"CANCELED\"");
    }
}
