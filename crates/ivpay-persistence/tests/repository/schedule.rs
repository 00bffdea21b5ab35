//! The reconciliation schedule: what is due, leases, and who moves the next check.

use std::collections::HashSet;

use ivpay_domain::{InternalId, PaymentStatus};
use ivpay_ports::{LeaseWrite, RepositoryError};

use crate::support::{LEASE, Storage, applied_event, at, created_upstream, id, intent, move_to};

async fn claimed_ids(repo: &impl Storage, now: i64) -> HashSet<InternalId> {
    repo.claim_due(at(now), LEASE, 100)
        .await
        .expect("claimed")
        .into_iter()
        .map(|c| c.payment.id())
        .collect()
}

pub(crate) async fn only_due_non_final_upstream_payments_are_claimed_and_leased(
    repo: impl Storage,
) {
    created_upstream(&repo, 1, 10, Some(100)).await; // due, CREATED
    let mut pending = created_upstream(&repo, 2, 10, Some(90)).await;
    move_to(&repo, &mut pending, PaymentStatus::Pending, 20).await; // due, PENDING
    created_upstream(&repo, 3, 10, Some(101)).await; // not due yet
    created_upstream(&repo, 4, 10, None).await; // never scheduled
    let mut paid = created_upstream(&repo, 5, 10, Some(50)).await;
    move_to(&repo, &mut paid, PaymentStatus::Paid, 20).await; // final
    let initiated = intent(6, "1.00", 10); // not created upstream
    repo.insert_intent(&initiated, None).await.expect("stored");
    repo.save_outcome(&initiated, initiated.version(), Some(at(50)))
        .await
        .expect("scheduled");

    let claimed = repo.claim_due(at(100), LEASE, 100).await.expect("claimed");
    let ids: HashSet<_> = claimed.iter().map(|c| c.payment.id()).collect();
    assert_eq!(ids, HashSet::from([id(1), id(2)]));
    let claimed_pending = claimed
        .iter()
        .find(|c| c.payment.id() == id(2))
        .expect("claimed");
    assert_eq!(claimed_pending.payment, pending, "claimed as stored");
    assert_eq!(claimed_pending.attempts, 0);

    // Leased: not due again until the lease ends (now + 60 s).
    assert_eq!(claimed_ids(&repo, 100).await, HashSet::new());
    assert_eq!(claimed_ids(&repo, 159).await, HashSet::from([id(3)]));
    assert_eq!(
        claimed_ids(&repo, 160).await,
        HashSet::from([id(1), id(2)]),
        "a dead claimer's rows come back when the lease ends"
    );

    // The limit is honoured, oldest schedule first.
    let two = repo.claim_due(at(10_000), LEASE, 2).await.expect("claimed");
    assert_eq!(two.len(), 2);
    assert_eq!(
        repo.claim_due(at(10_000), LEASE, 0).await.expect("claimed"),
        vec![]
    );
}

pub(crate) async fn final_status_leaves_the_schedule(repo: impl Storage) {
    let mut p = created_upstream(&repo, 1, 10, Some(100)).await;
    move_to(&repo, &mut p, PaymentStatus::Pending, 20).await;
    assert_eq!(
        claimed_ids(&repo, 100).await,
        HashSet::from([id(1)]),
        "a non-final update keeps the schedule"
    );
    move_to(&repo, &mut p, PaymentStatus::Timeout, 30).await;
    assert_eq!(claimed_ids(&repo, 1_000_000).await, HashSet::new());
    // The claim made at 100 ended with the final status: its holder's late schedule is
    // refused, and even a schedule set by mistake does not bring a final payment back.
    assert_eq!(
        repo.schedule_check(id(1), at(100) + LEASE, Some(at(0)), 3)
            .await
            .expect("answered"),
        LeaseWrite::LeaseLost
    );
    assert_eq!(claimed_ids(&repo, 1_000_000).await, HashSet::new());
}

pub(crate) async fn save_outcome_sets_the_first_check(repo: impl Storage) {
    created_upstream(&repo, 1, 10, Some(500)).await;
    created_upstream(&repo, 2, 10, None).await;
    assert_eq!(claimed_ids(&repo, 499).await, HashSet::new());
    assert_eq!(claimed_ids(&repo, 500).await, HashSet::from([id(1)]));
    assert_eq!(claimed_ids(&repo, 1_000_000).await, HashSet::from([id(1)]));
}

pub(crate) async fn schedule_check_sets_time_and_attempts(repo: impl Storage) {
    created_upstream(&repo, 1, 10, Some(100)).await;
    assert_eq!(claimed_ids(&repo, 100).await, HashSet::from([id(1)]));
    assert_eq!(
        repo.schedule_check(id(1), at(100) + LEASE, Some(at(300)), 4)
            .await
            .expect("scheduled"),
        LeaseWrite::Written
    );
    assert_eq!(claimed_ids(&repo, 299).await, HashSet::new());
    let claimed = repo.claim_due(at(300), LEASE, 10).await.expect("claimed");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 4);

    assert_eq!(
        repo.schedule_check(id(1), at(300) + LEASE, None, 5)
            .await
            .expect("unscheduled"),
        LeaseWrite::Written
    );
    assert_eq!(claimed_ids(&repo, 1_000_000).await, HashSet::new());

    let err = repo
        .schedule_check(id(404), at(1), Some(at(1)), 0)
        .await
        .expect_err("no such payment");
    assert!(
        matches!(err, RepositoryError::NotFound(i) if i == id(404)),
        "{err:?}"
    );
}

