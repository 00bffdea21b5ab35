//! A service that uses only the IVPAY client and the domain: no storage, no HTTP server of
//! ours. Creates a payment for an order and polls until it is final.
//!
//! ```text
//! cargo run -p ivpay-examples --bin client_only -- BASE_URL API_KEY 24.90 EUR order-1001
//! ```

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::time::Duration;

use ivpay_examples::{Order, PaymentDesk};
use ivpay_http_adapter::IvpayClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base_url, api_key, total, currency, reference] = args.as_slice() else {
        return Err("usage: client_only BASE_URL API_KEY TOTAL CURRENCY REFERENCE".into());
    };
    let client = IvpayClient::builder(api_key.as_str())
        .base_url(base_url.as_str())
        .allow_http(base_url.starts_with("http://"))
        .build()?;
    let desk = PaymentDesk::new(client);
    let checkout = desk
        .checkout(&Order {
            reference: reference.clone(),
            total: total.clone(),
            currency: currency.clone(),
        })
        .await?;
    println!("pay at {}", checkout.pay_at);
    for _ in 0..60 {
        if desk.is_paid(&checkout.payment_id).await? {
            println!("{} is paid", checkout.payment_id);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    println!("{} is not paid yet; ask again later", checkout.payment_id);
    Ok(())
}
