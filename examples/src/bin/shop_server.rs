//! An existing axum app (a shop) that nests ivpay's API under `/ivpay`, with its own
//! check in front of it, over ivpay's storage and use cases: the pieces `ivpay-app`
//! wires, wired by the host instead.
//!
//! ```text
//! IVPAY_KEY=... SHOP_CLIENT_KEY=... cargo run -p ivpay-examples --bin shop_server
//! curl -H 'X-Internal: yes' -H "X-API-KEY: $SHOP_CLIENT_KEY" localhost:3000/ivpay/payments
//! ```
//! `IVPAY_BASE_URL` points the client at a sandbox (`ivpay-app sandbox`) instead of IVPAY.

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::sync::Arc;

use ivpay_api::{ApiConfig, ClientKeys, WebhookKeys};
use ivpay_domain::AccountId;
use ivpay_http_adapter::IvpayClient;
use ivpay_persistence::{DatabaseOptions, SeaOrmRepository, connect, migrate_up};
use ivpay_ports::PaymentUseCases;
use ivpay_service::{PaymentService, ServiceConfig, SystemClock};
use secrecy::SecretString;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let ivpay_key = SecretString::from(var("IVPAY_KEY")?);
    let client_key = SecretString::from(var("SHOP_CLIENT_KEY")?);
    let base_url = std::env::var("IVPAY_BASE_URL")
        .unwrap_or_else(|_| ivpay_http_adapter::DEFAULT_BASE_URL.to_owned());

    // Storage: ivpay's tables in the shop's SQLite file, migrated at start.
    let db = connect("sqlite://shop.db?mode=rwc", &DatabaseOptions::default()).await?;
    migrate_up(&db).await?;
    let gateway = IvpayClient::builder(ivpay_key.clone())
        .allow_http(base_url.starts_with("http://"))
        .base_url(base_url)
        .build()?;
    let use_cases: Arc<dyn PaymentUseCases> = Arc::new(PaymentService::new(
        SeaOrmRepository::new(&db),
        gateway,
        SystemClock,
        ServiceConfig::default(),
    ));

    let mut api = ApiConfig::new(ClientKeys::new().with("shop".parse()?, &client_key));
    api.webhook_keys = WebhookKeys::new().with(AccountId::default(), &ivpay_key);
    let shop = ivpay_examples::shop_app(ivpay_api::router(use_cases, api));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "shop on http://{}, ivpay under /ivpay",
        listener.local_addr()?
    );
    axum::serve(listener, shop).await?;
    Ok(())
}
