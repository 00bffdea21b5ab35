//! The driving port: what the HTTP layer (or any other inbound adapter) asks of the service.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ivpay_domain::{
    ClientId, EventOutcome, IdError, IdempotencyKey, InternalId, NewPayment, OutcomeError, Payment,
    PaymentEvent, PaymentId, StatusUpdate, WebhookHint,
};

use crate::gateway::GatewayError;
use crate::payment_store::{Page, PageRequest, PaymentFilter};
use crate::storage::RepositoryError;
use crate::webhook_inbox::InboxEntry;

/// A way to name a payment from outside: our id (a UUID) or IVPAY's.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PaymentRef {
    /// Our id.
    Internal(InternalId),
    /// IVPAY's id.
    Ivpay(PaymentId),
}

impl FromStr for PaymentRef {
    type Err = IdError;
    /// A hyphenated UUID is ours; anything else must be a valid IVPAY id.
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.parse::<InternalId>() {
            Ok(id) => Ok(Self::Internal(id)),
            Err(_) => s.parse().map(Self::Ivpay),
        }
    }
}

impl fmt::Display for PaymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Internal(id) => write!(f, "{id}"),
            Self::Ivpay(id) => write!(f, "{id}"),
        }
    }
}

/// A successful create.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CreateReply {
    /// The payment, created upstream.
    pub payment: Payment,
    /// True when this answers a repeated request with an idempotency key, from storage.
    pub replayed: bool,
}

/// Why a create failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The idempotency key was used before with a different request. Nothing was sent.
    #[error("idempotency key was already used with a different request")]
    IdempotencyMismatch,
    /// A request with this idempotency key is still being processed.
    #[error("a request with this idempotency key is still in progress")]
    InFlight {
        /// When to try again.
        retry_after: Duration,
    },
    /// IVPAY refused the request. Stored: a repeat with the same key gets the same answer.
    #[error("IVPAY rejected the payment: {message}")]
    Rejected {
        /// IVPAY's message.
        message: String,
        /// Our id of the refused intent.
        id: InternalId,
    },
    /// IVPAY refused our own API key: the service is misconfigured. Not stored against
    /// the idempotency key, so the request can be repeated once fixed.
    #[error("the service's IVPAY credentials were refused")]
    UpstreamUnauthorized,
    /// IVPAY could not be reached and the request provably never left, or IVPAY turned it
    /// away unprocessed (429). Nothing exists upstream; the key is released; retrying may
    /// help, after `retry_after` if given.
    #[error("IVPAY is unavailable: {reason}")]
    UpstreamUnavailable {
        /// What happened.
        reason: String,
        /// How long IVPAY asked us to wait, if it did (capped by the service).
        retry_after: Option<Duration>,
    },
    /// IVPAY may or may not have created the payment. The intent is kept as *unknown* and
    /// will be resolved by a webhook, the reconciler or an operator; a repeat with the same
    /// key never creates a second payment.
    #[error("outcome of payment {id} at IVPAY is unknown: {reason}")]
    OutcomeUnknown {
        /// Our id of the intent, for support and later lookup.
        id: InternalId,
        /// What happened.
        reason: String,
    },
    /// IVPAY answered, but its answer could not be stored even after retrying: the intent
    /// is committed (and, if IVPAY created the payment, it exists there), so it is kept for
    /// recovery, logged with both ids. A repeat with the same key answers from storage
    /// once the payment is resolved; never a second payment.
    #[error("the outcome of payment {id} could not be recorded; the payment is kept for recovery")]
    NotRecorded {
        /// Our id of the intent, for support and later lookup.
        id: InternalId,
        /// Why the last write failed.
        #[source]
        source: RepositoryError,
    },
    /// Storage failed before anything was sent upstream.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
    /// A rule the service relies on did not hold: a bug, or storage edited by hand. Not
    /// the client's doing, and repeating the request does not help.
    #[error(transparent)]
    Invariant(#[from] BrokenInvariant),
}

/// A rule the service relies on did not hold. Never the client's doing: a bug in the
/// service, or storage changed behind its back. An operator should look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenInvariant {
    /// The domain refused to settle a create outcome that only the request holding the
    /// intent settles.
    #[error("broken invariant: {0}")]
    Outcome(#[from] OutcomeError),
    /// An idempotency record names a payment that is not stored (the two are written in
    /// one transaction, and payments are never deleted).
    #[error("broken invariant: idempotency record points at missing payment {0}")]
    MissingPayment(InternalId),
}

