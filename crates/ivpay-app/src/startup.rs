//! Building the service from settings: storage, the IVPAY client (or an embedded sandbox),
//! the use cases, the HTTP API and the workers (the inbox worker, the reconciler), then
//! running until told to stop.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ivpay_api::{ApiConfig, ClientKeys, KeyDigest, RedirectPolicy, Scope, Scopes, WebhookKeys};
use ivpay_domain::{AccountId, ClientId};
use ivpay_http_adapter::{IvpayClient, NotifySender};
use ivpay_persistence::{DatabaseOptions, SeaOrmRepository};
use ivpay_ports::NotificationStore;
use ivpay_ports::PaymentUseCases;
use ivpay_sandbox::{MerchantConfig, SandboxConfig, SandboxServer};
use ivpay_service::{
    Accounts, Directory, Notifications, NotifyConfig, PaymentService, ServiceConfig, SystemClock,
    TaskTracker,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::settings::{
    ADMIN_KEY_OWNER, NotifySettings, RetentionSettings, Settings, SettingsError,
};

/// The client key offered in development mode (embedded sandbox, no clients configured).
pub const DEV_CLIENT_KEY: &str = "dev-client-key";
/// The merchant key the embedded sandbox accepts and echoes on webhooks.
pub const SANDBOX_MERCHANT_KEY: &str = "sandbox-merchant-key";

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listener could not bind.
    #[error("server.bind: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("database.url: {0}")]
    Database(#[from] ivpay_persistence::ConnectError),
    /// Migrations failed.
    #[error("database migrations: {0}")]
    Migrate(#[from] ivpay_persistence::MigrateError),
    /// The IVPAY client could not be built.
    #[error("ivpay: {0}")]
    Client(#[from] ivpay_http_adapter::BuildError),
    /// The embedded sandbox could not start.
    #[error("embedded sandbox: {0}")]
    Sandbox(#[from] ivpay_sandbox::SandboxError),
    /// A setting is out of range (settings built in code; loading checks the same).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A configuration value is invalid.
    #[error("{0}")]
    Config(String),
    /// The server failed while running.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// What a person starting the service needs to know.
#[derive(Debug, Clone)]
pub struct StartupInfo {
    /// Where the API answers.
    pub service_url: String,
    /// The embedded sandbox's URL, if one runs.
    pub sandbox_url: Option<String>,
    /// The development client key, if the service made one up.
    pub dev_client_key: Option<&'static str>,
    /// `live` (IVPAY) or `sandbox` (the embedded simulator), as `/readyz` says too.
    pub mode: &'static str,
    /// Where IVPAY is asked (the sandbox's URL in sandbox mode).
    pub ivpay_url: String,
    /// The IVPAY accounts configured, by name.
    pub accounts: Vec<String>,
}

/// A built, bound, not yet serving service.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    sandbox: Option<SandboxServer>,
    use_cases: Arc<dyn PaymentUseCases>,
    /// Creates whose call to IVPAY is in flight, each in its own task (it outlives its
    /// request); shutdown waits for them within the grace period.
    creates: TaskTracker,
    reconciler: Option<Duration>,
    /// How long the inbox worker sleeps when no webhook wakes it.
    inbox_idle: Duration,
    shutdown_grace: Duration,
    reconcile_batch: u32,
    info: StartupInfo,
    notifications: Arc<Deliverer>,
    notify: NotifySettings,
    /// Where and how the retention worker purges.
    retention: (SeaOrmRepository, RetentionSettings),
}

/// Notifications as the binary wires them: the database, the guarded HTTP sender, the
/// system clock.
type Deliverer = Notifications<SeaOrmRepository, NotifySender, SystemClock>;

/// Notifications from the settings, over `repo` (whose audience is `directory`).
fn notifications(
    settings: &Settings,
    repo: SeaOrmRepository,
    directory: Arc<Directory>,
    allow_private: bool,
) -> Result<Deliverer, StartupError> {
    let notify = &settings.notify;
    let sender = NotifySender::new(ivpay_http_adapter::NotifyConfig {
        timeout: notify.timeout,
        connect_timeout: notify.timeout.min(Duration::from_secs(5)),
        allow_private,
        ..ivpay_http_adapter::NotifyConfig::default()
    })
    .map_err(|e| StartupError::Config(format!("notify: {e}")))?;
    let config = NotifyConfig {
        batch: notify.batch.get(),
        concurrency: notify.concurrency,
        attempt_timeout: notify.timeout,
        schedule: notify.retry_schedule.clone(),
        disable_after: notify.disable_after,
        busy_creates: notify.busy_creates,
        busy_share_percent: notify.busy_share_percent,
        ..NotifyConfig::default()
    };
    Ok(Notifications::new(
        Arc::new(repo),
        sender,
        Arc::new(SystemClock),
        directory,
        config,
    ))
}

/// With `notify.secrets_keys`, the repository seals endpoint secrets, and every row not
/// yet sealed under the first key is sealed now; without, secrets stay in clear (said
/// once, outside the sandbox). Either way a row that does not open stops the start.
async fn seal_secrets(
    repo: SeaOrmRepository,
    notify: &NotifySettings,
    sandbox: bool,
) -> Result<SeaOrmRepository, StartupError> {
    let repo = match &notify.secrets_keys {
        Some(keys) => repo.with_secrets_keys(keys.clone()),
        None => {
            if !sandbox {
                tracing::warn!(
                    "notify.secrets_keys is not set: endpoint signing secrets are stored in clear"
                );
            }
            repo
        }
    };
    let report = repo.seal_endpoint_secrets().await.map_err(|e| {
        // A row that does not open is a missing or wrong key, not damage: say what it is.
        let why = match e {
            ivpay_ports::RepositoryError::Corrupt(why) => why,
            other => other.to_string(),
        };
        StartupError::Config(format!("notify.secrets_keys: {why}"))
    })?;
    if report.sealed > 0 {
        tracing::info!(
            sealed = report.sealed,
            "endpoint secrets sealed under the first key"
        );
    }
    Ok(repo)
}

/// Writes the endpoints of `notify.endpoints` to the database: URL, secret, events and
/// description from the settings; whether it is disabled, and since when it fails, from
/// the database.
async fn configured_endpoints(settings: &Settings, notify: &Deliverer) -> Result<(), StartupError> {
    let store = notify.store();
    let now = ivpay_ports::Clock::now(&SystemClock);
    for (id, e) in &settings.notify.endpoints {
        let fail = |e: ivpay_ports::RepositoryError| {
            StartupError::Config(format!("notify.endpoints.{id}: {e}"))
        };
        let existing = store.endpoint(id).await.map_err(fail)?;
        let endpoint = ivpay_domain::Endpoint {
            id: id.clone(),
            client: e.client.clone(),
            url: e.url.clone(),
            secrets: ivpay_domain::EndpointSecrets::new(vec![e.secret.expose_secret().to_owned()]),
            filter: e.events,
            description: e.description.clone(),
            disabled: existing.as_ref().and_then(|x| x.disabled.clone()),
            failing_since: existing.as_ref().and_then(|x| x.failing_since),
            created_at: existing.as_ref().map_or(now, |x| x.created_at),
            updated_at: now,
        };
        store.save_endpoint(&endpoint).await.map_err(fail)?;
    }
    Ok(())
}

fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok();
            if handle.is_some() {
                crate::zeroed::register();
            }
            handle
        })
        .clone()
}

impl App {
    /// Opens storage (running migrations), binds the listener (port 0 works), starts the
    /// embedded sandbox when no IVPAY key is configured, and assembles the API.
    ///
    /// # Errors
    ///
    /// [`StartupError`], naming the setting at fault.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate()?;
        let options = DatabaseOptions {
            max_connections: settings.database.max_connections,
            ..DatabaseOptions::default()
        };
        let db =
            ivpay_persistence::connect(settings.database.url.expose_secret(), &options).await?;
        ivpay_persistence::migrate_up(&db).await?;

        let addr = settings.server.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        let service_url = format!("http://{local}");

        let mut clients = client_keys(&settings)?;
        let shared_address = !addr.ip().is_loopback();
        if settings.ivpay.api_key.is_none()
            && shared_address
            && !settings.sandbox.allow_shared_address
        {
            return Err(StartupError::Config(format!(
                "server.bind: {addr} is reachable from other machines and ivpay.api_key is unset, \
                 so an embedded sandbox would stand in for IVPAY and hand customers payment pages \
                 that take no money. Set ivpay.api_key (IVPAY_IVPAY__API_KEY) to use IVPAY, bind \
                 to a loopback address (127.0.0.1) for local development, or set \
                 sandbox.allow_shared_address = true (IVPAY_SANDBOX__ALLOW_SHARED_ADDRESS) for a \
                 shared test environment"
            )));
        }

        let (sandbox, api_key, base_url, allow_http) = match &settings.ivpay.api_key {
            Some(key) => (
                None,
                key.clone(),
                settings.ivpay.base_url.to_string(),
                settings.ivpay.allow_http,
            ),
            None => {
                let config = SandboxConfig {
                    merchants: vec![
                        MerchantConfig::new(SANDBOX_MERCHANT_KEY)
                            .with_webhook(format!("{service_url}/webhooks/ivpay")),
                    ],
                    ..SandboxConfig::default()
                };
                let server = ivpay_sandbox::Sandbox::spawn(config).await?;
                let base = server.base_url().to_owned();
                (
                    Some(server),
                    SecretString::from(SANDBOX_MERCHANT_KEY),
                    base,
                    true,
                )
            }
        };
        let mut dev_client_key = None;
        if settings.clients.is_empty() {
            if sandbox.is_none() {
                return Err(StartupError::Config(
                    "clients: at least one client key is required when ivpay.api_key is set".into(),
                ));
            }
            if shared_address {
                return Err(StartupError::Config(format!(
                    "clients: at least one client key is required when server.bind ({addr}) is \
                     reachable from other machines: the public development key is offered on \
                     a loopback address only"
                )));
            }
            // On a loopback address in sandbox mode only: the development key may also
            // use the admin routes, so `ivpay-app notifications listen` works out of the box.
            clients = clients.with_digest(
                "dev"
                    .parse()
                    .map_err(|e| StartupError::Config(format!("dev client: {e}")))?,
                KeyDigest::of(DEV_CLIENT_KEY.as_bytes()),
                Scope::ALL.into_iter().collect(),
            );
            dev_client_key = Some(DEV_CLIENT_KEY);
        }

        let client_for = |key: &SecretString| {
            IvpayClient::builder(key.clone())
                .base_url(base_url.clone())
                .allow_http(allow_http)
                .connect_timeout(settings.ivpay.connect_timeout)
                .request_timeout(settings.ivpay.request_timeout)
                .build()
                .map(crate::metered::Metered)
        };
        let mut accounts = Accounts::single(client_for(&api_key)?);
        let mut webhook_keys = WebhookKeys::new().with(AccountId::default(), &api_key);
        for (name, account) in &settings.ivpay.accounts {
            accounts = accounts.with(name.clone(), client_for(&account.api_key)?);
            webhook_keys = webhook_keys.with(name.clone(), &account.api_key);
        }
        let mut redirects = RedirectPolicy::new();
        for (name, client) in &settings.clients {
            accounts = accounts.assign(name.clone(), client.account.clone());
            if !client.redirect_hosts.is_empty() {
                redirects = redirects.allow(name.clone(), client.redirect_hosts.clone());
            }
        }
        let faults = fault_points()?;
        let service_config = ServiceConfig {
            longest_get: settings.ivpay.longest_get(),
            reconcile_lease: ServiceConfig::lease_for(settings.ivpay.longest_get()),
            inbox_max_attempts: settings.reconciler.inbox_max_attempts,
            reconcile_base: settings.reconciler.first_check,
            reconcile_max: settings.reconciler.max_delay,
            stale_intent_after: settings.reconciler.stale_intent,
            inbox_lease: settings.reconciler.inbox_lease,
            inbox_concurrency: settings.reconciler.inbox_concurrency,
            unknown_webhook_keep: settings.reconciler.unknown_webhook_keep,
            payment_url_template: match &sandbox {
                // A payment linked from a webhook gets the embedded sandbox's checkout page,
                // not IVPAY's real one.
                Some(server) => ivpay_service::PaymentUrlTemplate::new(&format!(
                    "{}/checkout/{}",
                    server.base_url(),
                    ivpay_service::PaymentUrlTemplate::PLACEHOLDER
                ))
                .map_err(|e| StartupError::Config(format!("sandbox checkout URL: {e}")))?,
                None => settings.ivpay.payment_url_template.clone(),
            },
            upstream_budget: settings.ivpay.upstream_budget(),
            idempotency_ttl: settings.idempotency.retention,
            in_flight_wait: settings.idempotency.wait,
            faults,
            ..ServiceConfig::default()
        };
        let reconcile_batch = service_config.reconcile_batch;
        let directory = Arc::new(Directory::new());
        let repo = SeaOrmRepository::new(&db).with_audience(directory.clone());
        let repo = seal_secrets(repo, &settings.notify, sandbox.is_some()).await?;
        let allow_private = settings
            .notify
            .allow_private_targets
            .unwrap_or(sandbox.is_some() && !shared_address);
        let notifications = Arc::new(notifications(
            &settings,
            repo.clone(),
            directory,
            allow_private,
        )?);
        configured_endpoints(&settings, &notifications).await?;
        notifications
            .reload_directory()
            .await
            .map_err(|e| StartupError::Config(format!("notify: reading the endpoints: {e}")))?;
        let repo_for_retention = repo.clone();
        let service = PaymentService::with_accounts(repo, accounts, SystemClock, service_config);
        let creates = service.create_tasks();
        let use_cases: Arc<dyn PaymentUseCases> = Arc::new(service);

        let mut api = ApiConfig::new(clients);
        api.webhook_keys = webhook_keys;
        api.redirects = redirects;
        let mode = if sandbox.is_some() { "sandbox" } else { "live" };
        api.mode = Some(mode);
        api.body_limit = settings.server.body_limit.get();
        api.metrics = metrics_handle();
        api.storage = Some(storage_report(&db).await);
        api.rate_limit =
            settings
                .server
                .rate_limit_per_second
                .map(|per_second| ivpay_api::RateLimit {
                    per_second,
                    burst: settings.server.rate_limit_burst,
                });
        api.request_timeout = Some(settings.server.request_timeout);
        api.notifications = Some(notifications.clone());
        let router = ivpay_api::router(use_cases.clone(), api);

        Ok(Self {
            listener,
            router,
            info: StartupInfo {
                service_url,
                sandbox_url: sandbox.as_ref().map(|s| s.base_url().to_owned()),
                dev_client_key,
                mode,
                ivpay_url: base_url.clone(),
                accounts: std::iter::once(AccountId::DEFAULT.to_owned())
                    .chain(settings.ivpay.accounts.keys().map(ToString::to_string))
                    .collect(),
            },
            sandbox,
            use_cases,
            creates,
            shutdown_grace: settings.server.shutdown_grace,
            reconcile_batch,
            reconciler: settings
                .reconciler
                .enabled
                .then_some(settings.reconciler.interval),
            inbox_idle: settings.reconciler.interval,
            notifications,
            notify: settings.notify.clone(),
            retention: (repo_for_retention, settings.retention.clone()),
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// URLs and keys to show at start.
    pub fn info(&self) -> &StartupInfo {
        &self.info
    }

    /// The use cases, for workers and tests.
    pub fn use_cases(&self) -> Arc<dyn PaymentUseCases> {
        self.use_cases.clone()
    }

    /// The embedded sandbox, if one runs.
    pub fn sandbox(&self) -> Option<&SandboxServer> {
        self.sandbox.as_ref()
    }

    /// Serves until `shutdown` resolves: then stops accepting, lets in-flight requests and
    /// creates in flight (whose requests may be gone) finish within the grace period, stops
    /// the workers (inbox, reconciler) and the embedded sandbox.
    ///
    /// # Errors
    ///
    /// [`StartupError::Serve`] if the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut workers = vec![tokio::spawn(inbox_loop(
            self.use_cases.clone(),
            self.inbox_idle,
            stop_rx.clone(),
        ))];
        if self.notify.enabled {
            workers.push(tokio::spawn(deliver_loop(
                self.notifications.clone(),
                self.notify.interval,
                self.notify.batch.get(),
                self.creates.clone(),
                stop_rx.clone(),
            )));
        }
        let (store, retention) = self.retention;
        workers.push(tokio::spawn(retention_loop(
            ivpay_service::Retention::new(store, SystemClock, retention.config()),
            retention.interval,
            stop_rx.clone(),
        )));
        workers.push(tokio::spawn(directory_loop(
            self.notifications.clone(),
            self.notify.directory_refresh,
            stop_rx.clone(),
        )));
        if let Some(handle) = metrics_handle() {
            workers.push(tokio::spawn(metrics_upkeep_loop(handle, stop_rx.clone())));
        }
        workers.extend(self.reconciler.map(|interval| {
            tokio::spawn(reconcile_loop(
                self.use_cases.clone(),
                interval,
                self.reconcile_batch,
                stop_rx,
            ))
        }));
        let grace = self.shutdown_grace;
        let (asked_tx, mut asked_rx) = watch::channel(None);
        let signal = async move {
            shutdown.await;
            let _ = asked_tx.send(Some(tokio::time::Instant::now()));
        };
        let serve = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(signal)
            .into_future();
        // In-flight requests get `grace` to finish; a client that never completes its
        // request (or holds a connection open) must not keep the process up forever.
        let asked_at = |rx: &watch::Receiver<Option<tokio::time::Instant>>| {
            rx.borrow().unwrap_or_else(tokio::time::Instant::now)
        };
        let deadline = async {
            let _ = asked_rx.wait_for(Option::is_some).await;
            tokio::time::sleep_until(asked_at(&asked_rx) + grace).await;
        };
        let served = tokio::select! {
            served = serve => served,
            () = deadline => {
                tracing::warn!(?grace, "requests still open after the shutdown grace period; stopping anyway");
                Ok(())
            }
        };
        // A create whose request is gone (client disconnected, time limit) still holds
        // IVPAY's answer to store: wait for those too, within the same grace period.
        self.creates.close();
        let until = asked_at(&asked_rx) + grace;
        if tokio::time::timeout_at(until, self.creates.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.creates.len(),
                "creates still waiting for IVPAY after the shutdown grace period; the reconciler settles them after restart"
            );
        }
        let _ = stop_tx.send(true);
        // A pass in progress ends within the IVPAY request timeout; do not wait longer than
        // the grace period. What a stopped pass leaves is still in the inbox or the queue.
        let _ = tokio::time::timeout(grace, futures_util::future::join_all(workers)).await;
        if let Some(sandbox) = self.sandbox {
            let _ = tokio::time::timeout(grace, sandbox.shutdown()).await;
        }
        tracing::info!("stopped");
        served.map_err(StartupError::Serve)
    }
}

