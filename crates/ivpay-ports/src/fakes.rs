//! Stateful fakes of the storage ports, for tests (feature `fakes`).
//!
//! [`InMemoryRepository`] implements [`PaymentStore`], [`WebhookInbox`],
//! [`ReconcileQueue`], [`NotificationStore`] and [`RetentionStore`] in process memory:
//! the ports' semantics in a few pages of code, held to the same repository suite as the
//! SQL adapter
//! (`crates/ivpay-persistence/tests/repository/` runs every behaviour on it too), and the
//! fake behind tests of the use cases and of the HTTP layer. Like the SQL adapter, it
//! writes the notices of a change, for the endpoints its audience names
//! ([`InMemoryRepository::with_audience`]), in the same step as the change.
//!
//! Everything sits behind one mutex, so every method is atomic, as the ports ask of a
//! transaction. Not for production: nothing survives the process.
//!
//! ```
//! use ivpay_domain::{NewPayment, Payment, Timestamp};
//! use ivpay_ports::fakes::InMemoryRepository;
//! use ivpay_ports::{IntentInsert, PaymentStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let repo = InMemoryRepository::new();
//! let seen = repo.clone(); // a handle on the same storage
//! let request = NewPayment::from_fields("10.00", "USD", None, None, None)?;
//! let at = Timestamp::from_unix_seconds(1_726_248_776);
//! let payment = Payment::initiate(
//!     "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d".parse()?,
//!     "shop".parse()?,
//!     ivpay_domain::AccountId::default(),
//!     request,
//!     at,
//! );
//! assert_eq!(repo.insert_intent(&payment, None).await?, IntentInsert::Inserted);
//! assert_eq!(seen.get(payment.id()).await?, Some(payment));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::notification_store::{
    AfterAttempt, AttemptOutcome, DeliveryAttempt, DeliveryState, NoAudience, NoticeAudience,
    NoticeBacklog, Notification, NotificationFilter, NotificationStore,
};
use crate::payment_store::{
    IdempotencyClaim, IdempotencyRecord, IntentInsert, Page, PageRequest, PaymentFilter,
    PaymentStore,
};
use crate::reconcile_queue::{ClaimedPayment, ReconcileQueue};
use crate::retention::{Retained, RetentionStore};
use crate::storage::{LeaseWrite, RepositoryError};
use crate::webhook_inbox::{InboxEntry, InboxWebhook, WebhookInbox};
use ivpay_domain::{
    ClientId, CreateOutcome, Disabled, Endpoint, EndpointId, ForeignId, IdempotencyKey, InternalId,
    NoticeBody, Payment, PaymentEvent, PaymentId, Timestamp,
};

#[derive(Debug)]
struct Row {
    payment: Payment,
    next_check_at: Option<Timestamp>,
    attempts: u32,
}

/// A notification as stored: what the port shows, and the deliverer's lease on it.
#[derive(Debug)]
struct Outgoing {
    notification: Notification,
    lease_until: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct State {
    payments: HashMap<InternalId, Row>,
    events: Vec<PaymentEvent>,
    keys: HashMap<(ClientId, IdempotencyKey), IdempotencyRecord>,
    inbox: HashMap<InternalId, (InboxWebhook, Timestamp)>,
    endpoints: HashMap<EndpointId, Endpoint>,
    outbox: HashMap<InternalId, Outgoing>,
    /// The delivery log, in the order attempts were recorded.
    attempts: Vec<DeliveryAttempt>,
}

/// A repository kept in process memory. A cheap handle: clones share the same storage, so a
/// test keeps one to look inside while the service holds another.
#[derive(Clone)]
pub struct InMemoryRepository {
    state: Arc<Mutex<State>>,
    /// Who hears about a change: asked with each write, as the SQL adapter asks.
    audience: Arc<dyn NoticeAudience>,
}

impl Default for InMemoryRepository {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            audience: Arc::new(NoAudience),
        }
    }
}

