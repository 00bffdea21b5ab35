//! The ivpay service binary's library: settings, telemetry, startup and the commands, kept
//! out of `main.rs` so tests can build and run the service in-process.
//!
//! **Role.** The composition root: the only crate that names concrete adapters
//! (`SeaOrmRepository`, `IvpayClient`, the sandbox) and wires them into
//! `ivpay-service` and `ivpay-api`.
//!
//! **May depend on:** every ivpay crate, tokio, clap, config, tracing-subscriber.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut settings = ivpay_app::Settings::default();
//! settings.server.bind = "127.0.0.1:0".parse()?;
//! let app = ivpay_app::App::build(settings).await?;
//! let port = app.port();
//! # let _ = port;
//! app.run_until(ivpay_app::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

mod cli;
mod doctor;
mod listen;
mod metered;
mod operate;
mod remote;
mod settings;
mod startup;
mod telemetry;
mod zeroed;

pub use cli::{Cli, Command, NotificationsCommand};
pub use listen::ListenArgs;
pub use operate::{UnknownCommand, WebhooksCommand};
pub use remote::{LogCommand, PaymentsCommand, RemoteArgs};
pub use settings::{
    ADMIN_KEY_OWNER, AccountSettings, Accounts, ClientSettings, DatabaseSettings, DatabaseUrl,
    DatabaseUrlError, EndpointSettings, IdempotencySettings, IvpaySettings, KeySettings, LogFilter,
    LogSettings, NotifySettings, ReconcilerSettings, RetentionSettings, SandboxSettings,
    ServerSettings, Settings, SettingsError,
};
pub use startup::{
    App, DEV_CLIENT_KEY, SANDBOX_MERCHANT_KEY, StartupError, StartupInfo, shutdown_signal,
};
pub use zeroed::{COUNTERS, Counter, GAUGES, NOT_ZEROED, series};

use ivpay_sandbox::{MerchantConfig, SandboxConfig};

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Settings could not be loaded.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The service could not start or failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// `doctor` found a problem (each is printed with its fix).
    #[error("doctor: some checks failed (see above)")]
    Doctor,
}

#[allow(
    clippy::print_stdout,
    reason = "the start banner is for the person who ran the command"
)]
fn banner(info: &StartupInfo) {
    println!("ivpay is listening on {}", info.service_url);
    println!(
        "API docs: {}/docs   (OpenAPI: {}/openapi.json)",
        info.service_url, info.service_url
    );
    match &info.sandbox_url {
        Some(sandbox) => println!(
            "mode: sandbox: an embedded IVPAY simulator at {sandbox} stands in for IVPAY \
             (no ivpay.api_key); its payment pages take no money"
        ),
        None => println!(
            "mode: live: IVPAY at {} (accounts: {})",
            info.ivpay_url,
            info.accounts.join(", ")
        ),
    }
    if let Some(key) = info.dev_client_key {
        println!("development client key (X-API-KEY): {key}");
    }
    println!(
        "health: {}/healthz   metrics: {}/metrics",
        info.service_url, info.service_url
    );
}

/// The database, migrated.
/// What `migrate` is about to apply.
#[allow(clippy::print_stdout, reason = "the operator watches the migration")]
fn migrating_banner(pending: &[String]) {
    if pending.is_empty() {
        println!("the schema is up to date");
    }
    if !pending.is_empty() {
        println!(
            "{} migration(s) to apply: {}",
            pending.len(),
            pending.join(", ")
        );
    }
}

/// One line per migration, as soon as it is committed.
#[allow(clippy::print_stdout, reason = "the operator watches the migration")]
fn migrated_one(name: &str, took: std::time::Duration) {
    println!("applied {name} in {} ms", took.as_millis());
}

#[allow(clippy::print_stdout, reason = "the operator watches the migration")]
fn migrated_banner(applied: usize) {
    if applied > 0 {
        println!("{applied} migration(s) applied");
    }
}

/// One line per batch of a purge, rewritten in place on a terminal.
#[allow(clippy::print_stdout, reason = "the operator watches a long purge")]
fn purge_progress(what: ivpay_ports::Retained, total: u64) {
    use std::io::{IsTerminal, Write};
    if std::io::stdout().is_terminal() {
        print!("\rpurging {}: {total} rows", what.as_str());
        let _ = std::io::stdout().flush();
    }
}

#[allow(clippy::print_stdout, reason = "the operator reads what was deleted")]
fn purged_banner(report: &ivpay_service::RetentionReport) {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        println!();
    }
    println!(
        "purged {} event(s) and {} notification(s) past their retention",
        report.events, report.notifications
    );
}

