//! The outbound notification port: send one signed notice to one client endpoint.

use std::time::Duration;

use ivpay_domain::EndpointUrl;

/// One HTTP `POST` to a client's endpoint, signed and ready: the sender adds nothing but
/// `Content-Type: application/json` and its `User-Agent`.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundNotice {
    /// Where to send it.
    pub url: EndpointUrl,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`: header names and values.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, exactly as signed.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for OutboundNotice {
    // The signature is derived from a secret: leave it out, with the body.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundNotice")
            .field("url", &self.url.as_str())
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What became of one attempt.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SendOutcome {
    /// The endpoint answered with this status (any status: 2xx is delivered, the caller
    /// decides about the others). Redirects are answers too: they are never followed.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body, at most a few hundred bytes, lossily UTF-8.
        excerpt: String,
    },
    /// Not sent: the address is not allowed (loopback, private, link-local, metadata) or
    /// the URL cannot be used. Nothing left this process.
    Refused {
        /// Which rule, and the address it matched.
        reason: String,
    },
    /// Sent or maybe sent, but no answer: connection refused, reset, DNS failure, time out.
    Failed {
        /// What happened, without secrets.
        reason: String,
        /// Whether it ran into the time limit.
        timed_out: bool,
    },
}

/// One attempt's outcome and how long it took.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SendReport {
    /// What happened.
    pub outcome: SendOutcome,
    /// From the start of the attempt to its outcome.
    pub latency: Duration,
}

impl SendReport {
    /// Whether the endpoint took the notice (a 2xx answer).
    pub fn is_delivered(&self) -> bool {
        matches!(self.outcome, SendOutcome::Answered { status, .. } if (200..300).contains(&status))
    }

    /// Whether the endpoint said it is gone for good (410): it is disabled.
    pub fn is_gone(&self) -> bool {
        matches!(self.outcome, SendOutcome::Answered { status: 410, .. })
    }
}

/// Sends notices to client endpoints. Implementations bound the time of an attempt, never
/// follow redirects, and refuse addresses a client must not make us reach (checked when
/// connecting, so a name that resolves elsewhere later is caught).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait NoticeSender: Send + Sync {
    /// Sends one notice and reports what happened. Never fails: every outcome is a report.
    async fn send(&self, notice: &OutboundNotice) -> SendReport;
}
