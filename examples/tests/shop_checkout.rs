//! The shop's checkout tested the way an embedding team would: the IVPAY simulator as a
//! dev-dependency, started in the test, the shop's own code pointed at it.

use ivpay_domain::PaymentStatus;
use ivpay_examples::{CheckoutError, Order, PaymentDesk};
use ivpay_http_adapter::IvpayClient;
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig};

const SHOP_KEY: &str = "shop-test-key";

async fn desk_against_sandbox() -> (PaymentDesk, ivpay_sandbox::SandboxServer) {
    let sandbox =
        Sandbox::spawn(SandboxConfig::default().with_merchant(MerchantConfig::new(SHOP_KEY)))
            .await
            .expect("the simulator starts");
    let client = IvpayClient::builder(SHOP_KEY)
        .base_url(sandbox.base_url())
        .allow_http(true)
        .build()
        .expect("client");
    (PaymentDesk::new(client), sandbox)
}

fn order(total: &str) -> Order {
    Order {
        reference: "order-1001".into(),
        total: total.into(),
        currency: "EUR".into(),
    }
}

#[tokio::test]
async fn a_paid_order_is_seen_as_paid() {
    let (desk, sandbox) = desk_against_sandbox().await;
    let checkout = desk.checkout(&order("24.90")).await.expect("checkout");
    assert!(checkout.pay_at.contains(checkout.payment_id.as_str()));
    assert!(!desk.is_paid(&checkout.payment_id).await.expect("asked"));

    // The customer pays on IVPAY's page (here: the simulator's control).
    sandbox
        .sandbox()
        .set_status(checkout.payment_id.as_str(), PaymentStatus::Paid, false)
        .expect("paid");
    assert!(desk.is_paid(&checkout.payment_id).await.expect("asked"));
    let upstream = sandbox
        .sandbox()
        .payment(checkout.payment_id.as_str())
        .expect("IVPAY has it");
    assert_eq!(upstream.amount_fiat, "24.90");
    assert_eq!(upstream.foreign_id.as_deref(), Some("order-1001"));
}

#[tokio::test]
async fn a_total_that_is_not_money_never_reaches_ivpay() {
    let (desk, sandbox) = desk_against_sandbox().await;
    let refused = desk.checkout(&order("24.905")).await;
    assert!(
        matches!(&refused, Err(CheckoutError::Money(e)) if e.field().as_str() == "amount_fiat"),
        "{refused:?}"
    );
    assert!(sandbox.sandbox().payments().is_empty());
}
