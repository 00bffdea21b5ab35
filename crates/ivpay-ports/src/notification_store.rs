//! The notification ports: who hears about a change (read when storage writes it), and
//! the outbox of signed notices with their delivery log.
//!
//! A change of a payment and the notices announcing it are written in one transaction:
//! when storage saves a payment from a version whose
//! [`Payment::notices_after`](ivpay_domain::Payment::notices_after) that version is not
//! empty, it asks the [`NoticeAudience`] which endpoints want each one and writes, beside
//! the change, one [`Notification`] per endpoint, or what the change owes on the payment's
//! own record, which [`NotificationStore::announce_pending`] later turns into those
//! notifications (from the payment as the change left it). A crash can lose neither the
//! change nor its notices without the other.

use std::fmt;

use ivpay_domain::{ClientId, Disabled, Endpoint, EndpointId, InternalId, NoticeType, Timestamp};

use crate::storage::{LeaseWrite, RepositoryError};

/// Which endpoints hear about a change: consulted by storage inside the write, so it must
/// answer at once (from memory).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait NoticeAudience: Send + Sync {
    /// The endpoints of `client` that want notices of `kind`, now (disabled ones too:
    /// their notices are kept as skipped, for a recovery).
    fn endpoints_for(&self, client: &ClientId, kind: NoticeType) -> Vec<EndpointId>;
}

/// Nobody listens: no notice is written. The default of a store built without an audience.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAudience;

impl NoticeAudience for NoAudience {
    fn endpoints_for(&self, _: &ClientId, _: NoticeType) -> Vec<EndpointId> {
        Vec::new()
    }
}

/// Where one notice to one endpoint stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every scheduled attempt failed; a redelivery or a recovery can send it again.
    Failed,
    /// Not sent: its endpoint was disabled or removed before it went out.
    Skipped,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Delivered, Self::Failed, Self::Skipped];

    /// The name used in storage and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What waits to be delivered ([`NotificationStore::backlog`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct NoticeBacklog {
    /// Payments whose last change owes notices not yet written out as notifications.
    pub owed: u64,
    /// Notifications waiting for an attempt: due now, or retrying later.
    pub pending: u64,
}

/// One notice for one endpoint, and how its delivery stands.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Notification {
    /// Its own id (one per endpoint).
    pub id: InternalId,
    /// The `webhook-id` header: the same for every endpoint and every attempt of one notice.
    pub message_id: String,
    /// Where it goes.
    pub endpoint: EndpointId,
    /// The payment's owner.
    pub client: ClientId,
    /// The payment it is about.
    pub payment: InternalId,
    /// What it announces.
    pub kind: NoticeType,
    /// The payment's version after the change.
    pub sequence: u64,
    /// The JSON body, exactly as it is signed and sent on every attempt.
    pub body: String,
    /// When it was written (with the change).
    pub created_at: Timestamp,
    /// Where delivery stands.
    pub state: DeliveryState,
    /// Attempts made so far, all rounds counted.
    pub attempts: u32,
    /// Attempts made in this round (a redelivery or recovery starts a new round): the
    /// position in the retry schedule.
    pub round_attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// The last answer's status, if the endpoint answered.
    pub last_status: Option<u16>,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// When the endpoint took it.
    pub delivered_at: Option<Timestamp>,
}

/// One attempt, as the delivery log keeps it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeliveryAttempt {
    /// The notification it was for.
    pub notification: InternalId,
    /// 1 for the first attempt, counting every round.
    pub number: u32,
    /// When it started.
    pub at: Timestamp,
    /// The endpoint's status, if it answered.
    pub status: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// The start of the answer's body (bounded).
    pub excerpt: Option<String>,
    /// What went wrong when there was no answer, or why it was refused.
    pub error: Option<String>,
}

/// What an attempt leads to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AfterAttempt {
    /// Delivered.
    Delivered,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// The schedule is spent: failed.
    GiveUp,
    /// Not sent, and will not be: the endpoint is disabled or gone.
    Skip,
}