impl CreateError {
    /// Whether repeating the same request (with the same idempotency key) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InFlight { .. }
            | Self::UpstreamUnavailable { .. }
            | Self::OutcomeUnknown { .. }
            | Self::NotRecorded { .. }
            | Self::Storage(RepositoryError::Unavailable(_)) => true,
            Self::IdempotencyMismatch
            | Self::Rejected { .. }
            | Self::UpstreamUnauthorized
            | Self::Storage(_)
            | Self::Invariant(_) => false,
        }
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No such payment here.
    #[error("payment {0} not found")]
    NotFound(PaymentRef),
    /// A refresh was asked for and IVPAY failed; the stored payment is still valid.
    #[error("refresh from IVPAY failed")]
    Upstream(#[source] GatewayError),
    /// A refresh lost every compare-and-set it tried: the payment kept changing under
    /// other writers. Nothing was written; asking again shortly should succeed.
    #[error("payment {id} changed concurrently {attempts} times in a row")]
    Contended {
        /// The payment.
        id: InternalId,
        /// Compare-and-set attempts made, all lost.
        attempts: u32,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// Why an operator's link or abandon was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such payment here.
    #[error("payment {0} not found")]
    NotFound(InternalId),
    /// IVPAY does not know the upstream id given.
    #[error("IVPAY does not know payment {0}")]
    UpstreamNotFound(PaymentId),
    /// The payment's create outcome is settled (created, rejected or abandoned): there is
    /// nothing to link or abandon.
    #[error("payment {id} is {outcome}, not unknown or initiated")]
    NotOpen {
        /// The payment.
        id: InternalId,
        /// Its create outcome.
        outcome: &'static str,
    },
    /// IVPAY's id is already linked to a payment (this one or another).
    #[error("IVPAY payment {0} is already linked")]
    AlreadyLinked(PaymentId),
    /// IVPAY holds another foreign id for that payment than the one this row sent.
    #[error("IVPAY payment {payment_id} carries foreign id {found:?}, not {expected}")]
    ForeignIdMismatch {
        /// IVPAY's id.
        payment_id: PaymentId,
        /// The foreign id this row sent.
        expected: String,
        /// The one IVPAY holds.
        found: Option<String>,
    },
    /// Confirming with IVPAY failed; nothing was written.
    #[error("confirming with IVPAY failed")]
    Upstream(#[source] GatewayError),
    /// The payment changed while the operator's change was written; nothing was written.
    #[error("payment {0} changed concurrently")]
    Contended(InternalId),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// Why a status update could not be processed. Updates that are refused by the state
/// machine or name an unknown payment are not errors: they are recorded outcomes.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Confirming with IVPAY failed.
    #[error("confirming with IVPAY failed")]
    Upstream(#[source] GatewayError),
    /// The update lost every compare-and-set it tried: the payment kept changing under
    /// other writers. Nothing was recorded; the same update may be applied later.
    #[error("payment {id} changed concurrently {attempts} times in a row")]
    Contended {
        /// The payment.
        id: InternalId,
        /// Compare-and-set attempts made, all lost.
        attempts: u32,
    },
    /// Storage failed; nothing was recorded.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// What a read did about IVPAY when asked to refresh.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refresh {
    /// No refresh was asked for.
    NotAsked,
    /// IVPAY was asked, and what it said applied.
    Done,
    /// Nothing to ask: the payment is final, or IVPAY has no id for it.
    NotNeeded,
    /// The budget of calls toward IVPAY (the client's or the account's) is spent: the
    /// stored state is answered, and IVPAY was not asked.
    Skipped,
}

impl Refresh {
    /// As the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAsked => "not_asked",
            Self::Done => "done",
            Self::NotNeeded => "not_needed",
            Self::Skipped => "skipped",
        }
    }
}

/// A payment read, with what became of its refresh.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentRead {
    /// The payment, as stored (after the refresh, if one was made).
    pub payment: Payment,
    /// Whether IVPAY was asked.
    pub refresh: Refresh,
}

/// What readiness reports beyond "storage answers".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Health {
    /// Payments whose create outcome is *unknown*.
    pub unknown_payments: u64,
    /// Stored rows (payments, inbox webhooks) set aside because they no longer read; each
    /// waits for an operator to fix and release it.
    pub quarantined_rows: u64,
    /// Payments created at IVPAY and not final yet, by age.
    pub open_payments: crate::OpenPayments,
}

/// What became of a received webhook. Either way it is durable: acknowledge it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WebhookReceipt {
    /// Recorded at once, without asking IVPAY (a hint that claims the status the payment
    /// already has is a duplicate whatever IVPAY says now).
    Processed(EventOutcome),
    /// Kept in the inbox. The inbox worker confirms it with IVPAY's `GET` and applies what
    /// IVPAY says, shortly after; if IVPAY cannot answer, it is retried with back-off.
    Queued,
}

