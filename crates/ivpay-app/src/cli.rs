//! The command line: `serve` (the default), `migrate`, `adopt`, `doctor`, `purge`,
//! `payments`, `unknown`, `webhooks`, `notifications`, `sandbox`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// ivpay: accept crypto payments through IVPAY without losing one.
#[derive(Debug, Parser)]
#[command(name = "ivpay-app", version, about)]
pub struct Cli {
    /// Settings file (TOML). Optional when left at its default.
    #[arg(
        long,
        short,
        env = "IVPAY_CONFIG",
        default_value = "ivpay.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Log JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: API, webhook receiver and reconciler (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Give every payment stored before payments had owners to one client, so it can read
    /// them again; then exit. For a deployment upgraded with a single client.
    Adopt {
        /// The client (as named in `clients`) that created those payments.
        client: ivpay_domain::ClientId,
    },
    /// Check this deployment: configuration, database (reachable, migrated, SQLite
    /// settings), IVPAY (reachable, the key accepted, by a harmless read), the webhook
    /// route, the clock. One line per check with the fix; exits 1 if any fails. Changes
    /// nothing.
    Doctor,
    /// Delete rows past their retention now (`[retention]`: old events, finished
    /// notifications), in batches, with progress on a terminal; the service also does it
    /// every `retention.interval_secs`.
    Purge,
    /// Payments, through a running service's API (`--key`: a client's key).
    Payments {
        /// Where the service is, the key, the output.
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        /// What to do.
        #[command(subcommand)]
        action: crate::remote::PaymentsCommand,
    },
    /// Payments whose create outcome is open (IVPAY may or may not have made them), through
    /// a running service's admin API (`--key` with the admin scope): list, link, abandon.
    Unknown {
        /// Where the service is, the key, the output.
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        /// What to do.
        #[command(subcommand)]
        action: crate::operate::UnknownCommand,
    },
    /// IVPAY's webhooks, through a running service's admin API (`--key` with the admin
    /// scope): the inbox of those waiting for confirmation, and replays.
    Webhooks {
        /// Where the service is, the key, the output.
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        /// What to do.
        #[command(subcommand)]
        action: crate::operate::WebhooksCommand,
    },
    /// Outbound notifications to clients' endpoints, through a running service's admin
    /// API (`--key` with the admin scope).
    Notifications {
        /// Where the service is, the key, the output.
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        /// What to do.
        #[command(subcommand)]
        action: NotificationsCommand,
    },
    /// Run a standalone IVPAY sandbox (simulator) for manual testing.
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: SocketAddr,
        /// Where the sandbox sends webhooks.
        #[arg(long)]
        webhook_url: Option<String>,
    },
}

impl Cli {
    /// Whether the settings file was named explicitly (then it must exist).
    pub fn config_required(&self) -> bool {
        self.config != std::path::Path::new("ivpay.toml")
    }
}

/// `notifications` subcommands.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Development: register a temporary endpoint on the running service, print each
    /// notification as it arrives (checking its signature) and forward it to a local URL;
    /// Ctrl-C disables the endpoint.
    Listen(crate::listen::ListenArgs),
    /// The delivery log.
    #[command(flatten)]
    Log(crate::remote::LogCommand),
}