/// The storage's effective settings, as read back from the database, for `/readyz`.
async fn storage_report(db: &ivpay_persistence::Database) -> serde_json::Value {
    match db.sqlite_settings().await {
        Ok(Some(s)) => serde_json::json!({
            "backend": "sqlite",
            "journal_mode": s.journal_mode,
            "synchronous": s.synchronous,
            "busy_timeout_ms": u64::try_from(s.busy_timeout.as_millis()).unwrap_or(u64::MAX),
            "foreign_keys": s.foreign_keys,
        }),
        Ok(None) => serde_json::json!({ "backend": "postgres" }),
        Err(e) => {
            serde_json::json!({ "backend": format!("{:?}", db.backend()), "error": e.to_string() })
        }
    }
}

/// Fault points armed through `IVPAY_FAULT_POINTS`, for crash tests only (see
/// `docs/operations.md`). Kept out of the settings tree on purpose: no config file should
/// be able to make production crash.
fn fault_points() -> Result<ivpay_service::FaultPoints, StartupError> {
    let Ok(spec) = std::env::var("IVPAY_FAULT_POINTS") else {
        return Ok(ivpay_service::FaultPoints::default());
    };
    let faults: ivpay_service::FaultPoints = spec
        .parse()
        .map_err(|e| StartupError::Config(format!("IVPAY_FAULT_POINTS: {e}")))?;
    if faults.is_armed() {
        tracing::warn!(
            ?faults,
            "fault points armed: this process will crash or stall on purpose"
        );
    }
    Ok(faults)
}

