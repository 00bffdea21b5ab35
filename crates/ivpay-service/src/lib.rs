//! ivpay's use cases: create a payment without ever losing it, read and list payments,
//! apply status updates through the state machine, confirm webhooks from the inbox, and
//! reconcile what webhooks missed.
//!
//! **Role.** The inside of the hexagon. [`PaymentService`] is generic over the driven ports
//! (storage `R`, `PaymentGateway`, `Clock`) and implements the driving port
//! `PaymentUseCases`, which the HTTP layer and the background workers call as
//! `Arc<dyn PaymentUseCases>`.
//!
//! **May depend on:** `ivpay-domain`, `ivpay-ports`, and small runtime helpers (`tokio`'s
//! timer for [`SystemClock`], its tasks for creates that outlive their request, tracked by
//! `tokio-util`'s `TaskTracker`, and its `Notify` and `Mutex` for the inbox worker,
//! `futures-util` to confirm webhooks side by side, `tracing`, `sha2`, `uuid`), and on
//! `ivpay-signing` (pure) to sign notifications. Never on an
//! adapter crate: no `reqwest`, `sea-orm` or `axum`.
//!
//! ```
//! use ivpay_domain::{NewPayment, Timestamp};
//! use ivpay_ports::fakes::InMemoryRepository;
//! use ivpay_ports::{MockPaymentGateway, PaymentUseCases};
//! use ivpay_service::{ManualClock, PaymentService, ServiceConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let mut gateway = MockPaymentGateway::new();
//! let upstream = ivpay_domain::UpstreamPayment {
//!     payment_id: "6b577835afbefe60335b6e5cd04410a9".parse()?,
//!     payment_url: "https://pay.ivpay.io/payment/6b577835afbefe60335b6e5cd04410a9".parse()?,
//!     created_at: Timestamp::from_unix_seconds(1726248776),
//! };
//! gateway.expect_create().times(1).returning(move |_| Ok(upstream.clone()));
//! let service = PaymentService::new(
//!     InMemoryRepository::new(),
//!     gateway,
//!     ManualClock::new(Timestamp::from_unix_seconds(1726248770)),
//!     ServiceConfig::default(),
//! );
//! let request = NewPayment::from_fields("10.00", "USD", Some("123456"), None, None)?;
//! let reply = service.create("shop".parse()?, None, request).await?;
//! assert_eq!(reply.payment.payment_id().map(|id| id.as_str()), Some("6b577835afbefe60335b6e5cd04410a9"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accounts;
mod budget;
mod clock;
mod config;
mod create;
mod detach;
mod fault;
mod link;
mod notify;
mod payment_lock;
mod query;
mod reconcile;
mod retention;
mod update;
mod webhook;

pub use accounts::Accounts;
pub use budget::{BudgetConfig, Rate};
pub use clock::{ManualClock, SystemClock};
pub use config::{PaymentUrlTemplate, ServiceConfig};
pub use fault::{FaultAction, FaultPoint, FaultPoints, FaultSpecError};
pub use notify::{DeliveryReport, Directory, Notifications, NotifyConfig};
pub use retention::{Retention, RetentionConfig, RetentionReport};
pub use tokio_util::task::TaskTracker;

use std::sync::Arc;

use ivpay_domain::{
    ClientId, EventOutcome, IdempotencyKey, InternalId, NewPayment, Payment, PaymentEvent,
    PaymentId, StatusUpdate, WebhookHint,
};
use ivpay_ports::{
    AdminError, Clock, CreateError, CreateReply, Health, InboxEntry, InboxReport, Page,
    PageRequest, PaymentFilter, PaymentGateway, PaymentRead, PaymentRef, PaymentStore,
    PaymentUseCases, QueryError, ReconcileQueue, ReconcileReport, UpdateError, WebhookInbox,
    WebhookReceipt,
};

/// The use cases, over storage `R`, an IVPAY gateway `G` and a clock `C`.
///
/// Each use case asks of `R` only the storage ports it uses: create and the reads need a
/// [`PaymentStore`], webhooks also a [`WebhookInbox`], reconciliation a [`ReconcileQueue`]
/// as well. [`PaymentUseCases`] (all of them) needs all three, usually one database.
///
/// The ports are kept behind `Arc`s so a create's upstream call and the write of its answer
/// can run in a task of their own, which outlives the request that started it
/// ([`PaymentService::create_tasks`]).
#[derive(Debug)]
pub struct PaymentService<R, G, C> {
    repo: Arc<R>,
    gateways: Arc<Accounts<G>>,
    clock: Arc<C>,
    config: Arc<ServiceConfig>,
    /// Creates whose upstream call is running, each in its own task.
    creates: TaskTracker,
    /// Wakes the inbox worker when a webhook is queued.
    webhook_queued: tokio::sync::Notify,
    /// One webhook confirmation in flight per payment.
    confirming: payment_lock::PaymentLocks,
    /// The calls toward IVPAY refreshes and webhooks may cause.
    budget: budget::UpstreamBudget,
}