pub(crate) async fn stale_intents_are_only_old_initiated_rows_oldest_first(repo: impl Storage) {
    // Two stuck intents, one too young to call stuck, one settled long ago.
    for (n, created) in [(1, 50), (2, 20), (3, 500)] {
        repo.insert_intent(&intent(n, "1.00", created), None)
            .await
            .expect("intent stored");
    }
    created_upstream(&repo, 4, 10, None).await;
    let stale: Vec<InternalId> = repo
        .stale_intents(at(100), 10)
        .await
        .expect("listed")
        .iter()
        .map(|p| p.id())
        .collect();
    assert_eq!(stale, vec![id(2), id(1)]);
    assert_eq!(
        repo.stale_intents(at(100), 1).await.expect("listed").len(),
        1
    );
    assert!(
        repo.stale_intents(at(20), 10)
            .await
            .expect("listed")
            .is_empty()
    );
}

pub(crate) async fn unknown_outcomes_are_counted(repo: impl Storage) {
    assert_eq!(repo.count_unknown().await.expect("counted"), 0);
    for n in 1..=3 {
        let mut p = intent(n, "1.00", 10);
        repo.insert_intent(&p, None).await.expect("stored");
        if n != 2 {
            let read = p.version();
            p.mark_unknown("timed out".into(), at(11))
                .expect("initiated settles");
            repo.save_outcome(&p, read, None).await.expect("saved");
        }
    }
    created_upstream(&repo, 4, 10, None).await;
    assert_eq!(repo.count_unknown().await.expect("counted"), 2);
}

pub(crate) async fn open_payments_are_counted_by_age(repo: impl Storage) {
    let now = 10 * 86_400;
    // Open: recorded a minute, two hours and two days ago.
    created_upstream(&repo, 1, now - 60, None).await;
    created_upstream(&repo, 2, now - 7_200, None).await;
    created_upstream(&repo, 3, now - 2 * 86_400, None).await;
    // On the bounds: exactly an hour old is past the first bucket, exactly a day the second.
    created_upstream(&repo, 4, now - 3_600, None).await;
    created_upstream(&repo, 5, now - 86_400, None).await;
    // Not open: final, not created upstream, unknown.
    let mut paid = created_upstream(&repo, 6, now - 60, None).await;
    let read = paid.version();
    let event = applied_event(&paid, PaymentStatus::Paid, "{}".into());
    paid.apply_status(PaymentStatus::Paid, None, at(now - 30));
    repo.update_status(&paid, read, &event).await.expect("paid");
    repo.insert_intent(&intent(7, "1.00", now - 60), None)
        .await
        .expect("intent");
    let mut unknown = intent(8, "1.00", now - 60);
    repo.insert_intent(&unknown, None).await.expect("intent");
    let read = unknown.version();
    unknown
        .mark_unknown("timed out".into(), at(now - 59))
        .expect("settles");
    repo.save_outcome(&unknown, read, None)
        .await
        .expect("saved");
    let open = repo.count_open(at(now)).await.expect("counted");
    assert_eq!(
        (open.under_an_hour, open.under_a_day, open.older),
        (1, 2, 2),
        "{open:?}"
    );
}

/// A claimer whose lease ran out (a batch of slow GETs) must not overwrite the schedule of
/// the claimer that took the payment over, nor set its attempt count back.
pub(crate) async fn a_stale_claimer_cannot_overwrite_the_schedule_of_the_one_that_took_over(
    repo: impl Storage,
) {
    created_upstream(&repo, 1, 10, Some(100)).await;
    let slow = at(100) + LEASE;
    assert_eq!(claimed_ids(&repo, 100).await, HashSet::from([id(1)]));
    // The slow claimer's lease ends; another claimer takes the payment.
    let fresh = slow + LEASE;
    let taken = repo.claim_due(slow, LEASE, 10).await.expect("claimed");
    assert_eq!(taken.len(), 1);
    assert_eq!(
        repo.schedule_check(id(1), fresh, Some(at(500)), 7)
            .await
            .expect("scheduled"),
        LeaseWrite::Written
    );
    // The slow claimer comes back with an earlier check and a lower count: refused.
    assert_eq!(
        repo.schedule_check(id(1), slow, Some(at(200)), 1)
            .await
            .expect("answered"),
        LeaseWrite::LeaseLost
    );
    assert_eq!(
        claimed_ids(&repo, 499).await,
        HashSet::new(),
        "not moved earlier"
    );
    let claimed = repo.claim_due(at(500), LEASE, 10).await.expect("claimed");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].attempts, 7,
        "the count of the claimer that held it"
    );
}
