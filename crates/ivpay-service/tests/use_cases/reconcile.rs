//! The reconciler: stale intents, due payments with back-off, expired keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ivpay_domain::{CreateOutcome, Timestamp, UpdateSource};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{CreateError, MockPaymentGateway, PaymentStore, PaymentUseCases};
use ivpay_service::{PaymentService, ServiceConfig};

use crate::support::*;

/// A gateway whose creates answer `{prefix}0`, `{prefix}1`, … (`times` of them).
fn gateway_numbering(prefix: &'static str, times: usize) -> MockPaymentGateway {
    let mut g = MockPaymentGateway::new();
    let counter = AtomicUsize::new(0);
    g.expect_create().times(times).returning(move |_| {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        Ok(upstream(&format!("{prefix}{i}")))
    });
    g
}

async fn create_payments(svc: &impl PaymentUseCases, n: usize) -> Vec<ivpay_domain::InternalId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            svc.create(client(), None, request("10"))
                .await
                .expect("created")
                .payment
                .id(),
        );
    }
    ids
}

#[tokio::test]
async fn reconcile_polls_due_payments_and_backs_off_the_rest() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = gateway_numbering("r", 3);
    g.expect_get().returning(|id| match id.as_str() {
        "r0" => Ok(remote("r0", "PAID")),
        "r1" => Ok(remote("r1", "PENDING")),
        _ => Err(timeout()),
    });
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), ServiceConfig::default());
    let ids = create_payments(&svc, 3).await;
    let nothing_due = svc.reconcile_once().await.expect("pass");
    assert_eq!(nothing_due.claimed, 0, "first checks are in the future");

    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(
        (
            report.claimed,
            report.applied,
            report.finalized,
            report.failed
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(
        repo.schedule_of(ids[0]).expect("row").0,
        None,
        "paid: no more checks"
    );
    let (next1, attempts1) = repo.schedule_of(ids[1]).expect("row");
    assert_eq!(attempts1, 1);
    assert!(
        next1.is_some_and(|t| t > clk_now(&clk)),
        "pending: checked again later"
    );
    assert!(
        repo.schedule_of(ids[2]).expect("row").0.is_some(),
        "failed: retried later"
    );
    let events = repo.all_events();
    assert!(events.iter().all(|e| e.source == UpdateSource::Poll));

    let right_after = svc.reconcile_once().await.expect("pass");
    assert_eq!(right_after.claimed, 0, "back-off holds");
}

#[tokio::test]
async fn an_intent_left_initiated_by_a_dead_request_is_settled_as_unknown() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let svc = PaymentService::new(
        repo.clone(),
        MockPaymentGateway::new(),
        clk.clone(),
        ServiceConfig {
            in_flight_wait: Duration::from_millis(20),
            in_flight_poll: Duration::from_millis(10),
            ..ServiceConfig::default()
        },
    );
    // A request recorded its intent and key, then the process died before IVPAY answered.
    let stuck = ivpay_domain::Payment::initiate(
        ivpay_domain::InternalId::from_uuid(uuid_v4_like()),
        "shop".parse().expect("client"),
        ivpay_domain::AccountId::default(),
        request("10"),
        Timestamp::from_unix_seconds(T0),
    );
    let claim = ivpay_ports::IdempotencyClaim {
        client: client(),
        key: "died".parse().expect("valid"),
        fingerprint: sha_of(&request("10")),
        expires_at: Timestamp::from_unix_seconds(T0 + 86_400),
    };
    repo.insert_intent(&stuck, Some(claim))
        .await
        .expect("stored");

    let early = svc.reconcile_once().await.expect("pass");
    assert_eq!(early.recovered, 0, "a young intent may still be in flight");
    let waiting = svc
        .create(client(), key("died"), request("10"))
        .await
        .expect_err("in flight");
    assert!(matches!(waiting, CreateError::InFlight { .. }));

    clk.advance(Duration::from_secs(301));
    let later = svc.reconcile_once().await.expect("pass");
    assert_eq!(later.recovered, 1);
    let settled = repo.get(stuck.id()).await.expect("read").expect("kept");
    assert!(matches!(settled.outcome(), CreateOutcome::Unknown { .. }));
    // The client's retry now learns the truth instead of waiting forever, and nothing is re-sent.
    let retry = svc
        .create(client(), key("died"), request("10"))
        .await
        .expect_err("unknown");
    assert!(matches!(retry, CreateError::OutcomeUnknown { id, .. } if id == stuck.id()));
}

