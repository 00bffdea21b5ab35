//! Status updates and the evidence kept for each one.

use serde::{Deserialize, Serialize};

use crate::id::{AccountId, InternalId, PaymentId};
use crate::status::{PaymentStatus, RefusalReason, ReportedStatus};
use crate::time::Timestamp;

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
    /// What it rests on: the webhook body, IVPAY's answer, kept verbatim.
    pub evidence: Option<Evidence>,
}

/// What an update rests on, kept verbatim: the webhook's body as received, IVPAY's
/// confirming answer (`GET /payment/{id}`) as received, and a note where there is no answer
/// to keep (IVPAY did not know the payment). Always holds at least one of the three.
///
/// ```
/// use ivpay_domain::Evidence;
///
/// let webhook = r#"{"payment_id":"p1","status":"PAID"}"#;
/// let answer = r#"{"success":true,"data":{"payment_id":"p1","status":"PENDING"}}"#;
/// let e = Evidence::from_webhook(webhook).with_confirmation(answer);
/// assert_eq!(e.webhook(), Some(webhook));
/// assert_eq!(e.confirmation(), Some(answer));
/// assert_eq!(e.note(), None);
/// assert!(Evidence::from_parts(None, None, None).is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Evidence {
    webhook: Option<String>,
    confirmation: Option<String>,
    note: Option<String>,
}

impl Evidence {
    /// A webhook's body, verbatim.
    pub fn from_webhook(body: impl Into<String>) -> Self {
        Self {
            webhook: Some(body.into()),
            confirmation: None,
            note: None,
        }
    }

    /// IVPAY's answer alone, verbatim: a poll or a refresh.
    pub fn from_confirmation(answer: impl Into<String>) -> Self {
        Self {
            webhook: None,
            confirmation: Some(answer.into()),
            note: None,
        }
    }

    /// The same, with IVPAY's answer that confirmed (or contradicted) it.
    #[must_use]
    pub fn with_confirmation(self, answer: impl Into<String>) -> Self {
        Self {
            confirmation: Some(answer.into()),
            ..self
        }
    }

    /// The same, with a note saying what stands in for a missing answer.
    #[must_use]
    pub fn with_note(self, note: impl Into<String>) -> Self {
        Self {
            note: Some(note.into()),
            ..self
        }
    }

    /// Evidence from its parts, as storage keeps them; `None` when all three are missing.
    pub fn from_parts(
        webhook: Option<String>,
        confirmation: Option<String>,
        note: Option<String>,
    ) -> Option<Self> {
        (webhook.is_some() || confirmation.is_some() || note.is_some()).then_some(Self {
            webhook,
            confirmation,
            note,
        })
    }

    /// The webhook's body, verbatim, when a webhook brought the update.
    pub fn webhook(&self) -> Option<&str> {
        self.webhook.as_deref()
    }

    /// IVPAY's answer, verbatim, when IVPAY was asked.
    pub fn confirmation(&self) -> Option<&str> {
        self.confirmation.as_deref()
    }

    /// What stands in for a missing answer, such as "not found at IVPAY".
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
}

/// A webhook, as a hint: IVPAY's notice that a payment changed, not yet confirmed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebhookHint {
    /// The IVPAY account whose key it echoed.
    pub account: AccountId,
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
    /// A webhook that IVPAY could not be asked about, however often we tried (it stayed
    /// unreachable or failing); given up on and recorded with its body, not acted on.
    Unconfirmed,
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
            Self::Unconfirmed => "unconfirmed",
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
            Self::Unconfirmed,
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
    /// What it rests on.
    pub evidence: Option<Evidence>,
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
            EventOutcome::Unconfirmed,
        ] {
            assert_eq!(EventOutcome::from_name(o.as_str()), Some(o));
        }
        assert_eq!(EventOutcome::from_name("nope"), None);
    }
}
