//! A stateful IVPAY simulator: IVPAY's wire contract, a checkout page a person (or a
//! headless browser) can click through, real webhooks, a controllable clock, and faults
//! on demand.
//!
//! **Role.** The upstream stand-in for ivpay's end-to-end tests and benchmarks, and the
//! embedded default of `ivpay-app serve` when no IVPAY key is configured. It speaks IVPAY
//! exactly as `docs/` describes it (paths, `X-API-KEY`, the `success`/`data`/`error`
//! envelope, the exact 401 body, webhooks retried until a 200), with its own wire types,
//! independent of the HTTP adapter's, so a mistake in one shows up against the other.
//!
//! **May depend on:** `ivpay-domain` (statuses, the transition function, money and id
//! parsing), `axum`, `tokio`, `reqwest` (sending webhooks), `serde`. Not `sea-orm`, not
//! `ivpay-ports` or any other adapter: payments live in memory.
//!
//! **Parts.**
//! - IVPAY's routes: `POST /payment/create`, `GET /payment/{payment_id}`, under a
//!   configurable prefix ([`SandboxConfig::prefix`]).
//! - The checkout page `payment_url` points at: `GET /checkout/{payment_id}`, with forms
//!   to choose a coin (PENDING), pay (PAID, then a redirect to `url_success`) or give up
//!   (TIMEOUT, then `url_failed`).
//! - Timeouts: unpaid payments become TIMEOUT after [`SandboxConfig::payment_timeout`]
//!   on the [`SandboxClock`], which tests can advance.
//! - Webhooks on every status change, logged attempt by attempt ([`DeliveryAttempt`]).
//! - The control API under `/sandbox/` and the same operations as methods on
//!   [`Sandbox`]: statuses, redelivery, the delivery log, faults ([`FaultPlan`]), the
//!   clock, merchants.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ivpay_sandbox::{FaultPlan, HttpFault, RouteFaults, Sandbox, SandboxConfig};
//!
//! let sb = Sandbox::spawn(SandboxConfig::default()).await?;
//! let base_url = sb.base_url(); // give this to the IVPAY client under test
//! # let _ = base_url;
//! // The next create succeeds upstream but its answer is lost.
//! sb.set_faults(FaultPlan {
//!     create: RouteFaults::script([HttpFault::Reset]),
//!     ..FaultPlan::default()
//! })?;
//! // ... run the client, then compare its records with the sandbox's truth:
//! for payment in sb.payments() {
//!     println!("{} {}", payment.payment_id, payment.status);
//! }
//! sb.shutdown().await?;
//! # Ok(()) }
//! ```

mod checkout;
mod clock;
mod config;
mod contract;
mod control;
mod error;
mod fault;
mod lock;
mod payment;
mod response;
mod router;
mod server;
mod state;
mod webhook;
mod wire;

pub use checkout::COINS;
pub use clock::SandboxClock;
pub use config::{DEFAULT_API_KEY, MerchantConfig, SandboxConfig, WebhookPolicy};
pub use error::{ConfigError, ControlError, SandboxError};
pub use fault::{Chance, FaultCounts, FaultPlan, HttpFault, RouteFaults, WebhookFault};
pub use payment::{ChangeOutcome, PaymentSnapshot};
pub use server::{SandboxServer, ShutdownHandle, serve_until};
pub use state::{PaymentRead, Sandbox};
pub use webhook::{DeliveryAttempt, DeliveryOutcome};
