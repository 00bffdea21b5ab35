//! The sandbox's truth: every payment it made, its status, and the deadlines that turn
//! unpaid payments into TIMEOUT.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use ivpay_domain::{Money, PaymentStatus, Timestamp, Transition, transition};
use serde::Serialize;

use crate::error::ControlError;

/// A payment as the sandbox holds it: what a ledger checker compares against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentSnapshot {
    /// IVPAY's id (32 hex digits).
    pub payment_id: String,
    /// The merchant's reference, if one was sent.
    pub foreign_id: Option<String>,
    /// The status now.
    pub status: PaymentStatus,
    /// The amount, canonical (`"10.00"`).
    pub amount_fiat: String,
    /// The currency code (`"USD"`).
    pub currency_fiat: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its status last changed (creation counts).
    pub processed_at: Timestamp,
    /// When it becomes TIMEOUT if still unpaid.
    pub expires_at: Timestamp,
    /// The coin chosen on the checkout page, if any.
    pub coin: Option<String>,
    /// Where the checkout page sends the customer after paying.
    pub url_success: Option<String>,
    /// Where the checkout page sends the customer after giving up.
    pub url_failed: Option<String>,
    /// What the customer sent when they sent less than asked (an underpayment on the
    /// checkout page), exact decimal text; such a payment stays PENDING until it times
    /// out. `None` when nothing short was sent.
    pub received: Option<String>,
}

/// What a status change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The status changed (and a webhook was queued).
    Applied,
    /// The payment already had that status; nothing happened.
    Unchanged,
}

/// What a create asks for, once the domain's parsers have accepted it. The id, the
/// dates and the status are the sandbox's to give.
pub(crate) struct NewPayment {
    pub(crate) money: Money,
    pub(crate) foreign_id: Option<String>,
    pub(crate) url_success: Option<String>,
    pub(crate) url_failed: Option<String>,
}

/// A payment in the book. No `Debug`: it holds the merchant's key.
pub(crate) struct Record {
    pub(crate) snapshot: PaymentSnapshot,
    pub(crate) api_key: Arc<str>,
    deadline_millis: i64,
}

impl Record {
    pub(crate) fn new(snapshot: PaymentSnapshot, api_key: Arc<str>, deadline_millis: i64) -> Self {
        Self {
            snapshot,
            api_key,
            deadline_millis,
        }
    }
}

/// A status change to announce by webhook.
#[derive(Clone)]
pub(crate) struct Change {
    pub(crate) payment_id: String,
    pub(crate) foreign_id: Option<String>,
    pub(crate) status: PaymentStatus,
    pub(crate) processed_at: Timestamp,
    pub(crate) network: Option<String>,
    pub(crate) api_key: Arc<str>,
}

impl Change {
    pub(crate) fn of(record: &Record) -> Self {
        let s = &record.snapshot;
        Self {
            payment_id: s.payment_id.clone(),
            foreign_id: s.foreign_id.clone(),
            status: s.status,
            processed_at: s.processed_at,
            network: s.coin.clone(),
            api_key: Arc::clone(&record.api_key),
        }
    }
}

/// The result of [`PaymentBook::change`] and the webhooks it calls for.
pub(crate) struct Changed {
    pub(crate) result: Result<ChangeOutcome, ControlError>,
    pub(crate) changes: Vec<Change>,
}

/// All payments, in creation order, with a heap of deadlines for the sweeper.
#[derive(Default)]
pub(crate) struct PaymentBook {
    by_id: HashMap<String, Record>,
    order: Vec<String>,
    deadlines: BinaryHeap<Reverse<(i64, String)>>,
}

impl PaymentBook {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn insert(&mut self, record: Record) {
        let id = record.snapshot.payment_id.clone();
        self.deadlines
            .push(Reverse((record.deadline_millis, id.clone())));
        self.order.push(id.clone());
        self.by_id.insert(id, record);
    }

    pub(crate) fn count(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.by_id.get_mut(id)
    }

    /// Every payment, oldest first.
    pub(crate) fn list(&self) -> Vec<PaymentSnapshot> {
        self.order
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .map(|r| r.snapshot.clone())
            .collect()
    }