impl std::fmt::Debug for InMemoryRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRepository")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl InMemoryRepository {
    /// An empty repository. Nobody listens to its changes until
    /// [`InMemoryRepository::with_audience`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The same storage, writing a notification for every endpoint `audience` names with
    /// each change it announces, in the same step as the change (the outbox), as the SQL
    /// adapter does. Only this handle (and its later clones) writes notices; other handles
    /// on the storage keep their own audience.
    #[must_use]
    pub fn with_audience(mut self, audience: Arc<dyn NoticeAudience>) -> Self {
        self.audience = audience;
        self
    }

    /// The notifications a write of `payment` from `expected_version` announces to whoever
    /// listens: for each notice (in order), one per endpoint, all of one notice sharing a
    /// message id. Empty when nobody listens or the payment has no owner.
    fn notices(&self, payment: &Payment, expected_version: u64) -> Vec<Outgoing> {
        let Some(owner) = payment.owner() else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for kind in payment.notices_after(expected_version) {
            let endpoints = self.audience.endpoints_for(owner, kind);
            if endpoints.is_empty() {
                continue;
            }
            let body = notice_json(&NoticeBody::of(kind, payment));
            let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
            for endpoint in endpoints {
                rows.push(Outgoing {
                    notification: Notification {
                        id: fresh_id(),
                        message_id: message_id.clone(),
                        endpoint,
                        client: owner.clone(),
                        payment: payment.id(),
                        kind,
                        sequence: payment.version(),
                        body: body.clone(),
                        created_at: payment.updated_at(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        round_attempts: 0,
                        next_attempt_at: Some(payment.updated_at()),
                        last_status: None,
                        last_error: None,
                        delivered_at: None,
                    },
                    lease_until: None,
                });
            }
        }
        rows
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event recorded, in order (including those for unknown payments).
    pub fn all_events(&self) -> Vec<PaymentEvent> {
        self.lock().events.clone()
    }

    /// The scheduled next check and attempt count of a payment.
    pub fn schedule_of(&self, id: InternalId) -> Option<(Option<Timestamp>, u32)> {
        self.lock()
            .payments
            .get(&id)
            .map(|r| (r.next_check_at, r.attempts))
    }

    /// The webhooks waiting in the inbox, oldest first.
    pub fn inbox(&self) -> Vec<InboxWebhook> {
        let mut items: Vec<InboxWebhook> =
            self.lock().inbox.values().map(|(w, _)| w.clone()).collect();
        items.sort_by_key(|w| (w.received_at, w.id));
        items
    }

    /// How many payments are stored.
    pub fn len(&self) -> usize {
        self.lock().payments.len()
    }

    /// Whether no payment is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    /// Adds a change's notifications to the outbox (after its compare-and-set won).
    fn write_notices(&mut self, notices: Vec<Outgoing>) {
        for n in notices {
            self.outbox.insert(n.notification.id, n);
        }
    }
}

/// The stored row of `payment`, if its version is still `expected`: the compare half of
/// compare-and-set.
fn row_at_version<'s>(
    payments: &'s mut HashMap<InternalId, Row>,
    payment: &Payment,
    expected: u64,
) -> Result<&'s mut Row, RepositoryError> {
    let row = payments
        .get_mut(&payment.id())
        .ok_or(RepositoryError::NotFound(payment.id()))?;
    if row.payment.version() == expected {
        Ok(row)
    } else {
        Err(RepositoryError::VersionConflict {
            id: row.payment.id(),
            expected,
        })
    }
}