impl<R, G, C> PaymentService<R, G, C> {
    /// Assembles the service from its ports, with one IVPAY account (the default one).
    pub fn new(repo: R, gateway: G, clock: C, config: ServiceConfig) -> Self {
        Self::with_accounts(repo, Accounts::single(gateway), clock, config)
    }

    /// Assembles the service from its ports, with several IVPAY accounts.
    pub fn with_accounts(repo: R, accounts: Accounts<G>, clock: C, config: ServiceConfig) -> Self {
        let budget = budget::UpstreamBudget::new(config.upstream_budget);
        Self {
            repo: Arc::new(repo),
            gateways: Arc::new(accounts),
            clock: Arc::new(clock),
            config: Arc::new(config),
            creates: TaskTracker::new(),
            webhook_queued: tokio::sync::Notify::new(),
            confirming: payment_lock::PaymentLocks::default(),
            budget,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The tasks of creates in flight: each holds one call to IVPAY and the write of its
    /// answer, and finishes even when the request that started it is gone (client
    /// disconnected, request time limit). Graceful shutdown closes the tracker and waits
    /// for it, so no answer IVPAY gave is dropped on the floor.
    pub fn create_tasks(&self) -> TaskTracker {
        self.creates.clone()
    }
}

#[async_trait::async_trait]
impl<R, G, C> PaymentUseCases for PaymentService<R, G, C>
where
    R: PaymentStore + WebhookInbox + ReconcileQueue + 'static,
    G: PaymentGateway + 'static,
    C: Clock + 'static,
{
    async fn create(
        &self,
        client: ClientId,
        key: Option<IdempotencyKey>,
        request: NewPayment,
    ) -> Result<CreateReply, CreateError> {
        self.create_payment(client, key, request).await
    }

    async fn get(
        &self,
        client: ClientId,
        reference: PaymentRef,
        refresh: bool,
    ) -> Result<PaymentRead, QueryError> {
        self.get_payment(&client, reference, refresh).await
    }

    async fn list(
        &self,
        client: ClientId,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, QueryError> {
        self.list_payments(client, filter, page).await
    }

    async fn list_all(&self, filter: PaymentFilter, page: PageRequest) -> Result<Page, QueryError> {
        self.list_every_payment(filter, page).await
    }

    async fn payment_history(
        &self,
        reference: PaymentRef,
    ) -> Result<(Payment, Vec<PaymentEvent>), QueryError> {
        self.history_of_any(reference).await
    }

    async fn webhook_inbox(&self, limit: u32) -> Result<Vec<InboxEntry>, QueryError> {
        Ok(self
            .repo
            .pending_webhooks(limit.clamp(1, query::MAX_PAGE))
            .await?)
    }

    async fn health(&self) -> Result<Health, QueryError> {
        Ok(Health {
            unknown_payments: self.repo.count_unknown().await?,
            quarantined_rows: self.repo.count_quarantined().await?,
            open_payments: self.repo.count_open(self.clock.now()).await?,
        })
    }

    async fn events(
        &self,
        client: ClientId,
        reference: PaymentRef,
    ) -> Result<Vec<PaymentEvent>, QueryError> {
        self.payment_events(&client, reference).await
    }

    async fn link_payment(
        &self,
        id: InternalId,
        payment_id: PaymentId,
    ) -> Result<Payment, AdminError> {
        self.link_manually(id, payment_id).await
    }

    async fn abandon_payment(&self, id: InternalId) -> Result<Payment, AdminError> {
        self.abandon_manually(id).await
    }

    async fn apply_update(&self, update: StatusUpdate) -> Result<EventOutcome, UpdateError> {
        self.apply_status_update(update).await
    }

    async fn receive_webhook(&self, hint: WebhookHint) -> Result<WebhookReceipt, UpdateError> {
        self.receive(hint).await
    }

    async fn confirm_webhooks(&self) -> Result<InboxReport, UpdateError> {
        self.confirm_due_webhooks().await
    }

    async fn webhook_queued(&self) {
        self.webhook_queued.notified().await;
    }

    async fn reconcile_once(&self) -> Result<ReconcileReport, UpdateError> {
        self.reconcile_pass().await
    }
}

#[cfg(test)]
mod send_checks {
    use std::sync::Arc;

    use super::*;
    use ivpay_ports::fakes::InMemoryRepository;
    use ivpay_ports::{MockClock, MockPaymentGateway};

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}

    #[test]
    fn use_cases_are_shareable_and_their_futures_send() {
        assert_send_sync::<dyn PaymentUseCases>();
        let service: Arc<dyn PaymentUseCases> = Arc::new(PaymentService::new(
            InMemoryRepository::new(),
            MockPaymentGateway::new(),
            MockClock::new(),
            ServiceConfig::default(),
        ));
        let fut = service.reconcile_once();
        assert_send(&fut);
        drop(fut);
    }
}
