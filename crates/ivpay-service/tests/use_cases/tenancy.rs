//! Tenancy: a payment is its creator's alone, and each client's payments go through its
//! own IVPAY account.

use std::time::Duration;

use ivpay_domain::{AccountId, ClientId, PaymentStatus};
use ivpay_ports::{
    MockPaymentGateway, PageRequest, PaymentFilter, PaymentRef, PaymentUseCases, QueryError,
};
use ivpay_service::{Accounts, PaymentService, ServiceConfig};

use crate::support::*;

fn other() -> ClientId {
    "other".parse().expect("client")
}

fn pos2() -> AccountId {
    "pos-2".parse().expect("account")
}

#[tokio::test]
async fn another_clients_payment_is_not_found_exactly_like_a_missing_one() {
    let mut g = gateway_creating("t1", 1);
    // A refresh by the other client must not reach IVPAY either.
    g.expect_get().never();
    let (svc, repo) = service(g);
    let p = svc
        .create(client(), None, request("10"))
        .await
        .expect("created")
        .payment;
    assert!(p.is_owned_by(&client()));
    assert_eq!(stored(&repo, p.id()).await.owner(), Some(&client()));

    for reference in [
        PaymentRef::Internal(p.id()),
        PaymentRef::Ivpay("t1".parse().expect("id")),
    ] {
        for refresh in [false, true] {
            let theirs = svc.get(other(), reference.clone(), refresh).await;
            assert!(
                matches!(&theirs, Err(QueryError::NotFound(r)) if *r == reference),
                "{theirs:?}"
            );
        }
        let events = svc.events(other(), reference.clone()).await;
        assert!(matches!(events, Err(QueryError::NotFound(_))), "{events:?}");
    }
    let missing = PaymentRef::Internal(
        "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
            .parse()
            .expect("uuid"),
    );
    let not_there = svc.get(other(), missing, false).await;
    assert!(matches!(not_there, Err(QueryError::NotFound(_))));
    assert!(
        svc.get(client(), PaymentRef::Internal(p.id()), false)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_listing_holds_only_the_callers_payments() {
    let mut g = MockPaymentGateway::new();
    let n = std::sync::atomic::AtomicUsize::new(0);
    g.expect_create().times(3).returning(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(upstream(&format!("l{i}")))
    });
    let (svc, _) = service(g);
    let mine = svc.create(client(), None, request("1")).await.expect("a");
    svc.create(other(), None, request("2")).await.expect("b");
    svc.create(other(), None, request("3")).await.expect("c");
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let listed = svc
        .list(client(), PaymentFilter::default(), page)
        .await
        .expect("listed");
    let ids: Vec<_> = listed.items.iter().map(|p| p.id()).collect();
    assert_eq!(ids, vec![mine.payment.id()]);
    // A filter naming another owner cannot widen the listing.
    let sneaky = PaymentFilter {
        owner: Some(other()),
        ..PaymentFilter::default()
    };
    let listed = svc.list(client(), sneaky, page).await.expect("listed");
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items.iter().all(|p| p.is_owned_by(&client())));
}

/// Each account's gateway is a mock that answers only for its own payments.
fn account_gateway(prefix: &'static str) -> MockPaymentGateway {
    let mut g = MockPaymentGateway::new();
    g.expect_create()
        .returning(move |_| Ok(upstream(&format!("{prefix}-1"))));
    g.expect_get().returning(move |id| {
        assert!(
            id.as_str().starts_with(prefix),
            "{id} asked of account {prefix}"
        );
        Ok(remote(id.as_str(), "PAID"))
    });
    g
}

type TwoAccounts = PaymentService<
    ivpay_ports::fakes::InMemoryRepository,
    MockPaymentGateway,
    ivpay_service::ManualClock,
>;

/// The default account and pos-2, whose client is `other`.
fn two_accounts() -> (
    TwoAccounts,
    ivpay_ports::fakes::InMemoryRepository,
    ivpay_service::ManualClock,
) {
    let accounts = Accounts::single(account_gateway("main"))
        .with(pos2(), account_gateway("pos2"))
        .assign(other(), pos2());
    let repo = ivpay_ports::fakes::InMemoryRepository::new();
    let clk = clock();
    let svc = PaymentService::with_accounts(
        repo.clone(),
        accounts,
        clk.clone(),
        ServiceConfig::default(),
    );
    (svc, repo, clk)
}

#[tokio::test]
async fn each_client_creates_and_is_checked_through_its_own_account() {
    let (svc, repo, clk) = two_accounts();
    let a = svc
        .create(client(), None, request("1"))
        .await
        .expect("a")
        .payment;
    let b = svc
        .create(other(), None, request("2"))
        .await
        .expect("b")
        .payment;
    assert_eq!(a.account(), &AccountId::default());
    assert_eq!(b.account(), &pos2());
    assert_eq!(b.payment_id().map(|p| p.as_str()), Some("pos2-1"));

    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!((report.claimed, report.finalized), (2, 2), "{report:?}");
    for id in [a.id(), b.id()] {
        assert_eq!(stored(&repo, id).await.status(), PaymentStatus::Paid);
    }
}

#[tokio::test]
async fn a_payment_of_an_account_no_longer_configured_waits_instead_of_failing() {
    let (svc, repo, clk) = two_accounts();
    let b = svc
        .create(other(), None, request("2"))
        .await
        .expect("b")
        .payment;

    // Restarted without pos-2: its payment is retried later, not lost or failed.
    let svc = PaymentService::with_accounts(
        repo.clone(),
        Accounts::single(account_gateway("main")),
        clk.clone(),
        ServiceConfig::default(),
    );
    clk.advance(Duration::from_secs(3600));
    let report = svc.reconcile_once().await.expect("pass");
    assert_eq!((report.claimed, report.failed), (1, 1), "{report:?}");
    let (next, _) = repo.schedule_of(b.id()).expect("row");
    assert!(next.is_some(), "checked again later");
    // And a client of that account gets a create refused before anything was sent.
    let svc = PaymentService::with_accounts(
        repo,
        Accounts::single(account_gateway("main")).assign(other(), pos2()),
        clk,
        ServiceConfig::default(),
    );
    let refused = svc.create(other(), None, request("3")).await;
    assert!(refused.is_err(), "{refused:?}");
}