#[async_trait::async_trait]
impl PaymentStore for InMemoryRepository {
    async fn insert_intent(
        &self,
        payment: &Payment,
        claim: Option<IdempotencyClaim>,
    ) -> Result<IntentInsert, RepositoryError> {
        let mut st = self.lock();
        if st.payments.contains_key(&payment.id()) {
            return Err(RepositoryError::Duplicate { what: "id" });
        }
        if let Some(claim) = claim {
            let slot = (claim.client.clone(), claim.key.clone());
            if let Some(existing) = st.keys.get(&slot)
                && existing.expires_at > payment.created_at()
            {
                return Ok(IntentInsert::KeyTaken(existing.clone()));
            }
            st.keys.insert(
                slot,
                IdempotencyRecord {
                    client: claim.client,
                    key: claim.key,
                    fingerprint: claim.fingerprint,
                    payment: payment.id(),
                    created_at: payment.created_at(),
                    expires_at: claim.expires_at,
                },
            );
        }
        st.payments.insert(
            payment.id(),
            Row {
                payment: payment.clone(),
                next_check_at: None,
                attempts: 0,
            },
        );
        Ok(IntentInsert::Inserted)
    }

    async fn save_abandoned(
        &self,
        payment: &Payment,
        expected_version: u64,
    ) -> Result<(), RepositoryError> {
        let notices = self.notices(payment, expected_version);
        let mut st = self.lock();
        let row = row_at_version(&mut st.payments, payment, expected_version)?;
        row.payment = payment.clone();
        row.next_check_at = None;
        st.keys.retain(|_, record| record.payment != payment.id());
        st.write_notices(notices);
        Ok(())
    }

    async fn save_outcome(
        &self,
        payment: &Payment,
        expected_version: u64,
        next_check_at: Option<Timestamp>,
    ) -> Result<(), RepositoryError> {
        let notices = self.notices(payment, expected_version);
        let mut st = self.lock();
        if let Some(pid) = payment.payment_id() {
            let taken = st
                .payments
                .values()
                .any(|r| r.payment.id() != payment.id() && r.payment.payment_id() == Some(pid));
            if taken {
                return Err(RepositoryError::Duplicate { what: "payment_id" });
            }
        }
        let row = row_at_version(&mut st.payments, payment, expected_version)?;
        row.payment = payment.clone();
        row.next_check_at = next_check_at;
        st.write_notices(notices);
        Ok(())
    }

    async fn get(&self, id: InternalId) -> Result<Option<Payment>, RepositoryError> {
        Ok(self.lock().payments.get(&id).map(|r| r.payment.clone()))
    }

    async fn get_by_payment_id(&self, id: &PaymentId) -> Result<Option<Payment>, RepositoryError> {
        Ok(self
            .lock()
            .payments
            .values()
            .find(|r| r.payment.payment_id() == Some(id))
            .map(|r| r.payment.clone()))
    }

    async fn find_by_foreign_id(&self, id: &ForeignId) -> Result<Vec<Payment>, RepositoryError> {
        let mut found: Vec<Payment> = self
            .lock()
            .payments
            .values()
            .filter(|r| r.payment.foreign_id() == Some(id))
            .map(|r| r.payment.clone())
            .collect();
        found.sort_by_key(|p| (p.created_at(), p.id()));
        Ok(found)
    }

