//! Reads: a payment, optionally refreshed from IVPAY.

use ivpay_domain::PaymentStatus;
use ivpay_ports::{PaymentRef, PaymentUseCases};

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
        .get(PaymentRef::Internal(p.id()), false)
        .await
        .expect("found");
    assert_eq!(plain.status(), PaymentStatus::Created);
    let fresh = svc
        .get(PaymentRef::Ivpay("p13".parse().expect("valid")), true)
        .await
        .expect("refreshed");
    assert_eq!(fresh.status(), PaymentStatus::Paid);
    // Final now: a second refresh does not call IVPAY again (times(1)).
    let again = svc
        .get(PaymentRef::Internal(p.id()), true)
        .await
        .expect("found");
    assert_eq!(again.status(), PaymentStatus::Paid);
    assert!(matches!(
        svc.get(PaymentRef::Ivpay("missing".parse().expect("valid")), false)
            .await,
        Err(ivpay_ports::QueryError::NotFound(_))
    ));
}
