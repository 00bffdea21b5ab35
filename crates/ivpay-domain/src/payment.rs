//! The payment aggregate: what a client asked for, what IVPAY answered, and where the
//! payment stands.

use serde::{Deserialize, Serialize};

use crate::field::{Field, FieldError};
use crate::id::{AccountId, ClientId, ForeignId, InternalId, PaymentId};
use crate::money::Money;
use crate::notice_type::NoticeType;
use crate::redirect::RedirectUrl;
use crate::status::{PaymentStatus, Transition, transition};
use crate::time::Timestamp;

/// A valid request for a new payment, before anything is stored or sent.
///
/// ```
/// use ivpay_domain::NewPayment;
///
/// let req = NewPayment::from_fields("10.5", "usd", Some("order-1"), Some("https://shop.example/ok"), None)?;
/// assert_eq!(req.money().to_string(), "10.50 USD");
///
/// let err = NewPayment::from_fields("10", "USD", None, Some("ftp://x"), None).unwrap_err();
/// assert_eq!(err.field().as_str(), "url_success");
/// # Ok::<(), ivpay_domain::FieldError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewPayment {
    money: Money,
    foreign_id: Option<ForeignId>,
    url_success: Option<RedirectUrl>,
    url_failed: Option<RedirectUrl>,
}

impl NewPayment {
    /// Assembles a request from values that are already valid.
    pub fn new(
        money: Money,
        foreign_id: Option<ForeignId>,
        url_success: Option<RedirectUrl>,
        url_failed: Option<RedirectUrl>,
    ) -> Self {
        Self {
            money,
            foreign_id,
            url_success,
            url_failed,
        }
    }

    /// Parses IVPAY's create fields, in the order a client reads them in the docs.
    ///
    /// # Errors
    ///
    /// The first invalid field, named, with its reason.
    pub fn from_fields(
        amount_fiat: &str,
        currency_fiat: &str,
        foreign_id: Option<&str>,
        url_success: Option<&str>,
        url_failed: Option<&str>,
    ) -> Result<Self, FieldError> {
        let money = Money::parse(amount_fiat, currency_fiat)?;
        let foreign_id = foreign_id
            .map(str::parse)
            .transpose()
            .map_err(|e| FieldError::new(Field::ForeignId, e))?;
        let url_success = url_success
            .map(str::parse)
            .transpose()
            .map_err(|e| FieldError::new(Field::UrlSuccess, e))?;
        let url_failed = url_failed
            .map(str::parse)
            .transpose()
            .map_err(|e| FieldError::new(Field::UrlFailed, e))?;
        Ok(Self::new(money, foreign_id, url_success, url_failed))
    }

    /// Amount and currency.
    pub fn money(&self) -> Money {
        self.money
    }
    /// The merchant's reference, if given.
    pub fn foreign_id(&self) -> Option<&ForeignId> {
        self.foreign_id.as_ref()
    }
    /// Where to send the customer after paying.
    pub fn url_success(&self) -> Option<&RedirectUrl> {
        self.url_success.as_ref()
    }
    /// Where to send the customer after a failed payment.
    pub fn url_failed(&self) -> Option<&RedirectUrl> {
        self.url_failed.as_ref()
    }

    /// A stable text form of the request, equal for requests that mean the same thing
    /// (`10.5` and `10.50` USD, `usd` and `USD`): what idempotency keys are compared by.
    pub fn canonical(&self) -> String {
        let opt =
            |v: Option<&str>| v.map_or_else(|| "-".to_owned(), |s| format!("{}:{s}", s.len()));
        format!(
            "amount={}|currency={}|foreign_id={}|url_success={}|url_failed={}",
            self.money.amount(),
            self.money.currency(),
            opt(self.foreign_id.as_ref().map(ForeignId::as_str)),
            opt(self.url_success.as_ref().map(RedirectUrl::as_str)),
            opt(self.url_failed.as_ref().map(RedirectUrl::as_str)),
        )
    }
}