/// Prints the doctor's findings; answers whether any failed.
#[allow(
    clippy::print_stdout,
    reason = "the operator who ran the command reads the findings"
)]
fn report(checks: &[doctor::Check]) -> bool {
    for check in checks {
        println!("{check}");
    }
    let failed = checks
        .iter()
        .filter(|c| c.verdict == doctor::Verdict::Fail)
        .count();
    if failed == 0 {
        println!("all checks passed");
    }
    failed > 0
}

async fn migrated(settings: &Settings) -> Result<ivpay_persistence::Database, StartupError> {
    let options = ivpay_persistence::DatabaseOptions::default();
    let db = ivpay_persistence::connect(settings.database.url.expose_secret(), &options).await?;
    ivpay_persistence::migrate_up(&db).await?;
    Ok(db)
}

#[allow(
    clippy::print_stdout,
    reason = "the operator who ran the command reads the count"
)]
fn adopted_banner(client: &ivpay_domain::ClientId, adopted: u64) {
    println!("{adopted} payment(s) without an owner now belong to {client}");
}

/// Runs the command the CLI names.
///
/// # Errors
///
/// [`RunError`] with the setting or step at fault.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    if matches!(cli.command, Some(Command::Doctor)) {
        // Settings that do not load are the first finding, not a reason to stop.
        let settings = Settings::load(&cli.config, cli.config_required());
        let failed = report(&doctor::checks(settings).await);
        return if failed {
            Err(RunError::Doctor)
        } else {
            Ok(())
        };
    }
    let settings = Settings::load(&cli.config, cli.config_required())?;
    telemetry::init(&settings.log.filter, cli.log_json || settings.log.json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(settings).await?;
            banner(app.info());
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let options = ivpay_persistence::DatabaseOptions::default();
            let db = ivpay_persistence::connect(settings.database.url.expose_secret(), &options)
                .await
                .map_err(StartupError::from)?;
            let pending = ivpay_persistence::pending_migrations(&db)
                .await
                .map_err(StartupError::from)?;
            migrating_banner(&pending);
            let applied = ivpay_persistence::migrate_up_each(&db, migrated_one)
                .await
                .map_err(StartupError::from)?;
            tracing::info!(url = %settings.database.url, applied, "migrations applied");
            migrated_banner(applied);
        }
        Command::Adopt { client } => {
            let db = migrated(&settings).await?;
            let adopted = ivpay_persistence::SeaOrmRepository::new(&db)
                .adopt_unowned(&client)
                .await
                .map_err(|e| StartupError::Config(format!("adopt: {e}")))?;
            tracing::info!(%client, adopted, "payments without an owner given to the client");
            adopted_banner(&client, adopted);
        }
        Command::Doctor => {}
        Command::Purge => {
            let db = migrated(&settings).await?;
            let retention = ivpay_service::Retention::new(
                ivpay_persistence::SeaOrmRepository::new(&db),
                ivpay_service::SystemClock,
                ivpay_service::RetentionConfig {
                    max_batches: u32::MAX,
                    ..settings.retention.config()
                },
            );
            let report = retention
                .purge_once(purge_progress)
                .await
                .map_err(|e| StartupError::Config(format!("purge: {e}")))?;
            purged_banner(&report);
        }
        Command::Notifications {
            remote,
            action: NotificationsCommand::Listen(args),
        } => listen::listen(&settings, &remote, args).await?,
        Command::Notifications {
            remote,
            action: NotificationsCommand::Log(action),
        } => remote::log(&settings, &remote, action).await?,
        Command::Payments { remote, action } => {
            remote::payments(&settings, &remote, action).await?;
        }
        Command::Unknown { remote, action } => {
            operate::unknown(&settings, &remote, action).await?;
        }
        Command::Webhooks { remote, action } => {
            operate::webhooks(&settings, &remote, action).await?;
        }
        Command::Sandbox { bind, webhook_url } => {
            let mut merchant = MerchantConfig::new(ivpay_sandbox::DEFAULT_API_KEY);
            if let Some(url) = webhook_url {
                merchant = merchant.with_webhook(url);
            }
            let config = SandboxConfig {
                merchants: vec![merchant],
                ..SandboxConfig::default()
            };
            tracing::info!(%bind, key = ivpay_sandbox::DEFAULT_API_KEY, "IVPAY sandbox starting");
            ivpay_sandbox::serve_until(bind, config, shutdown_signal())
                .await
                .map_err(StartupError::from)?;
        }
    }
    Ok(())
}