    /// Forgets final payments (PAID, TIMEOUT) whose last change is older than `before`
    /// (Unix seconds), so a long development run stays small; answers how many. A
    /// forgotten payment is unknown afterwards, as at IVPAY after its retention.
    pub(crate) fn forget_final_before(&mut self, before: i64) -> usize {
        let old: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, r)| {
                r.snapshot.status.is_final() && r.snapshot.processed_at.unix_seconds() < before
            })
            .map(|(id, _)| id.clone())
            .collect();
        if old.is_empty() {
            return 0;
        }
        for id in &old {
            self.by_id.remove(id);
        }
        self.order.retain(|id| self.by_id.contains_key(id));
        old.len()
    }

    /// Turns this payment into TIMEOUT if its window has passed.
    pub(crate) fn expire_one(&mut self, id: &str, now_millis: i64) -> Option<Change> {
        let record = self.by_id.get_mut(id)?;
        expire(record, now_millis)
    }

    /// Turns every payment whose window has passed into TIMEOUT.
    pub(crate) fn expire_due(&mut self, now_millis: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        while let Some(Reverse((deadline, _))) = self.deadlines.peek() {
            if *deadline > now_millis {
                break;
            }
            let Some(Reverse((_, id))) = self.deadlines.pop() else {
                break;
            };
            if let Some(change) = self
                .by_id
                .get_mut(&id)
                .and_then(|record| expire(record, now_millis))
            {
                changes.push(change);
            }
        }
        changes
    }

    /// Moves a payment to `to` through the state machine, or regardless of it with `force`.
    /// An expired payment becomes TIMEOUT first, so paying too late is refused; that
    /// expiry is in the returned changes even when the change itself is refused.
    pub(crate) fn change(
        &mut self,
        id: &str,
        to: PaymentStatus,
        force: bool,
        now_millis: i64,
        coin: Option<String>,
    ) -> Changed {
        let Some(record) = self.by_id.get_mut(id) else {
            return Changed {
                result: Err(ControlError::UnknownPayment(id.to_owned())),
                changes: Vec::new(),
            };
        };
        let mut changes: Vec<Change> = expire(record, now_millis).into_iter().collect();
        let from = record.snapshot.status;
        let result = match transition(from, to) {
            Transition::Duplicate => Ok(ChangeOutcome::Unchanged),
            Transition::Refuse(reason) if !force => Err(ControlError::Refused { from, to, reason }),
            Transition::Apply | Transition::Refuse(_) => {
                if coin.is_some() {
                    record.snapshot.coin = coin;
                }
                record.snapshot.status = to;
                record.snapshot.processed_at =
                    Timestamp::from_unix_seconds(now_millis.div_euclid(1000));
                changes.push(Change::of(record));
                Ok(ChangeOutcome::Applied)
            }
        };
        Changed { result, changes }
    }
}

