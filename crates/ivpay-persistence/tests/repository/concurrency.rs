//! Many writers at once: compare-and-set, idempotency keys, reconciliation claims.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use ivpay_domain::{EventOutcome, Evidence, PaymentStatus, ReportedStatus, Transition};
use ivpay_ports::{IdempotencyClaim, IntentInsert, RepositoryError};
use tokio::sync::Barrier;

use crate::support::{LEASE, Storage, applied_event, at, created_upstream, id, intent};

const WRITERS: usize = 8;

/// One writer's try: which version it replaced, and the evidence of its event.
#[derive(Debug)]
struct Win {
    replaced_version: u64,
    evidence: String,
}

pub(crate) async fn racing_status_updates_lose_no_event_and_never_leave_a_final_state(
    repo: impl Storage,
) {
    let start = created_upstream(&repo, 1, 100, Some(100)).await;
    let start_version = start.version();
    let targets = [
        PaymentStatus::Pending,
        PaymentStatus::Pending,
        PaymentStatus::Pending,
        PaymentStatus::Pending,
        PaymentStatus::Paid,
        PaymentStatus::Paid,
        PaymentStatus::Timeout,
        PaymentStatus::Timeout,
    ];
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for (w, to) in targets.into_iter().enumerate() {
        let repo = repo.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut wins = Vec::new();
            let mut conflicts = 0u32;
            for attempt in 0.. {
                let mut p = repo
                    .get(crate::support::id(1))
                    .await
                    .expect("read")
                    .expect("present");
                let read = p.version();
                let evidence = format!("writer {w} attempt {attempt} to {to}");
                let event = applied_event(&p, to, evidence.clone());
                if p.apply_status(to, None, at(200)) != Transition::Apply {
                    break;
                }
                match repo.update_status(&p, read, &event).await {
                    Ok(()) => {
                        wins.push(Win {
                            replaced_version: read,
                            evidence,
                        });
                        break;
                    }
                    Err(RepositoryError::VersionConflict { expected, .. }) => {
                        assert_eq!(expected, read);
                        conflicts += 1;
                    }
                    Err(e) => panic!("writer {w}: {e:?}"),
                }
            }
            (wins, conflicts)
        }));
    }
    let mut wins = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (w, c) = task.await.expect("writer finished");
        wins.extend(w);
        conflicts += c;
    }

    let versions: BTreeSet<u64> = wins.iter().map(|w| w.replaced_version).collect();
    assert_eq!(
        versions.len(),
        wins.len(),
        "one winner per version: {wins:?}"
    );
    let expected_versions: BTreeSet<u64> =
        (start_version..start_version + wins.len() as u64).collect();
    assert_eq!(versions, expected_versions, "versions won in sequence");
    assert!(
        (1..=2).contains(&wins.len()),
        "at most PENDING then a final: {wins:?}"
    );
    eprintln!("{} wins, {conflicts} lost compare-and-sets", wins.len());

    let stored = repo.get(id(1)).await.expect("read").expect("present");
    assert!(stored.is_final(), "some writer reached a final state");
    assert_eq!(stored.version(), start_version + wins.len() as u64);

    let events = repo.events(id(1)).await.expect("events");
    assert_eq!(
        events.len(),
        wins.len(),
        "one event per win, none for losers"
    );
    let recorded: HashSet<_> = events.iter().filter_map(|e| e.evidence.clone()).collect();
    for win in &wins {
        assert!(
            recorded.contains(&Evidence::from_confirmation(win.evidence.as_str())),
            "{win:?} has its event"
        );
    }
    assert!(events.iter().all(|e| e.outcome == EventOutcome::Applied));
    let last = events.last().expect("at least one event");
    assert_eq!(last.to, ReportedStatus::Known(stored.status()));
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.to == ReportedStatus::Known(PaymentStatus::Pending)),
        "only the last applied event is final: {events:?}"
    );
}

pub(crate) async fn racing_claims_on_one_key_insert_exactly_once(repo: impl Storage) {
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let repo = repo.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let p = intent(w as u128 + 1, "7.00", 1_000);
            let claim = IdempotencyClaim {
                client: "shop".parse().expect("valid"),
                key: "the-one-key".parse().expect("valid"),
                fingerprint: format!("fp-{w}"),
                expires_at: at(90_000),
            };
            barrier.wait().await;
            let answer = repo.insert_intent(&p, Some(claim)).await.expect("answered");
            (p.id(), answer)
        }));
    }
    let mut inserted = Vec::new();
    let mut taken = Vec::new();
    for task in tasks {
        match task.await.expect("writer finished") {
            (id, IntentInsert::Inserted) => inserted.push(id),
            (id, IntentInsert::KeyTaken(record)) => taken.push((id, record)),
        }
    }
    assert_eq!(inserted.len(), 1, "exactly one Inserted");
    assert_eq!(taken.len(), WRITERS - 1);
    let winner = inserted[0];
    for (loser, record) in &taken {
        assert_eq!(record.payment, winner, "losers see the winner's record");
        assert_eq!(
            repo.get(*loser).await.expect("read"),
            None,
            "loser wrote nothing"
        );
    }
    assert!(repo.get(winner).await.expect("read").is_some());
}

pub(crate) async fn concurrent_claimers_get_each_due_row_once(repo: impl Storage) {
    const DUE: u128 = 40;
    for n in 0..DUE {
        created_upstream(&repo, n + 1, 100 + n as i64, Some(500 + n as i64)).await;
    }
    // Not due, or not the reconciler's business: never claimed.
    created_upstream(&repo, 1_000, 100, Some(5_000)).await;
    created_upstream(&repo, 1_001, 100, None).await;
    repo.insert_intent(&intent(1_002, "1.00", 100), None)
        .await
        .expect("stored");

    let claimers = 6;
    let barrier = Arc::new(Barrier::new(claimers));
    let mut tasks = Vec::new();
    for _ in 0..claimers {
        let repo = repo.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            loop {
                let batch = repo.claim_due(at(1_000), LEASE, 3).await.expect("claimed");
                if batch.is_empty() {
                    break;
                }
                assert!(batch.len() <= 3);
                mine.extend(batch.into_iter().map(|c| c.payment.id()));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut busy_claimers = 0;
    for task in tasks {
        let mine = task.await.expect("claimer finished");
        busy_claimers += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "no row claimed twice");
    let expected: HashSet<_> = (1..=DUE).map(id).collect();
    assert_eq!(unique, expected, "every due row claimed, nothing else");
    eprintln!("{busy_claimers} of {claimers} claimers got rows");
}