/// An attempt and what it leads to, to record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AttemptOutcome {
    /// The attempt for the log (`None` when nothing was sent, as for a skip).
    pub attempt: Option<DeliveryAttempt>,
    /// The notification.
    pub notification: InternalId,
    /// What comes next.
    pub next: AfterAttempt,
}

/// Which notifications to list.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct NotificationFilter {
    /// Of this client's payments.
    pub client: Option<ClientId>,
    /// To this endpoint.
    pub endpoint: Option<EndpointId>,
    /// About this payment.
    pub payment: Option<InternalId>,
    /// In this state.
    pub state: Option<DeliveryState>,
    /// Written before this notification (its id): the next page of a listing, newest first.
    pub before: Option<InternalId>,
}

/// Endpoints, notices awaiting delivery and the delivery log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    /// Adds `endpoint`, or replaces the one with its id (URL, secrets, filter,
    /// description, disabled state).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn save_endpoint(&self, endpoint: &Endpoint) -> Result<(), RepositoryError>;

    /// The endpoint with this id.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Endpoint>, RepositoryError>;

    /// Every endpoint, or `client`'s, oldest first.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn endpoints(&self, client: Option<ClientId>) -> Result<Vec<Endpoint>, RepositoryError>;

    /// Notes whether every attempt to the endpoint is failing, and since when (`None`: it
    /// answered 2xx). Keeps an earlier start of the failing streak.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::NotFound`] is not used: a missing endpoint is left alone.
    /// [`RepositoryError::Unavailable`].
    async fn set_endpoint_failing(
        &self,
        id: &EndpointId,
        since: Option<Timestamp>,
    ) -> Result<(), RepositoryError>;

    /// Disables the endpoint unless it already is; answers whether this call did.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        why: &Disabled,
    ) -> Result<bool, RepositoryError>;

    /// Writes out as [`Notification`]s what up to `limit` payments' changes still owe
    /// their listeners (where a store keeps that on the payment's record instead of
    /// writing the notifications with the change), oldest change first, each exactly once
    /// however many deliverers run it at the same time. Answers how many payments it
    /// wrote out. A store that writes the notifications with the change owes nothing: the
    /// default does nothing.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn announce_pending(&self, limit: u32) -> Result<u64, RepositoryError> {
        let _ = limit;
        Ok(0)
    }

    /// What waits to be delivered: payments whose change still owes notices not yet
    /// written out, and notifications still pending (due now or at a later retry).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn backlog(&self) -> Result<NoticeBacklog, RepositoryError>;

    /// Leases up to `limit` pending notifications due at `now` (and not leased, or leased
    /// only until `now` or before) to this deliverer until `until`, oldest due first, each
    /// to one deliverer however many instances share the database.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn claim_notifications(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>, RepositoryError>;

    /// Records attempts of notifications leased until `leased_until`, in one transaction:
    /// each attempt joins the log and moves its notification to what comes next, if the
    /// lease still holds (else that one writes nothing: [`LeaseWrite::LeaseLost`]).
    /// Answers one [`LeaseWrite`] per outcome, in order.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`]: nothing is written.
    async fn record_attempts(
        &self,
        outcomes: &[AttemptOutcome],
        leased_until: Timestamp,
    ) -> Result<Vec<LeaseWrite>, RepositoryError>;

    /// Notifications matching `filter`, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
    ) -> Result<Vec<Notification>, RepositoryError>;

    /// One notification.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn notification(&self, id: InternalId) -> Result<Option<Notification>, RepositoryError>;

    /// A notification's attempts, first first.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn attempts(&self, id: InternalId) -> Result<Vec<DeliveryAttempt>, RepositoryError>;

    /// Sends a notification again: a delivered, failed or skipped one becomes pending, due
    /// at `now`, in a new round of the schedule. A pending one is made due at `now`.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::NotFound`] when there is no such notification.
    /// [`RepositoryError::Unavailable`].
    async fn redeliver(&self, id: InternalId, now: Timestamp) -> Result<(), RepositoryError>;

    /// Sends again every notification to `endpoint` that failed (or was skipped) and was
    /// written at or after `since`, as [`NotificationStore::redeliver`] does; answers how
    /// many.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, RepositoryError>;
}