#[tokio::test]
async fn the_reconciler_purges_idempotency_keys_past_their_retention() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = gateway_creating("p20", 1);
    // The payment itself comes due for a poll after a day; IVPAY says it is still CREATED.
    g.expect_get().returning(|_| Ok(remote("p20", "CREATED")));
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), ServiceConfig::default());
    svc.create(client(), key("kept-a-day"), request("10"))
        .await
        .expect("created");
    assert_eq!(
        svc.reconcile_once().await.expect("pass").keys_purged,
        0,
        "within retention"
    );
    clk.advance(Duration::from_secs(24 * 3600));
    assert_eq!(svc.reconcile_once().await.expect("pass").keys_purged, 1);
    assert_eq!(svc.reconcile_once().await.expect("pass").keys_purged, 0);
}

/// A batch of slow GETs can outlast the claim's lease; another worker then claims the
/// payment. The first worker's late schedule must not overwrite the second's lease (nor
/// set its attempt count): it is refused and counted.
#[tokio::test]
async fn a_check_that_outlives_its_lease_leaves_the_new_claimers_schedule_alone() {
    use futures_util::FutureExt;
    use ivpay_ports::ReconcileQueue;

    let repo = InMemoryRepository::new();
    let clk = clock();
    let config = ServiceConfig::default();
    let lease = config.reconcile_lease;
    let mut g = gateway_creating("r0", 1);
    let (other, other_clock) = (repo.clone(), clk.clone());
    let taken_over = Arc::new(std::sync::Mutex::new(None));
    let record = taken_over.clone();
    g.expect_get().times(1).returning(move |_| {
        // IVPAY is slow: the lease runs out, and another worker claims the payment.
        other_clock.advance(lease + Duration::from_secs(1));
        let now = clk_now(&other_clock);
        let claimed = other
            .claim_due(now, lease, 10)
            .now_or_never()
            .expect("the fake answers at once")
            .expect("claimed");
        assert_eq!(claimed.len(), 1, "due again once the lease ran out");
        *record.lock().expect("not poisoned") = Some(now + lease);
        Err(timeout())
    });
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), config);
    let id = create_payments(&svc, 1).await[0];
    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(
        (report.claimed, report.failed, report.lease_lost),
        (1, 1, 1)
    );
    let other_lease = taken_over
        .lock()
        .expect("not poisoned")
        .expect("taken over");
    assert_eq!(
        repo.schedule_of(id),
        Some((Some(other_lease), 0)),
        "the new claimer's lease and count stand"
    );
}

#[tokio::test]
async fn a_long_retry_after_from_ivpay_delays_the_next_check_only_up_to_the_cap() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let mut g = gateway_creating("ra1", 1);
    g.expect_get().times(1).returning(|_| {
        Err(ivpay_ports::GatewayError::Unavailable {
            reason: "HTTP 429".into(),
            delivery: ivpay_ports::Delivery::Refused,
            retry_after: Some(Duration::from_secs(86_400)),
        })
    });
    let config = ServiceConfig::default();
    let cap = config.max_retry_after;
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), config);
    let id = create_payments(&svc, 1).await[0];
    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(report.failed, 1);
    let (next, _) = repo.schedule_of(id).expect("row");
    let wait = next.expect("checked again").unix_seconds() - clk_now(&clk).unix_seconds();
    let cap = i64::try_from(cap.as_secs()).expect("small");
    assert_eq!(wait, cap, "Retry-After honoured, but not for a day");
}

/// The lease covers one check at IVPAY's slowest, not a batch of them: once a slow GET
/// has eaten the lease, the rest of the batch is handed back due at once (unchecked, its
/// attempt count untouched) instead of being held until a dead or slow pass lets go.
#[tokio::test]
async fn a_pass_that_runs_out_of_lease_hands_the_rest_of_its_batch_back() {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let config = ServiceConfig::default();
    let slow = config.reconcile_lease - config.longest_get + Duration::from_secs(1);
    let mut g = gateway_numbering("h", 3);
    let gets = Arc::new(AtomicUsize::new(0));
    let (seen, slow_clock) = (gets.clone(), clk.clone());
    g.expect_get().returning(move |id| {
        seen.fetch_add(1, Ordering::SeqCst);
        slow_clock.advance(slow);
        Ok(remote(id.as_str(), "PENDING"))
    });
    let svc = PaymentService::new(repo.clone(), g, clk.clone(), config);
    let ids = create_payments(&svc, 3).await;
    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!(
        gets.load(Ordering::SeqCst),
        1,
        "one check fitted in the lease"
    );
    assert_eq!(
        (report.claimed, report.handed_back, report.lease_lost),
        (3, 2, 0)
    );
    let now = clk_now(&clk);
    let handed: Vec<_> = ids
        .iter()
        .filter_map(|id| repo.schedule_of(*id))
        .filter(|(next, attempts)| *next == Some(now) && *attempts == 0)
        .collect();
    assert_eq!(handed.len(), 2, "due now, never counted as a check");

    let again = svc.reconcile_once().await.expect("pass");
    assert_eq!(
        again.claimed, 2,
        "the next pass claims what was handed back"
    );
}
