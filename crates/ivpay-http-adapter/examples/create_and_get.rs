//! Creates a payment at IVPAY (or a sandbox) and reads it back.
//!
//! ```text
//! cargo run -p ivpay-http-adapter --example create_and_get -- BASE_URL API_KEY [AMOUNT] [CURRENCY]
//! cargo run -p ivpay-http-adapter --example create_and_get -- http://127.0.0.1:8081/api/v4 test-key 10.50 USD
//! ```
//!
//! A plain `http` base URL is accepted here for local sandboxes; the library refuses one
//! unless told to, because the key would travel in clear text.

#![allow(clippy::print_stdout)]

use std::time::{SystemTime, UNIX_EPOCH};

use ivpay_domain::{ForeignId, Money};
use ivpay_http_adapter::IvpayClient;
use ivpay_ports::{CreateRequest, PaymentGateway};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base_url, api_key, rest @ ..] = args.as_slice() else {
        return Err("usage: create_and_get BASE_URL API_KEY [AMOUNT] [CURRENCY]".into());
    };
    let amount = rest.first().map_or("10.00", String::as_str);
    let currency = rest.get(1).map_or("USD", String::as_str);

    let client = IvpayClient::builder(api_key.as_str())
        .base_url(base_url.as_str())
        .allow_http(base_url.starts_with("http://"))
        .build()?;
    println!("client: {client:?}");

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let request = CreateRequest {
        money: Money::parse(amount, currency)?,
        foreign_id: format!("example-{stamp}").parse::<ForeignId>()?,
        url_success: None,
        url_failed: None,
    };
    let created = client.create(&request).await?;
    println!(
        "created {} at {}: pay at {}",
        created.payment_id, created.created_at, created.payment_url
    );

    let remote = client.get(&created.payment_id).await?;
    println!(
        "status {} (processed at {}), foreign id {}",
        remote.status,
        remote
            .processed_at
            .map_or_else(|| "-".to_owned(), |t| t.to_string()),
        remote.foreign_id.as_ref().map_or("-", ForeignId::as_str),
    );
    println!("raw: {}", remote.raw);
    Ok(())
}