/// What IVPAY answered to a successful create.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UpstreamPayment {
    /// IVPAY's id.
    pub payment_id: PaymentId,
    /// The hosted page the customer pays on.
    pub payment_url: RedirectUrl,
    /// When IVPAY created it.
    pub created_at: Timestamp,
}

/// Where our call to IVPAY's create stands. IVPAY has no idempotency and no lookup by
/// foreign id, so the local record keeps its own account of the call.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CreateOutcome {
    /// The intent is stored; IVPAY has not answered yet.
    Initiated,
    /// IVPAY created the payment.
    Created,
    /// IVPAY certainly did not create it: it refused (4xx), or the request never left.
    Rejected {
        /// IVPAY's message, or ours.
        reason: String,
    },
    /// IVPAY may or may not have created it (timeout, reset, 5xx, unreadable answer).
    Unknown {
        /// What happened.
        reason: String,
    },
    /// IVPAY certainly did not create it, and not because of the request: it was never
    /// sent (IVPAY unreachable) or IVPAY refused our own credentials. The client may repeat
    /// the request, with the same idempotency key.
    Abandoned {
        /// What happened.
        reason: String,
    },
}

impl CreateOutcome {
    /// The short name used in storage and responses.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Created => "created",
            Self::Rejected { .. } => "rejected",
            Self::Unknown { .. } => "unknown",
            Self::Abandoned { .. } => "abandoned",
        }
    }

    /// The reason, for the outcomes that have one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Initiated | Self::Created => None,
            Self::Rejected { reason } | Self::Unknown { reason } | Self::Abandoned { reason } => {
                Some(reason)
            }
        }
    }

    /// Rebuilds an outcome from [`CreateOutcome::as_str`] and [`CreateOutcome::reason`], as
    /// storage keeps them. `None` for an unknown name or a reason missing where one belongs.
    pub fn from_parts(name: &str, reason: Option<String>) -> Option<Self> {
        match (name, reason) {
            ("initiated", _) => Some(Self::Initiated),
            ("created", _) => Some(Self::Created),
            ("rejected", Some(reason)) => Some(Self::Rejected { reason }),
            ("unknown", Some(reason)) => Some(Self::Unknown { reason }),
            ("abandoned", Some(reason)) => Some(Self::Abandoned { reason }),
            _ => None,
        }
    }
}

/// The create outcome cannot move that way (only initiated or unknown may be settled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("create outcome is already {from}, cannot become {to}")]
pub struct OutcomeError {
    /// The current outcome.
    pub from: &'static str,
    /// The requested outcome.
    pub to: &'static str,
}

/// Every field of a payment, for storage adapters to save and restore. Build a
/// [`Payment`] from it with [`Payment::restore`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[allow(missing_docs)] // the fields mirror Payment's documented getters
pub struct PaymentRecord {
    pub id: InternalId,
    pub owner: Option<ClientId>,
    pub account: AccountId,
    pub money: Money,
    pub foreign_id: Option<ForeignId>,
    pub url_success: Option<RedirectUrl>,
    pub url_failed: Option<RedirectUrl>,
    pub outcome: CreateOutcome,
    pub upstream: Option<UpstreamPayment>,
    pub status: PaymentStatus,
    pub processed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// A stored record does not describe a possible payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// `created` outcome without IVPAY's answer, or IVPAY's answer without `created`.
    #[error("outcome {outcome} does not match the presence of upstream data")]
    OutcomeMismatch {
        /// The stored outcome.
        outcome: &'static str,
    },
    /// Version 0 is never stored.
    #[error("version must be at least 1")]
    ZeroVersion,
}

