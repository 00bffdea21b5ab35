//! What can go wrong building, running or steering a sandbox.

use std::error::Error;
use std::io;
use std::net::SocketAddr;

use ivpay_domain::{PaymentStatus, RefusalReason};

/// A [`SandboxConfig`](crate::SandboxConfig) (or a fault plan) that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The prefix is neither empty nor `/path` without a trailing slash.
    #[error("prefix {0:?} must be empty or start with '/' and not end with '/'")]
    Prefix(String),
    /// No merchant key at all: every request would get 401.
    #[error("at least one merchant api key is needed")]
    NoMerchant,
    /// A merchant key is the empty string.
    #[error("a merchant api key must not be empty")]
    EmptyKey,
    /// Two merchants share one key (which is not shown).
    #[error("a merchant api key is configured twice")]
    DuplicateKey,
    /// A webhook URL is not an absolute http(s) URL.
    #[error("webhook url {url:?} is invalid: {reason}")]
    WebhookUrl {
        /// The URL as configured.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// `public_url` is not an absolute http(s) URL.
    #[error("public url {url:?} is invalid: {reason}")]
    PublicUrl {
        /// The URL as configured.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// `webhooks.attempts` is 0.
    #[error("webhook attempts must be at least 1")]
    NoAttempts,
    /// `webhooks.workers` is 0.
    #[error("webhook workers must be at least 1")]
    NoWorkers,
    /// `create_status` is not a 2xx.
    #[error("create status {0} is not a success status")]
    CreateStatus(u16),
    /// A route's fault probabilities are negative, not numbers, or add up to more than 1.
    #[error(
        "fault probabilities for {route} must each be in 0..=1 and add up to at most 1, got {total}"
    )]
    Probability {
        /// `create`, `get` or `webhook`.
        route: &'static str,
        /// Their sum.
        total: f64,
    },
    /// A `server_error` fault with a status outside 500..=599.
    #[error("server_error fault status {0} is not in 500..=599")]
    ServerErrorStatus(u16),
}

/// Failures of starting or running a sandbox server.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The configuration was refused.
    #[error("invalid sandbox configuration")]
    Config(#[from] ConfigError),
    /// Built outside a Tokio runtime: the sweeper and webhook workers need one.
    #[error("the sandbox must be built inside a tokio runtime")]
    NoRuntime,
    /// The webhook HTTP client could not be built.
    #[error("cannot build the webhook http client")]
    Client(#[source] reqwest::Error),
    /// The TLS settings of the webhook client could not be built.
    #[error("cannot build the webhook client's tls settings")]
    Tls(#[source] rustls::Error),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an IO error.
    #[error("the sandbox server failed")]
    Serve(#[source] io::Error),
    /// The server task panicked or was aborted.
    #[error("the sandbox server task did not finish cleanly")]
    Join(#[source] tokio::task::JoinError),
}

/// Refusals of the control operations (the `/sandbox/...` API and the same methods on
/// [`Sandbox`](crate::Sandbox)).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// No payment has this id.
    #[error("unknown payment {0:?}")]
    UnknownPayment(String),
    /// The state machine refuses the change; pass `force` to apply it anyway.
    #[error("status change {from} -> {to} refused: {reason}")]
    Refused {
        /// The payment's status.
        from: PaymentStatus,
        /// The status asked for.
        to: PaymentStatus,
        /// Why the state machine refused.
        reason: RefusalReason,
    },
    /// Only a PENDING payment (a coin chosen) can be underpaid.
    #[error("only a PENDING payment can be underpaid; this one is {0}")]
    NotPending(PaymentStatus),
    /// A fault plan or merchant that fails validation.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// `error` and its sources, joined by `": "`: the whole story in one line, for the
/// control API's error bodies and the delivery log, where no one walks the chain later.
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_every_source_in_order() {
        let error = ControlError::from(ConfigError::NoWorkers);
        assert_eq!(error_chain(&error), "webhook workers must be at least 1");
        let error = SandboxError::Config(ConfigError::NoWorkers);
        assert_eq!(
            error_chain(&error),
            "invalid sandbox configuration: webhook workers must be at least 1"
        );
    }
}