/// Every client key with its scopes, digested, and `admin.key` as a key with the `admin`
/// scope only (known as `admin` in logs).
fn client_keys(settings: &Settings) -> Result<ClientKeys, StartupError> {
    let mut keys = ClientKeys::new();
    for (name, client) in &settings.clients {
        for key in &client.keys {
            let digest = KeyDigest::from_config(&key.key)
                .map_err(|reason| StartupError::Config(format!("clients.{name}: {reason}")))?;
            keys = keys.with_digest(name.clone(), digest, key.scopes);
        }
    }
    if let Some(admin) = &settings.admin.key {
        let digest = KeyDigest::from_config(admin)
            .map_err(|reason| StartupError::Config(format!("admin.key: {reason}")))?;
        let owner: ClientId = ADMIN_KEY_OWNER
            .parse()
            .map_err(|e| StartupError::Config(format!("admin.key: {e}")))?;
        keys = keys.with_digest(owner, digest, Scopes::ADMIN);
    }
    Ok(keys)
}

/// Counts what an inbox pass (the worker's, or the reconciler's for leftovers) did.
fn count_inbox(report: &ivpay_ports::InboxReport) {
    for (outcome, n) in [
        ("processed", report.processed),
        ("deferred", report.deferred),
        ("unconfirmed", report.unconfirmed),
        ("lease_lost", report.lease_lost),
        ("failed", report.failed),
        ("unmatched", report.unmatched),
        ("over_budget", report.over_budget),
    ] {
        metrics::counter!("ivpay_inbox_webhooks_total", "outcome" => outcome)
            .increment(u64::from(n));
    }
    // `linked` is counted where the link is written (the service), whatever happens to
    // the webhook after it.
    metrics::counter!("ivpay_unknown_links_total", "outcome" => "ambiguous")
        .increment(u64::from(report.ambiguous));
    metrics::counter!("ivpay_unknown_webhooks_expired_total").increment(u64::from(report.expired));
}