/// A payment, from the recorded intent to its final status.
///
/// Changes go through methods that keep it consistent and bump the version, which storage
/// uses for compare-and-set: a writer that read version `n` may only write if the stored
/// version is still `n`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Payment {
    id: InternalId,
    owner: Option<ClientId>,
    account: AccountId,
    money: Money,
    foreign_id: Option<ForeignId>,
    url_success: Option<RedirectUrl>,
    url_failed: Option<RedirectUrl>,
    outcome: CreateOutcome,
    upstream: Option<UpstreamPayment>,
    status: PaymentStatus,
    processed_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
    notices: Announcements,
}

/// The notices a payment's changes since it was loaded announce, in order, each with the
/// version its change made: what storage writes to the outbox in the same transaction as
/// the change. Not part of the payment's value: two payments with the same fields are
/// equal whatever they have to announce.
#[derive(Clone, Debug, Default)]
struct Announcements(Vec<(NoticeType, u64)>);

impl PartialEq for Announcements {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Announcements {}

impl Payment {
    /// A new intent of `owner`, made through IVPAY `account`, before IVPAY is asked.
    /// Status CREATED, outcome initiated, version 1.
    pub fn initiate(
        id: InternalId,
        owner: ClientId,
        account: AccountId,
        request: NewPayment,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            owner: Some(owner),
            account,
            money: request.money,
            foreign_id: request.foreign_id,
            url_success: request.url_success,
            url_failed: request.url_failed,
            outcome: CreateOutcome::Initiated,
            upstream: None,
            status: PaymentStatus::Created,
            processed_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            notices: Announcements::default(),
        }
    }

    /// Rebuilds a payment from storage.
    ///
    /// # Errors
    ///
    /// [`RecordError`] when the record could not have been written by this type.
    pub fn restore(r: PaymentRecord) -> Result<Self, RecordError> {
        if (r.outcome == CreateOutcome::Created) != r.upstream.is_some() {
            return Err(RecordError::OutcomeMismatch {
                outcome: r.outcome.as_str(),
            });
        }
        if r.version == 0 {
            return Err(RecordError::ZeroVersion);
        }
        Ok(Self {
            id: r.id,
            owner: r.owner,
            account: r.account,
            money: r.money,
            foreign_id: r.foreign_id,
            url_success: r.url_success,
            url_failed: r.url_failed,
            outcome: r.outcome,
            upstream: r.upstream,
            status: r.status,
            processed_at: r.processed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            notices: Announcements::default(),
        })
    }

