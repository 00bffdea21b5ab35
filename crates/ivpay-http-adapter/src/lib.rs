//! The IVPAY SDK for Rust: a client for IVPAY's crypto payment API, its wire types, and
//! ivpay's [`PaymentGateway`](ivpay_ports::PaymentGateway) adapter.
//!
//! **Role.** The driven adapter between ivpay's hexagon and IVPAY's HTTP API. It owns
//! everything IVPAY-shaped: URLs, headers, the JSON bodies ([`wire`]), status codes and
//! their meaning ([`IvpayError`]), and when a call may be repeated ([`RetryPolicy`]).
//! Nothing wire-shaped leaves it: [`IvpayClient`] implements the port in domain types.
//! Webhooks are not read here but by the service's receiver (`ivpay-api`), which owns the
//! one webhook parser.
//!
//! **May depend on:** `ivpay-domain`, `ivpay-ports`, `reqwest` (rustls with the `ring`
//! provider), `serde`/`serde_json` (and `ivpay-json` for IVPAY's trailing commas),
//! `secrecy`, `tokio` (timers), `tracing` and small
//! helpers. Never on storage or server crates (`sea-orm`, `sqlx`, `axum`), nor on
//! `ivpay-service`.
//!
//! **Safety rails.** The API key is a [`secrecy::SecretString`], masked in `Debug`, in
//! error excerpts and marked sensitive in headers. Redirects are never followed (reqwest
//! would forward `X-API-KEY` to another host); bodies are capped at [`MAX_BODY_BYTES`];
//! plain `http` needs an explicit [`IvpayClientBuilder::allow_http`]. A create is never
//! repeated once it may have reached IVPAY, which has no idempotency key.
//!
//! ```no_run
//! use ivpay_domain::{ForeignId, Money};
//! use ivpay_http_adapter::IvpayClient;
//! use ivpay_ports::{CreateRequest, PaymentGateway};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = IvpayClient::builder(std::env::var("IVPAY_API_KEY")?).build()?;
//! let created = gateway
//!     .create(&CreateRequest {
//!         money: Money::parse("10.50", "USD")?,
//!         foreign_id: "order-42".parse::<ForeignId>()?,
//!         url_success: None,
//!         url_failed: None,
//!     })
//!     .await?;
//! let remote = gateway.get(&created.payment_id).await?;
//! println!("{} is {}", remote.payment_id, remote.status);
//! # Ok(())
//! # }
//! ```

mod client;
mod drift;
mod error;
mod gateway;
mod notify;
mod retry;
pub mod wire;

pub use client::{DEFAULT_BASE_URL, IvpayClient, IvpayClientBuilder, MAX_BODY_BYTES, Reply};
pub use error::{BuildError, IvpayError, Unavailability};
pub use notify::{
    HostLookup, NotifyBuildError, NotifyConfig, NotifySender, SystemLookup, address_refusal,
};
pub use retry::{Operation, RetryDecision, RetryPolicy};
