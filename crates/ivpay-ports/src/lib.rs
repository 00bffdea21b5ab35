//! The ports of ivpay's hexagon: the traits the use cases need from the outside world
//! (driven ports) and the trait the outside world calls (the driving port).
//!
//! **Role.** The contract between `ivpay-service` and its adapters. Every signature speaks
//! in `ivpay-domain` types: no JSON, no rows, no HTTP.
//!
//! **May depend on:** `ivpay-domain`, `async-trait`, `thiserror`, and `mockall` behind the
//! `mocks` feature. No IO crate.
//!
//! Driven ports: [`PaymentGateway`] (IVPAY), [`PaymentRepository`] (storage), [`Clock`].
//! Driving port: [`PaymentUseCases`]. Each port has its own error enum; every fallible
//! method documents what each variant means.
//!
//! With the `mocks` feature each trait has a mockall mock (`MockPaymentGateway`, ...):
//!
//! ```
//! # #[cfg(feature = "mocks")] {
//! use ivpay_ports::{Clock, MockClock};
//! use ivpay_domain::Timestamp;
//!
//! let mut clock = MockClock::new();
//! clock.expect_now().return_const(Timestamp::from_unix_seconds(42));
//! assert_eq!(clock.now(), Timestamp::from_unix_seconds(42));
//! # }
//! ```

mod clock;
mod gateway;
mod repository;
mod use_cases;

pub use clock::Clock;
pub use gateway::{CreateRequest, Delivery, GatewayError, PaymentGateway, RemotePayment};
pub use repository::{
    ClaimedPayment, Cursor, IdempotencyClaim, IdempotencyRecord, IntentInsert, Page, PageRequest,
    PaymentFilter, PaymentRepository, RepositoryError,
};
pub use use_cases::{
    CreateError, CreateReply, PaymentRef, PaymentUseCases, QueryError, ReconcileReport, UpdateError,
};

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
pub use gateway::MockPaymentGateway;
#[cfg(any(test, feature = "mocks"))]
pub use repository::MockPaymentRepository;
#[cfg(any(test, feature = "mocks"))]
pub use use_cases::MockPaymentUseCases;
