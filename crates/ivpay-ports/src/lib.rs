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
    ClaimedPayment, Cursor, IdempotencyClaim, IdempotencyRecord, InboxWebhook, IntentInsert, Page,
    PageRequest, PaymentFilter, PaymentRepository, RepositoryError,
};
pub use use_cases::{
    CreateError, CreateReply, Health, PaymentRef, PaymentUseCases, QueryError, ReconcileReport,
    UpdateError, WebhookReceipt,
};

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
pub use gateway::MockPaymentGateway;
#[cfg(any(test, feature = "mocks"))]
pub use repository::MockPaymentRepository;
#[cfg(any(test, feature = "mocks"))]
pub use use_cases::MockPaymentUseCases;

/// Shared ports: an `Arc` of a port is the port, so one adapter can serve the service, the
/// workers and the tests at once.
mod shared {
    use std::sync::Arc;
    use std::time::Duration;

    use ivpay_domain::{
        ClientId, ForeignId, IdempotencyKey, InternalId, Payment, PaymentEvent, PaymentId,
        Timestamp, UpstreamPayment,
    };

    use crate::{
        ClaimedPayment, Clock, CreateRequest, GatewayError, IdempotencyClaim, InboxWebhook,
        IntentInsert, Page, PageRequest, PaymentFilter, PaymentGateway, PaymentRepository,
        RemotePayment, RepositoryError,
    };

    #[async_trait::async_trait]
    impl<T: Clock + ?Sized> Clock for Arc<T> {
        fn now(&self) -> Timestamp {
            (**self).now()
        }
        async fn sleep(&self, duration: Duration) {
            (**self).sleep(duration).await;
        }
    }

    #[async_trait::async_trait]
    impl<T: PaymentGateway + ?Sized> PaymentGateway for Arc<T> {
        async fn create(&self, request: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
            (**self).create(request).await
        }
        async fn get(&self, payment_id: &PaymentId) -> Result<RemotePayment, GatewayError> {
            (**self).get(payment_id).await
        }
    }

    #[async_trait::async_trait]
    impl<T: PaymentRepository + ?Sized> PaymentRepository for Arc<T> {
        async fn insert_intent(
            &self,
            payment: &Payment,
            claim: Option<IdempotencyClaim>,
        ) -> Result<IntentInsert, RepositoryError> {
            (**self).insert_intent(payment, claim).await
        }
        async fn release_idempotency_key(
            &self,
            client: &ClientId,
            key: &IdempotencyKey,
        ) -> Result<(), RepositoryError> {
            (**self).release_idempotency_key(client, key).await
        }
        async fn save_outcome(
            &self,
            payment: &Payment,
            expected_version: u64,
            next_check_at: Option<Timestamp>,
        ) -> Result<(), RepositoryError> {
            (**self)
                .save_outcome(payment, expected_version, next_check_at)
                .await
        }
        async fn get(&self, id: InternalId) -> Result<Option<Payment>, RepositoryError> {
            (**self).get(id).await
        }
        async fn get_by_payment_id(
            &self,
            id: &PaymentId,
        ) -> Result<Option<Payment>, RepositoryError> {
            (**self).get_by_payment_id(id).await
        }
        async fn find_by_foreign_id(
            &self,
            id: &ForeignId,
        ) -> Result<Vec<Payment>, RepositoryError> {
            (**self).find_by_foreign_id(id).await
        }
        async fn list(
            &self,
            filter: &PaymentFilter,
            page: PageRequest,
        ) -> Result<Page, RepositoryError> {
            (**self).list(filter, page).await
        }
        async fn update_status(
            &self,
            payment: &Payment,
            expected_version: u64,
            event: &PaymentEvent,
        ) -> Result<(), RepositoryError> {
            (**self)
                .update_status(payment, expected_version, event)
                .await
        }
        async fn record_event(&self, event: &PaymentEvent) -> Result<(), RepositoryError> {
            (**self).record_event(event).await
        }
        async fn events(&self, payment: InternalId) -> Result<Vec<PaymentEvent>, RepositoryError> {
            (**self).events(payment).await
        }
        async fn store_webhook(
            &self,
            webhook: &InboxWebhook,
            next_attempt_at: Timestamp,
        ) -> Result<(), RepositoryError> {
            (**self).store_webhook(webhook, next_attempt_at).await
        }
        async fn claim_webhooks(
            &self,
            now: Timestamp,
            lease: Duration,
            limit: u32,
        ) -> Result<Vec<InboxWebhook>, RepositoryError> {
            (**self).claim_webhooks(now, lease, limit).await
        }
        async fn finish_webhook(&self, id: InternalId) -> Result<(), RepositoryError> {
            (**self).finish_webhook(id).await
        }
        async fn retry_webhook(
            &self,
            id: InternalId,
            next_attempt_at: Timestamp,
            attempts: u32,
        ) -> Result<(), RepositoryError> {
            (**self).retry_webhook(id, next_attempt_at, attempts).await
        }
        async fn purge_expired_keys(
            &self,
            now: Timestamp,
            limit: u32,
        ) -> Result<u64, RepositoryError> {
            (**self).purge_expired_keys(now, limit).await
        }
        async fn count_unknown(&self) -> Result<u64, RepositoryError> {
            (**self).count_unknown().await
        }
        async fn stale_intents(
            &self,
            created_before: Timestamp,
            limit: u32,
        ) -> Result<Vec<Payment>, RepositoryError> {
            (**self).stale_intents(created_before, limit).await
        }
        async fn claim_due(
            &self,
            now: Timestamp,
            lease: Duration,
            limit: u32,
        ) -> Result<Vec<ClaimedPayment>, RepositoryError> {
            (**self).claim_due(now, lease, limit).await
        }
        async fn schedule_check(
            &self,
            id: InternalId,
            next_check_at: Option<Timestamp>,
            attempts: u32,
        ) -> Result<(), RepositoryError> {
            (**self).schedule_check(id, next_check_at, attempts).await
        }
    }
}
