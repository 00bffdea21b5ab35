//! Status updates and the evidence kept for each one.

use serde::{Deserialize, Serialize};

use crate::{InternalId, PaymentId, PaymentStatus, RefusalReason, ReportedStatus, Timestamp};

/// Who told us about a status.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateSource {
    /// IVPAY's webhook (confirmed by a GET before it is applied).
    Webhook,
    /// The reconciler's poll.
    Poll,
    /// A refresh asked for through our API.
    Api,
}

impl UpdateSource {
    /// The short name used in storage, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Poll => "poll",
            Self::Api => "api",
        }
    }
}

/// A status someone reported for a payment at IVPAY.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StatusUpdate {
    /// IVPAY's id of the payment.
    pub payment_id: PaymentId,
    /// The reported status, possibly one we do not know.
    pub status: ReportedStatus,
    /// When IVPAY says it processed the status.
    pub processed_at: Option<Timestamp>,
    /// Who reported it.
    pub source: UpdateSource,
    /// The raw evidence (webhook body, GET response), kept verbatim.
    pub evidence: Option<String>,
}

/// A webhook, as a hint: IVPAY's notice that a payment changed, not yet confirmed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebhookHint {
    /// The payment it names.
    pub payment_id: PaymentId,
    /// The status it claims, if it claims one.
    pub status: Option<ReportedStatus>,
    /// The body verbatim.
    pub raw: String,
}

/// What became of an update.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum EventOutcome {
    /// The status changed.
    Applied,
    /// The payment already had that status.
    Duplicate,
    /// The state machine refused it.
    Refused(RefusalReason),
    /// The status is not one of IVPAY's four; recorded and reported, not acted on.
    UnrecognizedStatus,
    /// No local payment has that IVPAY id (yet); recorded so it can be linked later.
    UnknownPayment,
}

impl EventOutcome {
    /// The short name used in storage, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Refused(RefusalReason::ConflictingFinal) => "refused_conflicting_final",
            Self::Refused(RefusalReason::AlreadyFinal) => "refused_already_final",
            Self::Refused(RefusalReason::Backwards) => "refused_backwards",
            Self::UnrecognizedStatus => "unrecognized_status",
            Self::UnknownPayment => "unknown_payment",
        }
    }

    /// Parses [`EventOutcome::as_str`] back.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Applied,
            Self::Duplicate,
            Self::Refused(RefusalReason::ConflictingFinal),
            Self::Refused(RefusalReason::AlreadyFinal),
            Self::Refused(RefusalReason::Backwards),
            Self::UnrecognizedStatus,
            Self::UnknownPayment,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

/// One row of a payment's history: every update, applied or not, with its evidence.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentEvent {
    /// Our payment, when one matched.
    pub payment: Option<InternalId>,
    /// IVPAY's id as reported.
    pub payment_id: PaymentId,
    /// Who reported it.
    pub source: UpdateSource,
    /// The status before, when a payment matched.
    pub from: Option<PaymentStatus>,
    /// The reported status.
    pub to: ReportedStatus,
    /// What became of it.
    pub outcome: EventOutcome,
    /// The raw evidence.
    pub evidence: Option<String>,
    /// When we received it.
    pub received_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in [
            EventOutcome::Applied,
            EventOutcome::Refused(RefusalReason::Backwards),
            EventOutcome::UnknownPayment,
        ] {
            assert_eq!(EventOutcome::from_name(o.as_str()), Some(o));
        }
        assert_eq!(EventOutcome::from_name("nope"), None);
    }
}