/// What one pass over the webhook inbox did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct InboxReport {
    /// Webhooks claimed (due, and not leased by another worker).
    pub claimed: u32,
    /// Of those, confirmed by IVPAY and recorded (applied, duplicate, refused, unknown
    /// payment); they left the inbox.
    pub processed: u32,
    /// IVPAY could not confirm them now; rescheduled with back-off.
    pub deferred: u32,
    /// IVPAY could not confirm them for the last allowed time; recorded as
    /// [`EventOutcome::Unconfirmed`] with their body and removed from the inbox.
    pub unconfirmed: u32,
    /// Their lease ran out while they were processed and another worker holds them now;
    /// this worker's result was not written.
    pub lease_lost: u32,
    /// Storage failed while processing them; they are tried again when the lease ends.
    pub failed: u32,
    /// Of the processed, how many first linked an *unknown* or *initiated* row to IVPAY's
    /// id by foreign id.
    pub linked: u32,
    /// IVPAY knows their payment but no row holds it (yet): kept in the inbox and retried
    /// until one does or the keep time runs out.
    pub unmatched: u32,
    /// Of the unmatched, how many matched several rows by foreign id: an operator links
    /// one.
    pub ambiguous: u32,
    /// Of the processed, how many stayed unmatched past the keep time: recorded as an
    /// unknown payment and removed.
    pub expired: u32,
    /// Not confirmed because the account's budget of calls toward IVPAY was spent; tried
    /// again shortly, attempts not counted.
    pub over_budget: u32,
}

/// What one reconciliation pass did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReconcileReport {
    /// Payments claimed.
    pub claimed: u32,
    /// Of those, how many changed status.
    pub applied: u32,
    /// How many are now final.
    pub finalized: u32,
    /// How many could not be checked (IVPAY failed); rescheduled.
    pub failed: u32,
    /// Intents found still *initiated* long after their request, settled as *unknown*.
    pub recovered: u32,
    /// Inbox webhooks confirmed and applied.
    pub webhooks_processed: u32,
    /// Inbox webhooks that still could not be confirmed; retried later.
    pub webhooks_deferred: u32,
    /// What the inbox part of the pass did, in full.
    pub inbox: InboxReport,
    /// Expired idempotency records deleted.
    pub keys_purged: u64,
    /// Claimed payments whose lease ran out before their next check was written; the
    /// worker that took them over schedules them.
    pub lease_lost: u32,
    /// Claimed payments not checked because too little of the lease was left for a
    /// check at IVPAY's slowest; handed back due at once.
    pub handed_back: u32,
}

