//! The payment store: payments, their events and the idempotency records that point at
//! them.

use ivpay_domain::{
    ClientId, ForeignId, IdempotencyKey, InternalId, Payment, PaymentEvent, PaymentId,
    PaymentStatus, Timestamp,
};

use crate::storage::RepositoryError;

/// A client's claim on an idempotency key, stored in the same transaction as the intent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdempotencyClaim {
    /// The client the key belongs to: keys are scoped per client.
    pub client: ClientId,
    /// The key.
    pub key: IdempotencyKey,
    /// A digest of the request's canonical form.
    pub fingerprint: String,
    /// When the record may be forgotten.
    pub expires_at: Timestamp,
}

/// A stored idempotency record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdempotencyRecord {
    /// The client the key belongs to.
    pub client: ClientId,
    /// The key.
    pub key: IdempotencyKey,
    /// A digest of the first request's canonical form.
    pub fingerprint: String,
    /// The payment the first request created. Its create outcome is the stored answer.
    pub payment: InternalId,
    /// When the record was made.
    pub created_at: Timestamp,
    /// When it may be forgotten.
    pub expires_at: Timestamp,
}

/// What [`PaymentStore::insert_intent`] did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum IntentInsert {
    /// The payment (and the claim, if any) are committed.
    Inserted,
    /// An unexpired record already holds the key; nothing was written.
    KeyTaken(IdempotencyRecord),
}

/// Which payments to list. Every field narrows the result; all empty lists everything.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PaymentFilter {
    /// Only this client's payments (the use cases always set it to the caller).
    pub owner: Option<ClientId>,
    /// Only this status.
    pub status: Option<PaymentStatus>,
    /// Only this foreign id (the client's).
    pub foreign_id: Option<ForeignId>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created before.
    pub created_to: Option<Timestamp>,
    /// Only payments whose create outcome is open: *unknown* (IVPAY may or may not have
    /// made it) or still *initiated* (no answer recorded). What an operator links or
    /// abandons.
    pub unresolved: bool,
}

/// A position in the listing: the last payment of the previous page. Payments are listed
/// newest first by `(created_at, id)`, so rows inserted later never shift later pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cursor {
    /// The last row's creation time.
    pub created_at: Timestamp,
    /// The last row's id, breaking ties.
    pub id: InternalId,
}

/// One page request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PageRequest {
    /// Start after this row; `None` for the first page.
    pub after: Option<Cursor>,
    /// At most this many rows.
    pub limit: u32,
}

/// One page of payments.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Page {
    /// The rows, newest first.
    pub items: Vec<Payment>,
    /// Where the next page starts, if there may be one.
    pub next: Option<Cursor>,
}

impl Page {
    /// The page of `rows`, read newest first with up to one row more than `limit`: that
    /// extra row only says that another page follows, and the cursor points at the last
    /// row kept. Every [`PaymentStore::list`] builds its answer here.
    pub fn from_rows(mut rows: Vec<Payment>, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = rows.last().filter(|_| more).map(|p| Cursor {
            created_at: p.created_at(),
            id: p.id(),
        });
        Self { items: rows, next }
    }
}

/// Durable storage of payments and everything recorded about them.
///
/// Writes that belong together happen in one transaction: an intent with its idempotency
/// claim; a status change with its event row.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync {
    /// Stores a new intent (outcome initiated) and, if given, the idempotency claim, in one
    /// transaction. A record for the same key whose `expires_at` is at or before the
    /// payment's `created_at` has expired and is replaced.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Duplicate`] when a payment with the same id exists (nothing is
    /// written); [`RepositoryError::Unavailable`]. A taken key is not an error but
    /// [`IntentInsert::KeyTaken`], decided by a unique index so it holds across instances.
    async fn insert_intent(
        &self,
        payment: &Payment,
        claim: Option<IdempotencyClaim>,
    ) -> Result<IntentInsert, RepositoryError>;

    /// Settles a payment as *abandoned* (nothing exists upstream: a create not sent or
    /// refused, or an operator's decision) with compare-and-set on `expected_version`, and
    /// in the same transaction releases every idempotency key whose record still names
    /// this payment, so the client may repeat the request with it (a key re-claimed after
    /// expiry by another payment is not released). Both are written or neither: a failure
    /// between the two cannot leave an abandoned payment whose key still answers for it.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::VersionConflict`] (the key is kept), [`RepositoryError::NotFound`]
    /// when the payment is gone, [`RepositoryError::Unavailable`]; nothing is written.
    async fn save_abandoned(
        &self,
        payment: &Payment,
        expected_version: u64,
    ) -> Result<(), RepositoryError>;

    /// Saves a settled create outcome (created, rejected, unknown) if the stored version
    /// is `expected_version`, and sets the first reconciliation check.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::VersionConflict`], [`RepositoryError::NotFound`] when the payment
    /// is gone, [`RepositoryError::Duplicate`] when IVPAY's id is already linked,
    /// [`RepositoryError::Unavailable`].
    async fn save_outcome(
        &self,
        payment: &Payment,
        expected_version: u64,
        next_check_at: Option<Timestamp>,
    ) -> Result<(), RepositoryError>;

    /// A payment by our id.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn get(&self, id: InternalId) -> Result<Option<Payment>, RepositoryError>;

    /// A payment by IVPAY's id.
    ///
    /// # Errors
    ///
    /// As [`PaymentStore::get`].
    async fn get_by_payment_id(&self, id: &PaymentId) -> Result<Option<Payment>, RepositoryError>;

    /// Payments with a foreign id (the client's), oldest first. Not unique.
    ///
    /// # Errors
    ///
    /// As [`PaymentStore::get`].
    async fn find_by_foreign_id(&self, id: &ForeignId) -> Result<Vec<Payment>, RepositoryError>;

    /// A page of payments, newest first.
    ///
    /// # Errors
    ///
    /// As [`PaymentStore::get`].
    async fn list(
        &self,
        filter: &PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, RepositoryError>;

    /// Writes a status change as compare-and-set on the version, with its event row, in one
    /// transaction. A payment that became final leaves the reconciliation schedule. The
    /// event is linked to `payment` (its `payment` field must name the same payment). A
    /// stored final status is never replaced by another one, whatever the caller decided.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::VersionConflict`] when another writer got there first, or the
    /// stored status is final and `payment`'s is another (nothing is written, not even the
    /// event); [`RepositoryError::NotFound`] when the payment is
    /// gone; [`RepositoryError::Unavailable`].
    async fn update_status(
        &self,
        payment: &Payment,
        expected_version: u64,
        event: &PaymentEvent,
    ) -> Result<(), RepositoryError>;

    /// Records an event that changed nothing (duplicate, refused, unknown payment).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::NotFound`] when `event.payment` names a payment that does not
    /// exist; [`RepositoryError::Unavailable`].
    async fn record_event(&self, event: &PaymentEvent) -> Result<(), RepositoryError>;

    /// A payment's events, oldest first (by `received_at`; events of the same second in the
    /// order they were recorded).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`], [`RepositoryError::Corrupt`].
    async fn events(&self, payment: InternalId) -> Result<Vec<PaymentEvent>, RepositoryError>;

    /// Deletes up to `limit` idempotency records that expired at or before `now`, so the
    /// table holds about one retention period of keys. Returns how many went.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn purge_expired_keys(&self, now: Timestamp, limit: u32) -> Result<u64, RepositoryError>;

    /// How many payments have an *unknown* create outcome: each may or may not exist at
    /// IVPAY, and an operator should know how many there are.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    async fn count_unknown(&self) -> Result<u64, RepositoryError>;
}