    /// Every field, for storage.
    pub fn to_record(&self) -> PaymentRecord {
        PaymentRecord {
            id: self.id,
            owner: self.owner.clone(),
            account: self.account.clone(),
            money: self.money,
            foreign_id: self.foreign_id.clone(),
            url_success: self.url_success.clone(),
            url_failed: self.url_failed.clone(),
            outcome: self.outcome.clone(),
            upstream: self.upstream.clone(),
            status: self.status,
            processed_at: self.processed_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// Our id.
    pub fn id(&self) -> InternalId {
        self.id
    }

    /// The client that created it; `None` only for payments stored before payments had
    /// owners (no client can read those until an operator assigns them).
    pub fn owner(&self) -> Option<&ClientId> {
        self.owner.as_ref()
    }

    /// Whether `client` may see it: the owner, and no one else.
    pub fn is_owned_by(&self, client: &ClientId) -> bool {
        self.owner.as_ref() == Some(client)
    }

    /// The IVPAY account it was made through, whose key asks IVPAY about it.
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    /// Amount and currency.
    pub fn money(&self) -> Money {
        self.money
    }
    /// The merchant's reference, if the client gave one.
    pub fn foreign_id(&self) -> Option<&ForeignId> {
        self.foreign_id.as_ref()
    }
    /// The foreign id sent to IVPAY: the client's, or else our own id, so that every
    /// upstream payment (and every webhook about it) carries a reference we can match.
    pub fn upstream_foreign_id(&self) -> ForeignId {
        self.foreign_id.clone().unwrap_or_else(|| {
            // A hyphenated UUID always satisfies ForeignId's rule.
            ForeignId::try_from(self.id.to_string())
                .expect("a hyphenated UUID is 36 visible ASCII characters, a valid foreign id")
        })
    }
    /// Where to send the customer after paying.
    pub fn url_success(&self) -> Option<&RedirectUrl> {
        self.url_success.as_ref()
    }
    /// Where to send the customer after a failed payment.
    pub fn url_failed(&self) -> Option<&RedirectUrl> {
        self.url_failed.as_ref()
    }
    /// Where the create call stands.
    pub fn outcome(&self) -> &CreateOutcome {
        &self.outcome
    }
    /// IVPAY's answer to create, once there is one.
    pub fn upstream(&self) -> Option<&UpstreamPayment> {
        self.upstream.as_ref()
    }
    /// IVPAY's id, once known.
    pub fn payment_id(&self) -> Option<&PaymentId> {
        self.upstream.as_ref().map(|u| &u.payment_id)
    }
    /// The last status applied.
    pub fn status(&self) -> PaymentStatus {
        self.status
    }
    /// When IVPAY processed the last applied status, if it said.
    pub fn processed_at(&self) -> Option<Timestamp> {
        self.processed_at
    }
    /// When the intent was recorded here.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// When the record last changed.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    /// The optimistic-concurrency version, bumped by every change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// What the changes made since this payment was loaded (or initiated) announce, in
    /// order.
    pub fn notices(&self) -> Vec<NoticeType> {
        self.notices.0.iter().map(|(kind, _)| *kind).collect()
    }

    /// What the changes made after `version` announce, in order: what a write from
    /// `version` (its compare-and-set) must put in the outbox. A change already stored
    /// (at or before `version`) is not announced again, even by a payment value kept and
    /// changed further after it was saved.
    pub fn notices_after(&self, version: u64) -> Vec<NoticeType> {
        self.notices
            .0
            .iter()
            .filter(|(_, at)| *at > version)
            .map(|(kind, _)| *kind)
            .collect()
    }

    /// Whether the status is final (PAID or TIMEOUT).
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// Whether a poller should still ask IVPAY about this payment: created upstream and
    /// not final.
    pub fn needs_reconciliation(&self) -> bool {
        self.upstream.is_some() && !self.is_final()
    }

    fn settle(&mut self, to: CreateOutcome, now: Timestamp) -> Result<(), OutcomeError> {
        match self.outcome {
            CreateOutcome::Initiated | CreateOutcome::Unknown { .. } => {
                let linked = matches!(self.outcome, CreateOutcome::Unknown { .. })
                    && to == CreateOutcome::Created;
                self.outcome = to;
                self.touch(now);
                let kind = match &self.outcome {
                    _ if linked => NoticeType::Linked,
                    CreateOutcome::Rejected { .. } => NoticeType::Rejected,
                    CreateOutcome::Unknown { .. } => NoticeType::Unknown,
                    CreateOutcome::Abandoned { .. } => NoticeType::Abandoned,
                    CreateOutcome::Initiated | CreateOutcome::Created => NoticeType::Created,
                };
                self.notices.0.push((kind, self.version));
                Ok(())
            }
            _ => Err(OutcomeError {
                from: self.outcome.as_str(),
                to: to.as_str(),
            }),
        }
    }

    fn touch(&mut self, now: Timestamp) {
        self.updated_at = now;
        self.version += 1;
    }

    /// IVPAY created the payment. Also settles an unknown outcome that a later webhook or
    /// an operator resolved.
    ///
    /// # Errors
    ///
    /// [`OutcomeError`] unless the outcome was initiated or unknown.
    pub fn mark_created(
        &mut self,
        upstream: UpstreamPayment,
        now: Timestamp,
    ) -> Result<(), OutcomeError> {
        self.settle(CreateOutcome::Created, now)?;
        self.upstream = Some(upstream);
        Ok(())
    }

    /// IVPAY's own create answer, arriving after the row was linked to the same upstream
    /// payment without it (from a webhook, with a `payment_url` made from a template):
    /// its `payment_url` and creation time replace the linked ones. Answers whether
    /// anything changed; a row linked to another upstream payment, or not linked, is left
    /// as it is.
    pub fn take_create_answer(&mut self, answer: &UpstreamPayment, now: Timestamp) -> bool {
        match &mut self.upstream {
            Some(linked) if linked.payment_id == answer.payment_id && linked != answer => {
                *linked = answer.clone();
                self.touch(now);
                true
            }
            _ => false,
        }
    }

    /// IVPAY certainly did not create the payment.
    ///
    /// # Errors
    ///
    /// [`OutcomeError`] unless the outcome was initiated or unknown.
    pub fn mark_rejected(&mut self, reason: String, now: Timestamp) -> Result<(), OutcomeError> {
        self.settle(CreateOutcome::Rejected { reason }, now)
    }

    /// IVPAY certainly did not create the payment, and the client may try again.
    ///
    /// # Errors
    ///
    /// [`OutcomeError`] unless the outcome was initiated or unknown.
    pub fn mark_abandoned(&mut self, reason: String, now: Timestamp) -> Result<(), OutcomeError> {
        self.settle(CreateOutcome::Abandoned { reason }, now)
    }

    /// IVPAY may or may not have created the payment.
    ///
    /// # Errors
    ///
    /// [`OutcomeError`] unless the outcome was initiated (an unknown stays unknown).
    pub fn mark_unknown(&mut self, reason: String, now: Timestamp) -> Result<(), OutcomeError> {
        if self.outcome != CreateOutcome::Initiated {
            return Err(OutcomeError {
                from: self.outcome.as_str(),
                to: "unknown",
            });
        }
        self.settle(CreateOutcome::Unknown { reason }, now)
    }

    /// Runs a status update through the state machine and applies it if allowed.
    ///
    /// Returns what [`transition`] decided; only [`Transition::Apply`] changes the
    /// payment (status, processed time, version).
    pub fn apply_status(
        &mut self,
        to: PaymentStatus,
        processed_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Transition {
        let decision = transition(self.status, to);
        if decision == Transition::Apply {
            self.status = to;
            self.processed_at = processed_at.or(self.processed_at);
            self.touch(now);
            let version = self.version;
            self.notices
                .0
                .extend(NoticeType::for_status(to).map(|kind| (kind, version)));
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RefusalReason;
    use proptest::prelude::*;

    fn sample() -> Payment {
        let req = NewPayment::from_fields("10.00", "USD", None, None, None).expect("valid");
        Payment::initiate(
            InternalId::from_uuid(uuid::Uuid::from_u128(7)),
            "shop".parse().expect("client"),
            AccountId::default(),
            req,
            Timestamp::from_unix_seconds(100),
        )
    }

    fn upstream() -> UpstreamPayment {
        UpstreamPayment {
            payment_id: "abc".parse().expect("valid"),
            payment_url: "https://pay.example/abc".parse().expect("valid"),
            created_at: Timestamp::from_unix_seconds(101),
        }
    }

    #[test]
    fn each_change_announces_its_notice_in_order_and_a_restored_payment_announces_none() {
        let now = Timestamp::from_unix_seconds(200);
        let mut p = sample();
        assert!(p.notices().is_empty());
        p.mark_created(upstream(), now).expect("settles");
        assert_eq!(
            p.apply_status(PaymentStatus::Pending, None, now),
            Transition::Apply
        );
        // A duplicate changes nothing and announces nothing.
        assert_ne!(
            p.apply_status(PaymentStatus::Pending, None, now),
            Transition::Apply
        );
        p.apply_status(PaymentStatus::Paid, None, now);
        assert_eq!(
            p.notices(),
            [NoticeType::Created, NoticeType::Pending, NoticeType::Paid]
        );
        let restored = Payment::restore(p.to_record()).expect("restores");
        assert!(restored.notices().is_empty());
        assert_eq!(
            restored, p,
            "what is left to announce is not part of the value"
        );

        let mut unknown = sample();
        unknown
            .mark_unknown("timeout".into(), now)
            .expect("settles");
        let mut later = Payment::restore(unknown.to_record()).expect("restores");
        later.mark_created(upstream(), now).expect("links");
        assert_eq!(unknown.notices(), [NoticeType::Unknown]);
        assert_eq!(later.notices(), [NoticeType::Linked]);

        let mut gone = sample();
        gone.mark_abandoned("429".into(), now).expect("settles");
        let mut refused = sample();
        refused.mark_rejected("400".into(), now).expect("settles");
        assert_eq!(gone.notices(), [NoticeType::Abandoned]);
        assert_eq!(refused.notices(), [NoticeType::Rejected]);
    }

    #[test]
    fn initiated_payment_uses_its_own_id_upstream_when_the_client_gave_none() {
        let p = sample();
        assert_eq!(p.upstream_foreign_id().as_str(), p.id().to_string());
        assert_eq!(p.version(), 1);
        assert!(!p.needs_reconciliation());
    }

    #[test]
    fn create_outcome_settles_once() {
        let mut p = sample();
        p.mark_unknown("timeout".into(), Timestamp::from_unix_seconds(102))
            .expect("from initiated");
        p.mark_created(upstream(), Timestamp::from_unix_seconds(103))
            .expect("unknown resolves");
        assert_eq!(p.version(), 3);
        assert!(p.needs_reconciliation());
        assert_eq!(
            p.mark_rejected("late".into(), Timestamp::from_unix_seconds(104)),
            Err(OutcomeError {
                from: "created",
                to: "rejected"
            })
        );
        assert_eq!(p.version(), 3);
    }

    #[test]
    fn the_create_answer_replaces_a_linked_url_only_for_the_same_upstream_payment() {
        let mut p = sample();
        let linked = UpstreamPayment {
            payment_url: "https://pay.ivpay.io/payment/abc".parse().expect("valid"),
            ..upstream()
        };
        assert!(!p.take_create_answer(&upstream(), Timestamp::from_unix_seconds(102)));
        p.mark_created(linked, Timestamp::from_unix_seconds(102))
            .expect("linked");
        let other = UpstreamPayment {
            payment_id: "xyz".parse().expect("valid"),
            ..upstream()
        };
        assert!(!p.take_create_answer(&other, Timestamp::from_unix_seconds(103)));
        assert_eq!(p.version(), 2);
        assert!(p.take_create_answer(&upstream(), Timestamp::from_unix_seconds(103)));
        assert_eq!(p.upstream(), Some(&upstream()));
        assert_eq!(p.version(), 3);
        assert!(
            !p.take_create_answer(&upstream(), Timestamp::from_unix_seconds(104)),
            "the same answer twice changes nothing"
        );
    }

    #[test]
    fn outcomes_round_trip_through_their_parts() {
        for o in [
            CreateOutcome::Initiated,
            CreateOutcome::Created,
            CreateOutcome::Rejected {
                reason: "bad".into(),
            },
            CreateOutcome::Unknown {
                reason: "timeout".into(),
            },
            CreateOutcome::Abandoned {
                reason: "not sent".into(),
            },
        ] {
            let back = CreateOutcome::from_parts(o.as_str(), o.reason().map(str::to_owned));
            assert_eq!(back, Some(o));
        }
        assert_eq!(CreateOutcome::from_parts("rejected", None), None);
        assert_eq!(CreateOutcome::from_parts("lost", None), None);
    }

    #[test]
    fn restore_refuses_inconsistent_records() {
        let mut rec = sample().to_record();
        rec.outcome = CreateOutcome::Created;
        assert_eq!(
            Payment::restore(rec.clone()),
            Err(RecordError::OutcomeMismatch { outcome: "created" })
        );
        rec.upstream = Some(upstream());
        assert!(Payment::restore(rec.clone()).is_ok());
        rec.version = 0;
        assert_eq!(Payment::restore(rec), Err(RecordError::ZeroVersion));
    }

    #[test]
    fn canonical_form_ignores_spelling_but_not_meaning() {
        let a = NewPayment::from_fields("10.5", "usd", Some("o"), None, None).expect("valid");
        let b = NewPayment::from_fields("10.50", "USD", Some("o"), None, None).expect("valid");
        let c = NewPayment::from_fields("10.51", "USD", Some("o"), None, None).expect("valid");
        let d =
            NewPayment::from_fields("10.50", "USD", None, Some("https://o"), None).expect("valid");
        assert_eq!(a.canonical(), b.canonical());
        assert_ne!(b.canonical(), c.canonical());
        assert_ne!(b.canonical(), d.canonical());
    }

    #[test]
    fn applying_moves_status_and_version_only_when_allowed() {
        let mut p = sample();
        let t = Timestamp::from_unix_seconds(200);
        assert_eq!(
            p.apply_status(PaymentStatus::Paid, Some(t), t),
            Transition::Apply
        );
        assert_eq!(p.version(), 2);
        assert_eq!(p.processed_at(), Some(t));
        assert_eq!(
            p.apply_status(PaymentStatus::Timeout, None, t),
            Transition::Refuse(RefusalReason::ConflictingFinal)
        );
        assert_eq!(p.status(), PaymentStatus::Paid);
        assert_eq!(p.version(), 2);
    }

    fn status() -> impl Strategy<Value = PaymentStatus> {
        proptest::sample::select(PaymentStatus::ALL.to_vec())
    }

    fn run(updates: &[PaymentStatus]) -> Payment {
        let mut p = sample();
        for (i, s) in updates.iter().enumerate() {
            let t = Timestamp::from_unix_seconds(1000 + i as i64);
            p.apply_status(*s, Some(t), t);
        }
        p
    }

    proptest! {
        #[test]
        fn no_sequence_of_updates_leaves_a_final_state(updates in proptest::collection::vec(status(), 0..24)) {
            let mut p = sample();
            let mut reached: Option<PaymentStatus> = None;
            for s in updates {
                p.apply_status(s, None, Timestamp::from_unix_seconds(1));
                if let Some(f) = reached {
                    prop_assert_eq!(p.status(), f);
                }
                if p.is_final() {
                    reached = Some(p.status());
                }
            }
        }

        #[test]
        fn applying_an_update_twice_equals_applying_it_once(
            prefix in proptest::collection::vec(status(), 0..8),
            update in status(),
        ) {
            let mut once = run(&prefix);
            once.apply_status(update, None, Timestamp::from_unix_seconds(5));
            let mut twice = once.clone();
            let again = twice.apply_status(update, None, Timestamp::from_unix_seconds(6));
            prop_assert_ne!(again, Transition::Apply);
            prop_assert_eq!(twice.status(), once.status());
            prop_assert_eq!(twice.version(), once.version());
        }

        #[test]
        fn any_order_of_updates_with_one_final_ends_in_that_final(
            non_final in proptest::collection::vec(
                proptest::sample::select(vec![PaymentStatus::Created, PaymentStatus::Pending]), 0..10),
            final_status in proptest::sample::select(vec![PaymentStatus::Paid, PaymentStatus::Timeout]),
            copies in 1usize..3,
            seed in any::<u64>(),
        ) {
            let mut updates = non_final;
            updates.extend(std::iter::repeat_n(final_status, copies));
            // A seeded Fisher-Yates shuffle; proptest varies the seed, so every order is reachable.
            let mut state = seed | 1;
            for i in (1..updates.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                updates.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(run(&updates).status(), final_status);
        }
    }
}
