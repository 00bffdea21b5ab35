//! One confirmation in flight per payment: a lock per IVPAY payment id, held while a webhook
//! for that payment is confirmed with IVPAY's `GET` and applied.
//!
//! Two webhooks for one payment then reach IVPAY one after the other, whichever path claimed
//! them (the inbox worker, the reconciler, two batches); webhooks for different payments
//! are confirmed side by side. The lock lives in this process: instances sharing a database
//! are kept apart per webhook by the inbox's lease, not per payment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ivpay_domain::PaymentId;
use tokio::sync::OwnedMutexGuard;

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The locks of the payments being confirmed now. A payment's entry exists only while
/// someone holds or awaits its lock, so the map stays as small as the work in flight.
#[derive(Debug, Default)]
pub(crate) struct PaymentLocks {
    held: Mutex<HashMap<PaymentId, Slot>>,
}

/// Holds a payment's lock until dropped.
#[derive(Debug)]
pub(crate) struct PaymentTurn<'l> {
    locks: &'l PaymentLocks,
    payment: PaymentId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl PaymentLocks {
    fn map(&self) -> MutexGuard<'_, HashMap<PaymentId, Slot>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no one else holds `payment`'s lock (first come, first served), then holds
    /// it.
    pub(crate) async fn lock(&self, payment: &PaymentId) -> PaymentTurn<'_> {
        let slot = self.map().entry(payment.clone()).or_default().clone();
        let guard = slot.lock_owned().await;
        PaymentTurn {
            locks: self,
            payment: payment.clone(),
            guard: Some(guard),
        }
    }

    /// How many payments are locked or awaited now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for PaymentTurn<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.map();
        // Released under the map's lock, so no one can clone the slot between the release
        // and the check: only the map's own reference left means no one waits for it.
        drop(self.guard.take());
        if held
            .get(&self.payment)
            .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            held.remove(&self.payment);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(s: &str) -> PaymentId {
        s.parse().expect("valid id")
    }

    #[tokio::test]
    async fn one_holder_per_payment_others_at_once_and_nothing_left_behind() {
        let locks = PaymentLocks::default();
        let a = locks.lock(&id("a")).await;
        // Another payment is not held up.
        let b = tokio::time::timeout(Duration::from_secs(1), locks.lock(&id("b")))
            .await
            .expect("b is free");
        // The same payment waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), locks.lock(&id("a")))
                .await
                .is_err(),
            "a is held"
        );
        assert_eq!(locks.len(), 2);
        drop(a);
        let again = tokio::time::timeout(Duration::from_secs(1), locks.lock(&id("a")))
            .await
            .expect("a is free once released");
        drop(again);
        drop(b);
        assert_eq!(locks.len(), 0, "released locks leave no entry");
    }
}