/// The use cases, as the HTTP layer and background workers call them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PaymentUseCases: Send + Sync {
    /// Creates a payment at IVPAY for `client`, honouring an idempotency key.
    ///
    /// # Errors
    ///
    /// See [`CreateError`]: each variant says what was stored and whether to retry.
    async fn create(
        &self,
        client: ClientId,
        key: Option<IdempotencyKey>,
        request: NewPayment,
    ) -> Result<CreateReply, CreateError>;

    /// A payment of `client`, from storage; with `refresh`, first asks IVPAY for its status
    /// and applies it (source `api`), unless the budget of calls toward IVPAY is spent
    /// ([`Refresh::Skipped`]). Another client's payment is not found, exactly as a missing
    /// one.
    ///
    /// # Errors
    ///
    /// [`QueryError::NotFound`], [`QueryError::Upstream`] and [`QueryError::Contended`]
    /// (refresh only), [`QueryError::Storage`].
    async fn get(
        &self,
        client: ClientId,
        reference: PaymentRef,
        refresh: bool,
    ) -> Result<PaymentRead, QueryError>;

    /// A page of `client`'s payments (the filter's `owner` is set to `client`).
    ///
    /// # Errors
    ///
    /// [`QueryError::Storage`].
    async fn list(
        &self,
        client: ClientId,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, QueryError>;

    /// Storage answers, and what an operator should watch.
    ///
    /// # Errors
    ///
    /// [`QueryError::Storage`]: not ready.
    async fn health(&self) -> Result<Health, QueryError>;

    /// The history of a payment of `client`.
    ///
    /// # Errors
    ///
    /// [`QueryError::NotFound`] (another client's payment too), [`QueryError::Storage`].
    async fn events(
        &self,
        client: ClientId,
        reference: PaymentRef,
    ) -> Result<Vec<PaymentEvent>, QueryError>;

    /// A page of every client's payments, for an operator: the filter as given (its
    /// `owner`, if set, narrows to one client).
    ///
    /// # Errors
    ///
    /// [`QueryError::Storage`].
    async fn list_all(&self, filter: PaymentFilter, page: PageRequest) -> Result<Page, QueryError>;

    /// The webhooks waiting in the inbox for IVPAY's confirmation, oldest first, at most
    /// `limit`.
    ///
    /// # Errors
    ///
    /// [`QueryError::Storage`].
    async fn webhook_inbox(&self, limit: u32) -> Result<Vec<InboxEntry>, QueryError>;

    /// Any client's payment, by IVPAY's id or ours, with its history, for an operator.
    ///
    /// # Errors
    ///
    /// [`QueryError::NotFound`], [`QueryError::Storage`].
    async fn payment_history(
        &self,
        reference: PaymentRef,
    ) -> Result<(Payment, Vec<PaymentEvent>), QueryError>;

    /// An operator links a payment whose create outcome is *unknown* or *initiated* to
    /// IVPAY's `payment_id`, after IVPAY's `GET` confirms the payment exists and (when it
    /// says) carries the foreign id the row sent. Compare-and-set on the version read.
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`], [`AdminError::UpstreamNotFound`], [`AdminError::NotOpen`],
    /// [`AdminError::AlreadyLinked`], [`AdminError::ForeignIdMismatch`],
    /// [`AdminError::Upstream`], [`AdminError::Contended`], [`AdminError::Storage`].
    async fn link_payment(
        &self,
        id: InternalId,
        payment_id: PaymentId,
    ) -> Result<Payment, AdminError>;

    /// An operator abandons a payment whose create outcome is *unknown* or *initiated*
    /// (stating that IVPAY holds no payment for it) and releases its idempotency key, so
    /// the client may send the request again.
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`], [`AdminError::NotOpen`], [`AdminError::Contended`],
    /// [`AdminError::Storage`].
    async fn abandon_payment(&self, id: InternalId) -> Result<Payment, AdminError>;

    /// Runs one reported status through the state machine and records it with its
    /// evidence, whatever the outcome.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Contended`] when every compare-and-set was lost,
    /// [`UpdateError::Storage`]; either way nothing is half-written.
    async fn apply_update(&self, update: StatusUpdate) -> Result<EventOutcome, UpdateError>;

    /// Takes a webhook as a hint, and returns as soon as it is durable, without asking
    /// IVPAY. A hint that claims the status the payment already has changes nothing whatever
    /// IVPAY says now, so it is recorded as a duplicate at once. Any other is kept in the
    /// inbox ([`WebhookReceipt::Queued`]) and the inbox worker is woken
    /// ([`PaymentUseCases::webhook_queued`]) to confirm it with IVPAY's `GET`.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Storage`]: nothing was kept; the sender should retry.
    async fn receive_webhook(&self, hint: WebhookHint) -> Result<WebhookReceipt, UpdateError>;

    /// One pass of the inbox worker: claims the webhooks due now, confirms each with
    /// IVPAY's `GET` and applies what IVPAY says (source `webhook`, the webhook body and
    /// IVPAY's answer as evidence), then removes it from the inbox. Several payments are
    /// confirmed at once, one payment's webhooks one after the other. A webhook IVPAY
    /// cannot confirm now stays in the inbox, retried with back-off.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Storage`] when claiming fails; per-webhook failures are counted in
    /// the report instead.
    async fn confirm_webhooks(&self) -> Result<InboxReport, UpdateError>;

    /// Resolves once a webhook has been queued since it last resolved (at once if one was
    /// queued meanwhile, so a worker busy with a pass misses none). The inbox worker waits
    /// on it between passes.
    async fn webhook_queued(&self);

    /// One reconciliation pass: settles intents whose request died before IVPAY's answer
    /// was stored as *unknown*, confirms inbox webhooks left over (IVPAY could not confirm
    /// them before, or their worker died), then
    /// claims due non-final payments, asks IVPAY, applies, and schedules the next check
    /// with back-off.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Storage`] when claiming fails; per-payment failures are counted in
    /// the report instead.
    async fn reconcile_once(&self) -> Result<ReconcileReport, UpdateError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_names_our_payment_and_anything_else_ivpays() {
        let ours: PaymentRef = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
            .parse()
            .expect("uuid");
        assert!(matches!(ours, PaymentRef::Internal(_)));
        let theirs: PaymentRef = "6b577835afbefe60335b6e5cd04410a9"
            .parse()
            .expect("ivpay id");
        assert!(matches!(theirs, PaymentRef::Ivpay(_)));
        assert!("no/slash".parse::<PaymentRef>().is_err());
    }

    #[test]
    fn only_transient_create_failures_are_retryable() {
        assert!(
            CreateError::InFlight {
                retry_after: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(!CreateError::IdempotencyMismatch.is_retryable());
        assert!(!CreateError::Storage(RepositoryError::Corrupt("x".into())).is_retryable());
        let missing = BrokenInvariant::MissingPayment(
            "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
                .parse()
                .expect("uuid"),
        );
        assert!(!CreateError::Invariant(missing).is_retryable());
    }
}