fn expire(record: &mut Record, now_millis: i64) -> Option<Change> {
    if record.snapshot.status.is_final() || record.deadline_millis > now_millis {
        return None;
    }
    record.snapshot.status = PaymentStatus::Timeout;
    // IVPAY would report the moment the window closed, not when someone noticed.
    record.snapshot.processed_at =
        Timestamp::from_unix_seconds(record.deadline_millis.div_euclid(1000));
    Some(Change::of(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, deadline_millis: i64) -> Record {
        let at = Timestamp::from_unix_seconds(0);
        Record::new(
            PaymentSnapshot {
                payment_id: id.to_owned(),
                foreign_id: None,
                status: PaymentStatus::Created,
                amount_fiat: "1.00".into(),
                currency_fiat: "USD".into(),
                created_at: at,
                processed_at: at,
                expires_at: Timestamp::from_unix_seconds(deadline_millis / 1000),
                coin: None,
                url_success: None,
                url_failed: None,
                received: None,
            },
            Arc::from("key"),
            deadline_millis,
        )
    }

    fn status(book: &PaymentBook, id: &str) -> Option<PaymentStatus> {
        book.get(id).map(|r| r.snapshot.status)
    }

    #[test]
    fn forgets_only_final_payments_older_than_the_cut() {
        let mut book = PaymentBook::default();
        for (id, status, at) in [
            ("old-paid", PaymentStatus::Paid, 100),
            ("old-open", PaymentStatus::Created, 100),
            ("new-paid", PaymentStatus::Paid, 900),
        ] {
            let mut r = record(id, 10_000_000);
            r.snapshot.status = status;
            r.snapshot.processed_at = Timestamp::from_unix_seconds(at);
            book.insert(r);
        }
        assert_eq!(book.forget_final_before(500), 1);
        assert!(!book.contains("old-paid"));
        assert!(
            book.contains("old-open"),
            "an open payment is never forgotten"
        );
        assert!(book.contains("new-paid"));
        assert_eq!(book.list().len(), 2);
        assert_eq!(book.forget_final_before(500), 0);
    }

    #[test]
    fn expires_only_what_is_due_in_deadline_order() {
        let mut book = PaymentBook::default();
        book.insert(record("late", 30_000));
        book.insert(record("early", 10_000));
        book.insert(record("paid", 5_000));
        assert!(
            book.change("paid", PaymentStatus::Paid, false, 1_000, None)
                .result
                .is_ok()
        );
        let expired: Vec<String> = book
            .expire_due(20_000)
            .into_iter()
            .map(|c| c.payment_id)
            .collect();
        assert_eq!(expired, ["early"]);
        assert_eq!(status(&book, "paid"), Some(PaymentStatus::Paid));
        assert_eq!(status(&book, "late"), Some(PaymentStatus::Created));
        assert!(
            book.expire_due(20_000).is_empty(),
            "each expiry happens once"
        );
    }

    #[test]
    fn a_timeout_is_dated_when_the_window_closed() {
        let mut book = PaymentBook::default();
        book.insert(record("p", 10_500));
        let change = book.expire_one("p", 99_000).expect("expired");
        assert_eq!(change.processed_at.unix_seconds(), 10);
    }

    #[test]
    fn a_late_change_reports_the_expiry_and_the_refusal() {
        let mut book = PaymentBook::default();
        book.insert(record("p", 10_000));
        let changed = book.change("p", PaymentStatus::Paid, false, 11_000, None);
        assert!(matches!(
            changed.result,
            Err(ControlError::Refused {
                from: PaymentStatus::Timeout,
                to: PaymentStatus::Paid,
                ..
            })
        ));
        let announced: Vec<PaymentStatus> = changed.changes.iter().map(|c| c.status).collect();
        assert_eq!(announced, [PaymentStatus::Timeout]);
    }

    #[test]
    fn force_applies_what_the_state_machine_refuses() {
        let mut book = PaymentBook::default();
        book.insert(record("p", 10_000));
        assert!(
            book.change("p", PaymentStatus::Paid, false, 0, None)
                .result
                .is_ok()
        );
        let refused = book.change("p", PaymentStatus::Timeout, false, 0, None);
        assert!(refused.result.is_err());
        assert!(refused.changes.is_empty());
        let forced = book.change("p", PaymentStatus::Timeout, true, 0, None);
        assert_eq!(forced.result, Ok(ChangeOutcome::Applied));
        assert_eq!(status(&book, "p"), Some(PaymentStatus::Timeout));
    }

    #[test]
    fn a_repeat_changes_nothing_and_announces_nothing() {
        let mut book = PaymentBook::default();
        book.insert(record("p", 10_000));
        let first = book.change("p", PaymentStatus::Pending, false, 0, Some("BTC".into()));
        assert_eq!(first.result, Ok(ChangeOutcome::Applied));
        assert_eq!(first.changes[0].network.as_deref(), Some("BTC"));
        let again = book.change("p", PaymentStatus::Pending, false, 0, None);
        assert_eq!(again.result, Ok(ChangeOutcome::Unchanged));
        assert!(again.changes.is_empty());
    }

    #[test]
    fn an_unknown_payment_is_reported() {
        let mut book = PaymentBook::default();
        let changed = book.change("nope", PaymentStatus::Paid, false, 0, None);
        assert_eq!(
            changed.result,
            Err(ControlError::UnknownPayment("nope".into()))
        );
    }
}
