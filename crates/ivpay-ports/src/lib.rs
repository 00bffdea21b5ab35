//! The ports of ivpay's hexagon: the traits the use cases need from the outside world
//! (driven ports) and the trait the outside world calls (the driving port).
//!
//! **Role.** The contract between `ivpay-service` and its adapters. Every signature speaks
//! in `ivpay-domain` types: no JSON, no rows, no HTTP.
//!
//! **May depend on:** `ivpay-domain`, `async-trait`, `thiserror`, and `mockall` behind the
//! `mocks` feature. No IO crate.
//!
//! Driven ports: [`PaymentGateway`] (IVPAY); storage in three concerns, usually one
//! database behind all of them: [`PaymentStore`] (payments, events, idempotency keys),
//! [`WebhookInbox`] (webhooks awaiting confirmation) and [`ReconcileQueue`] (the
//! reconciler's schedule); [`Clock`]. Driving port: [`PaymentUseCases`]. Each port has its
//! own error enum (the storage ports share [`RepositoryError`]); every fallible method
//! documents what each variant means.
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
#[cfg(feature = "fakes")]
pub mod fakes;
mod gateway;
mod notice_sender;
mod notification_store;
mod notify_use_cases;
mod payment_store;
mod reconcile_queue;
mod retention;
mod storage;
mod use_cases;
mod webhook_inbox;

pub use clock::Clock;
pub use gateway::{CreateRequest, Delivery, GatewayError, PaymentGateway, RemotePayment};
pub use notice_sender::{NoticeSender, OutboundNotice, SendOutcome, SendReport};
pub use notification_store::{
    AfterAttempt, AttemptOutcome, DeliveryAttempt, DeliveryState, NoAudience, NoticeAudience,
    NoticeBacklog, Notification, NotificationFilter, NotificationStore,
};
pub use notify_use_cases::{EndpointWithSecret, NewEndpoint, NotificationUseCases, NotifyError};
pub use payment_store::{
    Cursor, IdempotencyClaim, IdempotencyRecord, IntentInsert, Page, PageRequest, PaymentFilter,
    PaymentStore,
};
pub use reconcile_queue::{ClaimedPayment, OpenPayments, ReconcileQueue};
pub use retention::{Retained, RetentionStore};
pub use storage::{LeaseWrite, RepositoryError};
pub use use_cases::{
    AdminError, BrokenInvariant, CreateError, CreateReply, Health, InboxReport, PaymentRead,
    PaymentRef, PaymentUseCases, QueryError, ReconcileReport, Refresh, UpdateError, WebhookReceipt,
};
pub use webhook_inbox::{InboxEntry, InboxWebhook, WebhookInbox};

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
pub use gateway::MockPaymentGateway;
#[cfg(any(test, feature = "mocks"))]
pub use notice_sender::MockNoticeSender;
#[cfg(any(test, feature = "mocks"))]
pub use notification_store::{MockNoticeAudience, MockNotificationStore};
#[cfg(any(test, feature = "mocks"))]
pub use notify_use_cases::MockNotificationUseCases;
#[cfg(any(test, feature = "mocks"))]
pub use payment_store::MockPaymentStore;
#[cfg(any(test, feature = "mocks"))]
pub use reconcile_queue::MockReconcileQueue;
#[cfg(any(test, feature = "mocks"))]
pub use retention::MockRetentionStore;
#[cfg(any(test, feature = "mocks"))]
pub use use_cases::MockPaymentUseCases;
#[cfg(any(test, feature = "mocks"))]
pub use webhook_inbox::MockWebhookInbox;