/// Confirms inbox webhooks until stopped: a pass at start (webhooks left by a previous
/// process), then one whenever a webhook is queued, another at once after any pass that
/// found work (more may be due), and an idle pass every `idle` for webhooks rescheduled
/// after IVPAY failed.
async fn inbox_loop(
    use_cases: Arc<dyn PaymentUseCases>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let more = match use_cases.confirm_webhooks().await {
            Ok(report) => {
                count_inbox(&report);
                // What a pass takes is settled, rescheduled or leased: never due again at
                // once, so this ends when the due webhooks do.
                report.claimed > 0
            }
            Err(e) => {
                metrics::counter!("ivpay_inbox_errors_total").increment(1);
                tracing::warn!(error = %e, "inbox pass failed");
                false
            }
        };
        if *stop.borrow() {
            break;
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = use_cases.webhook_queued() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
}

/// Polls IVPAY for due payments until stopped; a full batch is followed at once by
/// another pass (there may be more due), an idle or failed one by a pause.
async fn reconcile_loop(
    use_cases: Arc<dyn PaymentUseCases>,
    interval: Duration,
    batch: u32,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let pause = match use_cases.reconcile_once().await {
            Ok(report) => {
                if report.claimed > 0 {
                    tracing::info!(?report, "reconciliation pass");
                }
                metrics::counter!("ivpay_reconciler_checks_total", "outcome" => "applied")
                    .increment(u64::from(report.applied));
                metrics::counter!("ivpay_reconciler_checks_total", "outcome" => "failed")
                    .increment(u64::from(report.failed));
                count_inbox(&report.inbox);
                metrics::counter!("ivpay_reconciler_recovered_total")
                    .increment(u64::from(report.recovered));
                metrics::counter!("ivpay_reconciler_checks_total", "outcome" => "finalized")
                    .increment(u64::from(report.finalized));
                metrics::counter!("ivpay_reconciler_checks_total", "outcome" => "lease_lost")
                    .increment(u64::from(report.lease_lost));
                metrics::counter!("ivpay_reconciler_checks_total", "outcome" => "handed_back")
                    .increment(u64::from(report.handed_back));
                // The gauges `/readyz` sets, kept current here too, so an alert on them
                // does not depend on someone reading `/readyz`.
                if let Ok(health) = use_cases.health().await {
                    crate::zeroed::set_health(&health);
                }
                if report.claimed >= batch {
                    Duration::ZERO
                } else {
                    interval
                }
            }
            Err(e) => {
                metrics::counter!("ivpay_reconciler_errors_total").increment(1);
                tracing::warn!(error = %e, "reconciliation pass failed");
                interval
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Delivers due notifications until stopped: a full batch is followed by another pass, at
/// once unless the service is busy with `creates` (then after the pause that keeps
/// delivery to its share: `NotifyConfig::pause_after_full`), an idle or failed one by a
/// pause.
async fn deliver_loop(
    notify: Arc<Deliverer>,
    interval: Duration,
    batch: u32,
    creates: TaskTracker,
    mut stop: watch::Receiver<bool>,
) {
    // The backlog's gauges, read again at most this often (two counts).
    const BACKLOG_EVERY: Duration = Duration::from_secs(5);
    let mut backlog_read: Option<tokio::time::Instant> = None;
    loop {
        let started = tokio::time::Instant::now();
        if backlog_read.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
            backlog_read = Some(started);
            match notify.store().backlog().await {
                Ok(backlog) => crate::zeroed::set_backlog(&backlog),
                Err(e) => tracing::debug!(error = %e, "reading the notification backlog"),
            }
        }
        let config = notify.config();
        let (pause, giving_way) = match notify.deliver_due().await {
            Ok(report) => {
                if report.claimed > 0 {
                    tracing::debug!(?report, "delivery pass");
                }
                if report.claimed >= batch as usize {
                    let pause = config.pause_after_full(started.elapsed(), creates.len());
                    if !pause.is_zero() {
                        metrics::counter!("ivpay_notify_busy_pauses_total").increment(1);
                    }
                    (pause, !pause.is_zero())
                } else {
                    (interval, false)
                }
            }
            Err(e) => {
                metrics::counter!("ivpay_notify_errors_total").increment(1);
                tracing::warn!(error = %e, "delivery pass failed");
                (interval.max(Duration::from_secs(1)), false)
            }
        };
        // A pause to give way ends early, looked at every `interval`, once the burst is
        // over: the notices it held back then go at once.
        let until = tokio::time::Instant::now() + pause;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let step = if giving_way { left.min(interval) } else { left };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(step) => {}
            }
            if tokio::time::Instant::now() >= until
                || (giving_way && !config.is_busy(creates.len()))
            {
                break;
            }
        }
    }
}

/// Purges rows past their retention every `every` (the first pass a minute after start,
/// out of the way of a busy start-up); a pass stopped by its batch limit is followed by
/// the next at once.
async fn retention_loop(
    retention: ivpay_service::Retention<SeaOrmRepository, SystemClock>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = every.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = match retention.purge_once(|_, _| {}).await {
            Ok(report) => {
                if report.events + report.notifications > 0 {
                    tracing::info!(?report, "retention pass");
                }
                if report.more { Duration::ZERO } else { every }
            }
            Err(e) => {
                metrics::counter!("ivpay_retention_errors_total").increment(1);
                tracing::warn!(error = %e, "retention pass failed");
                every
            }
        };
    }
}

/// Reads the listening endpoints again every `every`, for changes made through other
/// instances.
async fn directory_loop(notify: Arc<Deliverer>, every: Duration, stop: watch::Receiver<bool>) {
    every_until_stopped(every, stop, || {
        let notify = notify.clone();
        async move {
            if let Err(e) = notify.reload_directory().await {
                tracing::warn!(error = %e, "reading the endpoints failed; keeping the last list");
            }
        }
    })
    .await;
}

/// Folds the histograms' recorded samples into their buckets every few seconds. The
/// exporter keeps each sample until then (or until `/metrics` is scraped): without this, a
/// service nobody scrapes would hold every request's latency, megabytes a minute under
/// load, for as long as it runs.
async fn metrics_upkeep_loop(handle: PrometheusHandle, stop: watch::Receiver<bool>) {
    every_until_stopped(Duration::from_secs(5), stop, || {
        handle.run_upkeep();
        std::future::ready(())
    })
    .await;
}

/// Runs `work` every `every` (the first time after one wait) until `stop` turns true.
async fn every_until_stopped<F: Future<Output = ()>>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut work: impl FnMut() -> F,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep(every) => {}
        }
        work().await;
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    // A handler that cannot be installed must not read as a signal (stopping at once).
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
