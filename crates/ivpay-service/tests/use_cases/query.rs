//! Reads: a payment, optionally refreshed from IVPAY.

use ivpay_domain::PaymentStatus;
use ivpay_ports::{PaymentRef, PaymentUseCases, Refresh};

use crate::support::*;

#[tokio::test]
async fn get_with_refresh_applies_what_ivpay_says() {
    let mut g = gateway_creating("p13", 1);
    g.expect_get()
        .times(1)
        .returning(|_| Ok(remote("p13", "PAID")));
    let (svc, repo) = service(g);
    let p = created(&svc, &repo).await;
    let plain = svc
        .get(client(), PaymentRef::Internal(p.id()), false)
        .await
        .expect("found");
    assert_eq!(
        (plain.payment.status(), plain.refresh),
        (PaymentStatus::Created, Refresh::NotAsked)
    );
    let fresh = svc
        .get(
            client(),
            PaymentRef::Ivpay("p13".parse().expect("valid")),
            true,
        )
        .await
        .expect("refreshed");
    assert_eq!(
        (fresh.payment.status(), fresh.refresh),
        (PaymentStatus::Paid, Refresh::Done)
    );
    // Final now: a second refresh does not call IVPAY again (times(1)).
    let again = svc
        .get(client(), PaymentRef::Internal(p.id()), true)
        .await
        .expect("found");
    assert_eq!(
        (again.payment.status(), again.refresh),
        (PaymentStatus::Paid, Refresh::NotNeeded)
    );
    assert!(matches!(
        svc.get(
            client(),
            PaymentRef::Ivpay("missing".parse().expect("valid")),
            false
        )
        .await,
        Err(ivpay_ports::QueryError::NotFound(_))
    ));
}

/// Refreshes and webhook confirmations share the account's budget toward IVPAY, and each
/// client has its own for refreshes: over it, the stored state is answered, IVPAY is not
/// asked, and a webhook waits in the inbox without losing an attempt.
#[tokio::test]
async fn over_budget_refreshes_answer_the_stored_state_and_webhooks_wait() {
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ivpay_service::{BudgetConfig, PaymentService, Rate, ServiceConfig};

    let gets = Arc::new(AtomicUsize::new(0));
    let seen = gets.clone();
    let mut g = gateway_creating("p14", 1);
    g.expect_get().returning(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(remote("p14", "PENDING"))
    });
    let one = NonZeroU32::new(1).expect("not zero");
    let config = ServiceConfig {
        upstream_budget: BudgetConfig {
            per_account: Some(Rate {
                per_second: one,
                burst: NonZeroU32::new(3).expect("not zero"),
            }),
            per_client: Some(Rate {
                per_second: one,
                burst: NonZeroU32::new(2).expect("not zero"),
            }),
        },
        ..ServiceConfig::default()
    };
    let repo = ivpay_ports::fakes::InMemoryRepository::new();
    let svc = PaymentService::new(repo.clone(), g, clock(), config);
    let p = created(&svc, &repo).await;
    let refresh = || svc.get(client(), PaymentRef::Internal(p.id()), true);
    assert_eq!(refresh().await.expect("read").refresh, Refresh::Done);
    assert_eq!(refresh().await.expect("read").refresh, Refresh::Done);
    let skipped = refresh().await.expect("read");
    assert_eq!(
        skipped.refresh,
        Refresh::Skipped,
        "the client's burst is spent"
    );
    assert_eq!(
        skipped.payment.status(),
        PaymentStatus::Pending,
        "the stored state"
    );
    assert_eq!(gets.load(Ordering::SeqCst), 2);

    // One call left in the account's burst: the first webhook is confirmed, the second
    // waits with its attempts untouched.
    svc.receive_webhook(hint("p14", Some("PAID"), "{}"))
        .await
        .expect("kept");
    svc.receive_webhook(hint("p14", Some("PAID"), "{ }"))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.processed, report.over_budget), (1, 1), "{report:?}");
    assert_eq!(gets.load(Ordering::SeqCst), 3);
    let waiting = repo.inbox();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0].attempts, 0,
        "an over-budget pass is not an attempt"
    );
}