    async fn list(
        &self,
        filter: &PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, RepositoryError> {
        let st = self.lock();
        let mut rows: Vec<&Payment> = st
            .payments
            .values()
            .map(|r| &r.payment)
            .filter(|p| filter.owner.as_ref().is_none_or(|o| p.is_owned_by(o)))
            .filter(|p| filter.status.is_none_or(|s| p.status() == s))
            .filter(|p| {
                filter
                    .foreign_id
                    .as_ref()
                    .is_none_or(|f| p.foreign_id() == Some(f))
            })
            .filter(|p| filter.created_from.is_none_or(|t| p.created_at() >= t))
            .filter(|p| filter.created_to.is_none_or(|t| p.created_at() < t))
            .filter(|p| {
                !filter.unresolved
                    || matches!(
                        p.outcome(),
                        CreateOutcome::Unknown { .. } | CreateOutcome::Initiated
                    )
            })
            .filter(|p| {
                page.after
                    .is_none_or(|c| (p.created_at(), p.id()) < (c.created_at, c.id))
            })
            .collect();
        rows.sort_by_key(|p| std::cmp::Reverse((p.created_at(), p.id())));
        let read = usize::try_from(page.limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let rows = rows.into_iter().take(read).cloned().collect();
        Ok(Page::from_rows(rows, page.limit))
    }

    async fn update_status(
        &self,
        payment: &Payment,
        expected_version: u64,
        event: &PaymentEvent,
    ) -> Result<(), RepositoryError> {
        let notices = self.notices(payment, expected_version);
        let mut st = self.lock();
        let row = row_at_version(&mut st.payments, payment, expected_version)?;
        // A final status is never replaced by another, whatever the caller decided.
        if row.payment.is_final() && row.payment.status() != payment.status() {
            return Err(RepositoryError::VersionConflict {
                id: payment.id(),
                expected: expected_version,
            });
        }
        row.payment = payment.clone();
        if payment.is_final() {
            row.next_check_at = None;
        }
        st.events.push(event.clone());
        st.write_notices(notices);
        Ok(())
    }

    async fn record_event(&self, event: &PaymentEvent) -> Result<(), RepositoryError> {
        let mut st = self.lock();
        if let Some(id) = event.payment
            && !st.payments.contains_key(&id)
        {
            return Err(RepositoryError::NotFound(id));
        }
        st.events.push(event.clone());
        Ok(())
    }

    async fn events(&self, payment: InternalId) -> Result<Vec<PaymentEvent>, RepositoryError> {
        let mut found: Vec<PaymentEvent> = self
            .lock()
            .events
            .iter()
            .filter(|e| e.payment == Some(payment))
            .cloned()
            .collect();
        // Stable: events received in the same second keep the order they were recorded in.
        found.sort_by_key(|e| e.received_at);
        Ok(found)
    }

    async fn purge_expired_keys(&self, now: Timestamp, limit: u32) -> Result<u64, RepositoryError> {
        let mut st = self.lock();
        let expired: Vec<_> = st
            .keys
            .iter()
            .filter(|(_, r)| r.expires_at <= now)
            .map(|(k, _)| k.clone())
            .take(limit as usize)
            .collect();
        for k in &expired {
            st.keys.remove(k);
        }
        Ok(expired.len() as u64)
    }

    async fn count_unknown(&self) -> Result<u64, RepositoryError> {
        Ok(self
            .lock()
            .payments
            .values()
            .filter(|r| matches!(r.payment.outcome(), CreateOutcome::Unknown { .. }))
            .count() as u64)
    }
}

#[async_trait::async_trait]
impl WebhookInbox for InMemoryRepository {
    async fn store_webhook(
        &self,
        webhook: &InboxWebhook,
        next_attempt_at: Timestamp,
    ) -> Result<(), RepositoryError> {
        self.lock()
            .inbox
            .insert(webhook.id, (webhook.clone(), next_attempt_at));
        Ok(())
    }

    async fn claim_webhooks(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxWebhook>, RepositoryError> {
        let mut st = self.lock();
        let mut due: Vec<&mut (InboxWebhook, Timestamp)> =
            st.inbox.values_mut().filter(|(_, at)| *at <= now).collect();
        due.sort_by_key(|(w, _)| (w.received_at, w.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|(w, at)| {
                *at = now + lease;
                w.clone()
            })
            .collect())
    }

    async fn finish_webhook(
        &self,
        id: InternalId,
        leased_until: Timestamp,
    ) -> Result<LeaseWrite, RepositoryError> {
        let mut st = self.lock();
        if st.inbox.get(&id).is_some_and(|(_, at)| *at == leased_until) {
            st.inbox.remove(&id);
            Ok(LeaseWrite::Written)
        } else {
            Ok(LeaseWrite::LeaseLost)
        }
    }

    async fn retry_webhook(
        &self,
        id: InternalId,
        leased_until: Timestamp,
        next_attempt_at: Timestamp,
        attempts: u32,
    ) -> Result<LeaseWrite, RepositoryError> {
        match self.lock().inbox.get_mut(&id) {
            Some((w, at)) if *at == leased_until => {
                w.attempts = attempts;
                *at = next_attempt_at;
                Ok(LeaseWrite::Written)
            }
            _ => Ok(LeaseWrite::LeaseLost),
        }
    }

    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<InboxEntry>, RepositoryError> {
        let mut found: Vec<InboxEntry> = self
            .lock()
            .inbox
            .values()
            .map(|(webhook, at)| InboxEntry {
                webhook: webhook.clone(),
                next_attempt_at: *at,
            })
            .collect();
        found.sort_by_key(|e| (e.webhook.received_at, e.webhook.id));
        found.truncate(limit as usize);
        Ok(found)
    }
}

#[async_trait::async_trait]
impl ReconcileQueue for InMemoryRepository {
    async fn stale_intents(
        &self,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Payment>, RepositoryError> {
        let mut found: Vec<Payment> = self
            .lock()
            .payments
            .values()
            .map(|r| &r.payment)
            .filter(|p| *p.outcome() == CreateOutcome::Initiated && p.created_at() < created_before)
            .cloned()
            .collect();
        found.sort_by_key(|p| (p.created_at(), p.id()));
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedPayment>, RepositoryError> {
        let mut st = self.lock();
        let mut due: Vec<&mut Row> = st
            .payments
            .values_mut()
            .filter(|r| {
                r.payment.needs_reconciliation() && r.next_check_at.is_some_and(|t| t <= now)
            })
            .collect();
        due.sort_by_key(|r| r.next_check_at);
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.next_check_at = Some(now + lease);
                ClaimedPayment {
                    payment: r.payment.clone(),
                    attempts: r.attempts,
                }
            })
            .collect())
    }

    /// Nothing in memory is ever unreadable.
    async fn count_quarantined(&self) -> Result<u64, RepositoryError> {
        Ok(0)
    }

    async fn count_open(&self, now: Timestamp) -> Result<crate::OpenPayments, RepositoryError> {
        let mut open = crate::OpenPayments::default();
        for r in self.lock().payments.values() {
            if r.payment.outcome() == &CreateOutcome::Created && !r.payment.is_final() {
                open.count(r.payment.created_at().unix_seconds(), now.unix_seconds());
            }
        }
        Ok(open)
    }

    async fn schedule_check(
        &self,
        id: InternalId,
        leased_until: Timestamp,
        next_check_at: Option<Timestamp>,
        attempts: u32,
    ) -> Result<LeaseWrite, RepositoryError> {
        let mut st = self.lock();
        let row = st
            .payments
            .get_mut(&id)
            .ok_or(RepositoryError::NotFound(id))?;
        if row.next_check_at != Some(leased_until) {
            return Ok(LeaseWrite::LeaseLost);
        }
        row.next_check_at = next_check_at;
        row.attempts = attempts;
        Ok(LeaseWrite::Written)
    }
}

#[async_trait::async_trait]
impl NotificationStore for InMemoryRepository {
    /// A replaced endpoint keeps the time it was first added, as an upsert keeps its row's.
    async fn save_endpoint(&self, endpoint: &Endpoint) -> Result<(), RepositoryError> {
        let mut st = self.lock();
        let mut saved = endpoint.clone();
        if let Some(old) = st.endpoints.get(&endpoint.id) {
            saved.created_at = old.created_at;
        }
        st.endpoints.insert(saved.id.clone(), saved);
        Ok(())
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Endpoint>, RepositoryError> {
        Ok(self.lock().endpoints.get(id).cloned())
    }

    async fn endpoints(&self, client: Option<ClientId>) -> Result<Vec<Endpoint>, RepositoryError> {
        let mut found: Vec<Endpoint> = self
            .lock()
            .endpoints
            .values()
            .filter(|e| client.as_ref().is_none_or(|c| &e.client == c))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn set_endpoint_failing(
        &self,
        id: &EndpointId,
        since: Option<Timestamp>,
    ) -> Result<(), RepositoryError> {
        if let Some(e) = self.lock().endpoints.get_mut(id) {
            // A streak already running keeps its start; `None` ends it.
            e.failing_since = since.map(|t| e.failing_since.unwrap_or(t));
        }
        Ok(())
    }

    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        why: &Disabled,
    ) -> Result<bool, RepositoryError> {
        match self.lock().endpoints.get_mut(id) {
            Some(e) if e.disabled.is_none() => {
                e.disabled = Some(why.clone());
                e.updated_at = why.at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>, RepositoryError> {
        let mut st = self.lock();
        let mut due: Vec<&mut Outgoing> = st
            .outbox
            .values_mut()
            .filter(|o| {
                o.notification.state == DeliveryState::Pending
                    && o.notification.next_attempt_at.is_some_and(|t| t <= now)
                    && o.lease_until.is_none_or(|t| t <= now)
            })
            .collect();
        due.sort_by_key(|o| {
            let n = &o.notification;
            (n.next_attempt_at, n.created_at, n.id)
        });
        let mut claimed: Vec<Notification> = due
            .into_iter()
            .take(limit as usize)
            .map(|o| {
                o.lease_until = Some(until);
                o.notification.clone()
            })
            .collect();
        claimed.sort_by_key(|n| (n.created_at, n.id));
        Ok(claimed)
    }

    async fn record_attempts(
        &self,
        outcomes: &[AttemptOutcome],
        leased_until: Timestamp,
    ) -> Result<Vec<LeaseWrite>, RepositoryError> {
        let mut st = self.lock();
        // Which leases hold is decided before anything moves, as one statement would.
        let held: HashSet<InternalId> = outcomes
            .iter()
            .map(|o| o.notification)
            .filter(|id| {
                st.outbox.get(id).is_some_and(|o| {
                    o.notification.state == DeliveryState::Pending
                        && o.lease_until == Some(leased_until)
                })
            })
            .collect();
        let mut writes = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let Some(o) = st
                .outbox
                .get_mut(&outcome.notification)
                .filter(|_| held.contains(&outcome.notification))
            else {
                writes.push(LeaseWrite::LeaseLost);
                continue;
            };
            let n = &mut o.notification;
            (n.state, n.next_attempt_at) = match outcome.next {
                AfterAttempt::Delivered => (DeliveryState::Delivered, None),
                AfterAttempt::RetryAt(t) => (DeliveryState::Pending, Some(t)),
                AfterAttempt::GiveUp => (DeliveryState::Failed, None),
                AfterAttempt::Skip => (DeliveryState::Skipped, None),
            };
            o.lease_until = None;
            if let Some(attempt) = &outcome.attempt {
                n.attempts += 1;
                n.round_attempts += 1;
                n.last_status = attempt.status;
                n.last_error.clone_from(&attempt.error);
                if outcome.next == AfterAttempt::Delivered {
                    n.delivered_at = Some(attempt.at);
                }
                st.attempts.push(attempt.clone());
            }
            writes.push(LeaseWrite::Written);
        }
        Ok(writes)
    }

    /// Nothing is ever owed here: the notifications are written with the change.
    async fn backlog(&self) -> Result<NoticeBacklog, RepositoryError> {
        let pending = self
            .lock()
            .outbox
            .values()
            .filter(|o| o.notification.state == DeliveryState::Pending)
            .count();
        Ok(NoticeBacklog {
            owed: 0,
            pending: pending as u64,
        })
    }

    async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
    ) -> Result<Vec<Notification>, RepositoryError> {
        let st = self.lock();
        let cursor = match filter.before {
            None => None,
            Some(before) => match st.outbox.get(&before) {
                Some(o) => Some((o.notification.created_at, before)),
                // A cursor that names nothing pages nothing.
                None => return Ok(Vec::new()),
            },
        };
        let mut found: Vec<&Notification> = st
            .outbox
            .values()
            .map(|o| &o.notification)
            .filter(|n| filter.client.as_ref().is_none_or(|c| &n.client == c))
            .filter(|n| filter.endpoint.as_ref().is_none_or(|e| &n.endpoint == e))
            .filter(|n| filter.payment.is_none_or(|p| n.payment == p))
            .filter(|n| filter.state.is_none_or(|s| n.state == s))
            .filter(|n| cursor.is_none_or(|c| (n.created_at, n.id) < c))
            .collect();
        found.sort_by_key(|n| std::cmp::Reverse((n.created_at, n.id)));
        Ok(found.into_iter().take(limit as usize).cloned().collect())
    }

    async fn notification(&self, id: InternalId) -> Result<Option<Notification>, RepositoryError> {
        Ok(self.lock().outbox.get(&id).map(|o| o.notification.clone()))
    }

    async fn attempts(&self, id: InternalId) -> Result<Vec<DeliveryAttempt>, RepositoryError> {
        let mut found: Vec<DeliveryAttempt> = self
            .lock()
            .attempts
            .iter()
            .filter(|a| a.notification == id)
            .cloned()
            .collect();
        // Stable: attempts with one number keep the order they were recorded in.
        found.sort_by_key(|a| a.number);
        Ok(found)
    }

    async fn redeliver(&self, id: InternalId, now: Timestamp) -> Result<(), RepositoryError> {
        let mut st = self.lock();
        let o = st
            .outbox
            .get_mut(&id)
            .ok_or(RepositoryError::NotFound(id))?;
        again(o, now);
        Ok(())
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, RepositoryError> {
        let mut count = 0;
        for o in self.lock().outbox.values_mut() {
            let n = &o.notification;
            if &n.endpoint == endpoint
                && matches!(n.state, DeliveryState::Failed | DeliveryState::Skipped)
                && n.created_at >= since
            {
                again(o, now);
                count += 1;
            }
        }
        Ok(count)
    }
}

#[async_trait::async_trait]
impl RetentionStore for InMemoryRepository {
    async fn purge(
        &self,
        what: Retained,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, RepositoryError> {
        let limit = limit as usize;
        let mut st = self.lock();
        match what {
            Retained::Events => {
                // In the order they were recorded, as the SQL adapter's ids run.
                let mut left = limit;
                let before_len = st.events.len();
                st.events.retain(|e| {
                    if left > 0 && e.received_at < before {
                        left -= 1;
                        false
                    } else {
                        true
                    }
                });
                Ok((before_len - st.events.len()) as u64)
            }
            Retained::Notifications => {
                // By id: time-ordered UUIDs, as the SQL adapter orders them.
                let mut old: Vec<InternalId> = st
                    .outbox
                    .values()
                    .map(|o| &o.notification)
                    .filter(|n| n.state != DeliveryState::Pending && n.created_at < before)
                    .map(|n| n.id)
                    .collect();
                old.sort_unstable();
                let gone: HashSet<InternalId> = old.into_iter().take(limit).collect();
                st.outbox.retain(|id, _| !gone.contains(id));
                st.attempts.retain(|a| !gone.contains(&a.notification));
                Ok(gone.len() as u64)
            }
        }
    }
}

/// Makes a notification pending again, due at `now`, in a new round of the schedule.
fn again(o: &mut Outgoing, now: Timestamp) {
    o.notification.state = DeliveryState::Pending;
    o.notification.round_attempts = 0;
    o.notification.next_attempt_at = Some(now);
    o.lease_until = None;
}

/// A fresh notification id: a version 7 UUID, time-ordered as the SQL adapter's are.
fn fresh_id() -> InternalId {
    InternalId::from_uuid(uuid::Uuid::now_v7())
}

/// `body` as JSON, as the SQL adapter stores it (the repository suite holds the two equal).
fn notice_json(body: &NoticeBody) -> String {
    serde_json::to_string(body).unwrap_or_else(|e| unreachable!("a notice is plain data: {e}"))
}
