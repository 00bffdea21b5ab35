//! Sending notifications: ivpay's own webhooks, `POST`ed to the URLs its clients register.
//!
//! [`NotifySender`] implements the [`NoticeSender`] port with a reqwest client of its own,
//! separate from [`IvpayClient`](crate::IvpayClient)'s: the destination is chosen by a
//! client, not by us, so the client is built to distrust it. It follows no redirect, uses
//! no proxy, bounds the time of an attempt and the bytes it reads back, and connects only
//! to addresses the SSRF guard ([`address_refusal`]) allows, checked on the addresses it
//! actually dials (see [`HostLookup`]).

mod guard;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivpay_ports::{NoticeSender, OutboundNotice, SendOutcome, SendReport};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::redirect;

pub use guard::{HostLookup, SystemLookup, address_refusal};

use crate::client::root_cause;
use guard::{GuardedResolver, Refusal};

/// How a [`NotifySender`] sends. `Default` gives the documented defaults; nothing in it is
/// secret, so `Debug` shows all of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// How long one attempt may take, from connecting to the end of the excerpt. Default
    /// 15 s.
    pub timeout: Duration,
    /// How long to wait for the TCP connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Let endpoints on loopback, private, carrier-grade NAT, unique-local and other
    /// non-public addresses through. For development and tests only: with it, a client
    /// can make ivpay call services on its own network. Link-local and cloud metadata
    /// addresses stay refused (see [`address_refusal`]). Default `false`.
    pub allow_private: bool,
    /// At most this many bytes of an answer's body are kept as its excerpt; reading
    /// stops there and the connection is dropped with the rest unread. Default 512.
    pub excerpt_bytes: usize,
    /// The `User-Agent` header. Default `ivpay-notify/<version>`.
    pub user_agent: String,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            allow_private: false,
            excerpt_bytes: 512,
            user_agent: concat!("ivpay-notify/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why a [`NotifySender`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyBuildError {
    /// The user agent cannot be sent in a header.
    #[error("the user agent contains characters not allowed in a header")]
    UserAgent,
    /// reqwest refused the configuration.
    #[error("could not build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// Sends notices to client endpoints: the [`NoticeSender`] port over reqwest.
///
/// One attempt is one `POST` of the notice's body with its headers, plus
/// `Content-Type: application/json` and the configured `User-Agent`. Every outcome is a
/// [`SendReport`]:
///
/// - any HTTP answer, redirects included (they are never followed), is
///   [`SendOutcome::Answered`] with the status and the first
///   [`excerpt_bytes`](NotifyConfig::excerpt_bytes) of the body, lossily decoded;
/// - a destination the guard refuses (an IP literal, a `localhost` name, or a name whose
///   addresses are all refused when connecting) is [`SendOutcome::Refused`], naming the
///   address and the rule; nothing was sent;
/// - no answer is [`SendOutcome::Failed`]: `timed_out` when the time limit ran out,
///   otherwise a short reason (connection refused or reset, DNS failure).
///
/// Reasons and logs name at most the host, never the URL's path or query (clients put
/// tokens there) nor a header value (the signature is derived from a secret).
///
/// Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// use ivpay_http_adapter::{NotifyConfig, NotifySender};
/// use ivpay_ports::{NoticeSender, OutboundNotice};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let sender = NotifySender::new(NotifyConfig::default())?;
/// let report = sender
///     .send(&OutboundNotice {
///         url: "https://shop.example/hooks/ivpay".parse()?,
///         headers: vec![("webhook-id", "msg_1".to_owned())],
///         body: br#"{"type":"payment.paid"}"#.to_vec(),
///     })
///     .await;
/// println!("delivered: {}, in {:?}", report.is_delivered(), report.latency);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NotifySender {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    user_agent: HeaderValue,
    config: NotifyConfig,
}

impl fmt::Debug for NotifySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifySender")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl NotifySender {
    /// A sender that resolves names with the operating system's resolver.
    ///
    /// Installs rustls' `ring` crypto provider as the process default if none is
    /// installed yet, as [`IvpayClient`](crate::IvpayClient) does.
    ///
    /// # Errors
    ///
    /// [`NotifyBuildError`]: a user agent that cannot be sent, or a reqwest configuration
    /// error.
    pub fn new(config: NotifyConfig) -> Result<Self, NotifyBuildError> {
        Self::with_lookup(config, SystemLookup)
    }

    /// A sender that resolves names with `lookup`, whose answers are still filtered by
    /// the guard: for tests that need a name to resolve to a given address, or for a
    /// resolver of the application's own.
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new).
    pub fn with_lookup(
        config: NotifyConfig,
        lookup: impl HostLookup + 'static,
    ) -> Result<Self, NotifyBuildError> {
        let user_agent =
            HeaderValue::from_str(&config.user_agent).map_err(|_| NotifyBuildError::UserAgent)?;
        // reqwest is built with `rustls-no-provider`; installing fails harmlessly when a
        // provider is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // A 3xx is the endpoint's answer; following it would let a client point us
            // anywhere after the guard has looked.
            .redirect(redirect::Policy::none())
            // A proxy would connect on our behalf, past the guard's resolver.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(Arc::new(lookup), config.allow_private))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(NotifyBuildError::Http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                user_agent,
                config,
            }),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &NotifyConfig {
        &self.inner.config
    }

    async fn attempt(&self, url: reqwest::Url, notice: &OutboundNotice) -> SendOutcome {
        let config = &self.inner.config;
        if let Some(reason) = guard::url_refusal(&url, config.allow_private) {
            return refused(reason);
        }
        let headers = match self.headers(notice) {
            Ok(headers) => headers,
            Err(reason) => return refused(reason),
        };
        let sent = self
            .inner
            .http
            .post(url)
            .headers(headers)
            .body(notice.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => SendOutcome::Answered {
                status: response.status().as_u16(),
                excerpt: read_excerpt(response, config.excerpt_bytes).await,
            },
            Err(error) => failure(&error),
        }
    }

    /// The notice's headers, then ours. Only names appear in the errors.
    fn headers(&self, notice: &OutboundNotice) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::with_capacity(notice.headers.len() + 2);
        for (name, value) in &notice.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header {header} cannot be sent"))?;
            // Kept out of reqwest's and hyper's debug output, and out of HPACK tables.
            value.set_sensitive(true);
            headers.append(header, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, self.inner.user_agent.clone());
        Ok(headers)
    }
}

#[async_trait::async_trait]
impl NoticeSender for NotifySender {
    async fn send(&self, notice: &OutboundNotice) -> SendReport {
        let started = Instant::now();
        let url = match reqwest::Url::parse(notice.url.as_str()) {
            Ok(url) => url,
            Err(e) => {
                return SendReport {
                    outcome: refused(format!("the URL cannot be used: {e}")),
                    latency: started.elapsed(),
                };
            }
        };
        // Only the host is logged: clients put tokens in paths and queries.
        let host = url.host_str().unwrap_or_default().to_owned();
        let outcome = self.attempt(url, notice).await;
        let latency = started.elapsed();
        match &outcome {
            SendOutcome::Answered { status, .. } => {
                tracing::debug!(%host, status, ?latency, "notice answered");
            }
            SendOutcome::Refused { reason } => {
                tracing::warn!(%host, %reason, "notice refused before sending");
            }
            SendOutcome::Failed { reason, timed_out } => {
                tracing::debug!(%host, %reason, timed_out, ?latency, "notice not answered");
            }
        }
        SendReport { outcome, latency }
    }
}

fn refused(reason: String) -> SendOutcome {
    SendOutcome::Refused { reason }
}

/// Reads at most `limit` bytes of the body, chunk by chunk, and drops the rest unread
/// (the connection is closed rather than reused). A body that breaks off keeps what came.
async fn read_excerpt(mut response: reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::with_capacity(limit.min(8 * 1024));
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - bytes.len());
                bytes.extend_from_slice(&chunk[..take]);
            }
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(reason = %root_cause(&error), "answer body broke off");
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    // A character cut at the limit decodes to U+FFFD, which may be longer than what it
    // replaces: cut again on a character boundary so the excerpt stays within the limit.
    text[..text.floor_char_boundary(limit)].to_owned()
}

/// Classifies a failed send: the guard's refusal (found in the error chain, since it
/// happens inside the resolver), a timeout, or another failure.
fn failure(error: &reqwest::Error) -> SendOutcome {
    if let Some(refusal) = find_refusal(error) {
        return refused(refusal.reason.clone());
    }
    if error.is_timeout() {
        let reason = if error.is_connect() {
            "connect timed out"
        } else {
            "timed out waiting for the answer"
        };
        return SendOutcome::Failed {
            reason: reason.to_owned(),
            timed_out: true,
        };
    }
    let cause = root_cause(error);
    let reason = if error.is_connect() {
        format!("could not connect: {cause}")
    } else {
        format!("no answer: {cause}")
    };
    SendOutcome::Failed {
        reason,
        timed_out: false,
    }
}

fn find_refusal(error: &reqwest::Error) -> Option<&Refusal> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = NotifyConfig::default();
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert!(!config.allow_private);
        assert_eq!(config.excerpt_bytes, 512);
        assert!(config.user_agent.starts_with("ivpay-notify/"));
    }

    #[test]
    fn a_user_agent_that_cannot_be_sent_is_refused_at_build() {
        let config = NotifyConfig {
            user_agent: "bad\nagent".into(),
            ..NotifyConfig::default()
        };
        assert!(matches!(
            NotifySender::new(config),
            Err(NotifyBuildError::UserAgent)
        ));
    }

    #[test]
    fn debug_shows_the_settings_and_nothing_else() -> Result<(), NotifyBuildError> {
        let sender = NotifySender::new(NotifyConfig::default())?;
        let shown = format!("{sender:?}");
        assert!(shown.contains("allow_private: false"), "{shown}");
        assert!(shown.contains("ivpay-notify/"), "{shown}");
        Ok(())
    }

    #[test]
    fn header_values_never_appear_in_a_refusal() -> Result<(), NotifyBuildError> {
        let sender = NotifySender::new(NotifyConfig::default())?;
        let notice = OutboundNotice {
            url: "https://shop.example/hook".parse().expect("valid URL"),
            headers: vec![("webhook-signature", "v1,secret\nsig".to_owned())],
            body: Vec::new(),
        };
        let reason = sender.headers(&notice).expect_err("newline in a value");
        assert!(reason.contains("webhook-signature"), "{reason}");
        assert!(!reason.contains("secret"), "{reason}");
        Ok(())
    }
}
