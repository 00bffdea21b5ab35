//! The HTTP client: configuration, one request, the retry loop, and reading answers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ivpay_domain::PaymentId;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{StatusCode, Url, redirect};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{BuildError, IvpayError, Unavailability, excerpt};
use crate::retry::{Operation, RetryDecision, RetryPolicy, parse_retry_after};
use crate::wire::{self, CreatePaymentRequest, CreatedPayment, PaymentDetails};

/// The base URL public code uses for IVPAY's live API; the documentation does not state one.
pub const DEFAULT_BASE_URL: &str = "https://api.ivpay.io/api/v4";

/// Response bodies larger than this are refused (a [`IvpayError::Protocol`] error).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const API_KEY_HEADER: &str = "x-api-key";

/// A client for IVPAY's payment API.
///
/// Cheap to clone: clones share one connection pool. Redirects are never followed (reqwest
/// would forward `X-API-KEY` to the new host), response bodies are capped at
/// [`MAX_BODY_BYTES`], and reads are retried with jittered back-off while creates are
/// retried only when the connection was refused (see [`RetryPolicy`]).
///
/// `Debug` shows the base URL and settings, never the API key.
///
/// ```no_run
/// use ivpay_domain::PaymentId;
/// use ivpay_http_adapter::{IvpayClient, wire::CreatePaymentRequest};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = IvpayClient::builder(std::env::var("IVPAY_API_KEY")?)
///     .request_timeout(Duration::from_secs(10))
///     .build()?;
///
/// let created = client
///     .create_payment(&CreatePaymentRequest {
///         amount_fiat: "10.50".into(),
///         currency_fiat: "USD".into(),
///         foreign_id: Some("order-42".into()),
///         url_success: None,
///         url_failed: None,
///     })
///     .await?;
/// println!("pay at {}", created.data.payment_url);
///
/// let id: PaymentId = created.data.payment_id.parse()?;
/// let read = client.get_payment(&id).await?;
/// println!("status {}", read.data.status);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct IvpayClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Set on every request: the key (marked sensitive), content type and user agent.
    headers: HeaderMap,
    base_url: Url,
    api_key: SecretString,
    retry: RetryPolicy,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl fmt::Debug for IvpayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IvpayClient")
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &"[REDACTED]")
            .field("connect_timeout", &self.inner.connect_timeout)
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// A parsed answer from IVPAY together with the body exactly as received, for evidence.
#[derive(Clone, Debug)]
pub struct Reply<T> {
    /// The parsed `data`.
    pub data: T,
    /// The HTTP status.
    pub status: u16,
    /// The body verbatim.
    pub raw: String,
}

/// Configures an [`IvpayClient`]. Start with [`IvpayClient::builder`].
pub struct IvpayClientBuilder {
    api_key: SecretString,
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    user_agent: String,
    retry: RetryPolicy,
    allow_http: bool,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for IvpayClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IvpayClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &"[REDACTED]")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("allow_http", &self.allow_http)
            .field("own_http_client", &self.http.is_some())
            .finish()
    }
}

impl IvpayClientBuilder {
    /// The API root, default [`DEFAULT_BASE_URL`]. Paths are appended to it
    /// (`{base}/payment/create`), so a trailing slash makes no difference.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// How long to wait for a connection, default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take from connecting to the end of the body, default 15 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The `User-Agent` header, default `ivpay-http-adapter/<version>`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Retry bounds, default [`RetryPolicy::default`]; [`RetryPolicy::NONE`] turns retries off.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Accept a plain `http` base URL. For tests and local sandboxes only: the API key
    /// would travel in clear text.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sends through `client` instead of a client of its own: for proxies, middleware or
    /// a connection pool shared with the rest of an application. The API key, content
    /// type, user agent and the request timeout are still set on every request; the
    /// connect timeout is `client`'s. `client` must not follow redirects (build it with
    /// `redirect(reqwest::redirect::Policy::none())`): IVPAY's answer to a request is
    /// never somewhere else, and a redirect followed would resend the key.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client.
    ///
    /// Installs rustls' `ring` crypto provider as the process default if none is
    /// installed yet (reqwest is built without a provider of its own).
    ///
    /// # Errors
    ///
    /// [`BuildError`]: a base URL that does not parse, has credentials, a query or a
    /// fragment, or is plain http without [`allow_http`](Self::allow_http); an empty or
    /// non-header-safe API key or user agent; a reqwest configuration error.
    pub fn build(self) -> Result<IvpayClient, BuildError> {
        let base_url = parse_base_url(&self.base_url, self.allow_http)?;
        let key = self.api_key.expose_secret();
        if key.is_empty() {
            return Err(BuildError::ApiKey);
        }
        let mut key_header = HeaderValue::from_str(key).map_err(|_| BuildError::ApiKey)?;
        key_header.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, key_header);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let user_agent =
            HeaderValue::from_str(&self.user_agent).map_err(|_| BuildError::UserAgent)?;

        // reqwest is built with `rustls-no-provider` (one crypto stack, ring, for the
        // whole workspace). Installing fails harmlessly when a provider is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();

        headers.insert(USER_AGENT, user_agent);
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .connect_timeout(self.connect_timeout)
                .build()
                .map_err(BuildError::Http)?,
        };
        Ok(IvpayClient {
            inner: Arc::new(Inner {
                http,
                headers,
                base_url,
                api_key: self.api_key,
                retry: self.retry,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

fn parse_base_url(text: &str, allow_http: bool) -> Result<Url, BuildError> {
    let url = Url::parse(text).map_err(|e| BuildError::BaseUrl {
        reason: e.to_string(),
    })?;
    let reason = match url.scheme() {
        _ if url.cannot_be_a_base() || url.host_str().is_none() => Some("no host"),
        _ if !url.username().is_empty() || url.password().is_some() => {
            Some("credentials in the URL are not allowed")
        }
        _ if url.query().is_some() || url.fragment().is_some() => {
            Some("a query or fragment is not allowed")
        }
        "https" => None,
        "http" if allow_http => None,
        "http" => return Err(BuildError::InsecureBaseUrl),
        _ => Some("scheme must be https"),
    };
    match reason {
        Some(reason) => Err(BuildError::BaseUrl {
            reason: reason.to_owned(),
        }),
        None => Ok(url),
    }
}

impl IvpayClient {
    /// Starts configuring a client with the merchant's API key (one per Point of Sale).
    pub fn builder(api_key: impl Into<SecretString>) -> IvpayClientBuilder {
        IvpayClientBuilder {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            user_agent: concat!("ivpay-http-adapter/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            allow_http: false,
            http: None,
        }
    }

    /// The API root requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// `POST /payment/create`. Sent once, plus again only if the connection was refused.
    ///
    /// # Errors
    ///
    /// [`IvpayError`]; see [`IvpayError::delivery`] for whether a payment may exist
    /// upstream despite the error.
    pub async fn create_payment(
        &self,
        request: &CreatePaymentRequest,
    ) -> Result<Reply<CreatedPayment>, IvpayError> {
        let body = serde_json::to_vec(request).map_err(|e| IvpayError::Protocol {
            status: 0,
            detail: format!("could not encode the request: {e}"),
        })?;
        let url = self.url(&["payment", "create"]);
        self.with_retries(Operation::Create, || {
            self.attempt(Operation::Create, url.clone(), Some(body.clone()), None)
        })
        .await
    }

    /// `GET /payment/{payment_id}`, retried on unavailability within the retry policy.
    ///
    /// # Errors
    ///
    /// [`IvpayError::NotFound`] when IVPAY does not know the id (404, or a 400 saying so);
    /// otherwise as for [`create_payment`](Self::create_payment).
    pub async fn get_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Reply<PaymentDetails>, IvpayError> {
        let url = self.url(&["payment", payment_id.as_str()]);
        self.with_retries(Operation::Get, || {
            self.attempt(Operation::Get, url.clone(), None, Some(payment_id))
        })
        .await
    }

    /// `{base}/a/b`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Checked in `parse_base_url`: the base URL can have segments appended.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn with_retries<T, F, Fut>(
        &self,
        operation: Operation,
        mut call: F,
    ) -> Result<T, IvpayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, IvpayError>>,
    {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let decision = self.inner.retry.decide(
                operation,
                attempt,
                started.elapsed(),
                &error,
                fastrand::f64(),
            );
            match decision {
                RetryDecision::GiveUp => {
                    tracing::debug!(?operation, attempt, %error, "IVPAY call failed");
                    return Err(error);
                }
                RetryDecision::RetryAfter(wait) => {
                    tracing::debug!(?operation, attempt, %error, ?wait, "IVPAY call failed, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt<T: serde::de::DeserializeOwned + wire::Documented>(
        &self,
        operation: Operation,
        url: Url,
        body: Option<Vec<u8>>,
        payment_id: Option<&PaymentId>,
    ) -> Result<Reply<T>, IvpayError> {
        let mut request = self
            .inner
            .http
            .request(operation.method(), url)
            .headers(self.inner.headers.clone())
            .timeout(self.inner.request_timeout);
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_capped(&mut response, status).await?;
        self.interpret(operation, status, retry_after, &body, payment_id)
    }

    fn interpret<T: serde::de::DeserializeOwned + wire::Documented>(
        &self,
        operation: Operation,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
        payment_id: Option<&PaymentId>,
    ) -> Result<Reply<T>, IvpayError> {
        let code = status.as_u16();
        let protocol = |problem: &str| IvpayError::Protocol {
            status: code,
            detail: format!("{problem}; {}", self.excerpt(body)),
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(IvpayError::Unauthorized);
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(IvpayError::Unavailable {
                cause: Unavailability::Status { status: code },
                retry_after,
            });
        }
        if status.is_redirection() {
            return Err(protocol("redirect not followed"));
        }
        let envelope = wire::parse_envelope(body);
        if status.is_client_error() {
            let message = match &envelope {
                Ok(wire::Envelope {
                    error: Some(message),
                    ..
                }) => message.chars().take(500).collect::<String>(),
                _ => self.excerpt(body),
            };
            if let Some(id) = payment_id {
                let lower = message.to_lowercase();
                if status == StatusCode::NOT_FOUND
                    || (status == StatusCode::BAD_REQUEST
                        && (lower.contains("not found") || lower.contains("not exist")))
                {
                    return Err(IvpayError::NotFound {
                        payment_id: id.clone(),
                    });
                }
            }
            return Err(IvpayError::Rejected {
                status: code,
                message,
            });
        }
        if !status.is_success() {
            return Err(protocol("unexpected status"));
        }
        let envelope = envelope.map_err(|e| protocol(&format!("not an IVPAY envelope ({e})")))?;
        if !envelope.success {
            // A 2xx that says it failed: IVPAY answered, and refused.
            return Err(IvpayError::Rejected {
                status: code,
                message: envelope
                    .error
                    .unwrap_or_else(|| "success is false, no error message".to_owned()),
            });
        }
        let data = envelope
            .data_as::<T>()
            .map_err(|e| protocol(&format!("unexpected data ({e})")))?;
        let raw = String::from_utf8(body.to_vec()).map_err(|_| protocol("body is not UTF-8"))?;
        for field in envelope.extra.keys().chain(data.undocumented().keys()) {
            crate::drift::undocumented_field(operation.as_str(), field);
        }
        Ok(Reply {
            data,
            status: code,
            raw,
        })
    }

    fn excerpt(&self, body: &[u8]) -> String {
        excerpt(body, self.inner.api_key.expose_secret())
    }
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`].
async fn read_capped(
    response: &mut reqwest::Response,
    status: StatusCode,
) -> Result<Vec<u8>, IvpayError> {
    let too_large = || IvpayError::Protocol {
        status: status.as_u16(),
        detail: format!("body larger than {MAX_BODY_BYTES} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Classifies a reqwest failure (no HTTP answer, or a body that broke off).
fn transport_error(error: reqwest::Error) -> IvpayError {
    let detail = root_cause(&error);
    let cause = if error.is_connect() {
        if error.is_timeout() {
            Unavailability::ConnectTimeout
        } else {
            Unavailability::Connect { detail }
        }
    } else if error.is_timeout() {
        Unavailability::Timeout
    } else {
        Unavailability::Interrupted { detail }
    };
    IvpayError::Unavailable {
        cause,
        retry_after: None,
    }
}

/// The innermost error message (e.g. `Connection refused (os error 111)`), which says more
/// than reqwest's outer "error sending request", and carries no URL.
pub(crate) fn root_cause(error: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert!(parse_base_url(DEFAULT_BASE_URL, false).is_ok());
        assert!(matches!(
            parse_base_url("http://127.0.0.1:1", false),
            Err(BuildError::InsecureBaseUrl)
        ));
        assert!(parse_base_url("http://127.0.0.1:1", true).is_ok());
        for bad in [
            "https://user:pw@api.ivpay.io/api/v4",
            "https://api.ivpay.io/api/v4?x=1",
            "ftp://api.ivpay.io",
            "mailto:a@b",
            "not a url",
        ] {
            assert!(
                matches!(parse_base_url(bad, true), Err(BuildError::BaseUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_are_appended_to_the_base() -> Result<(), BuildError> {
        for base in ["https://h.example/api/v4", "https://h.example/api/v4/"] {
            let client = IvpayClient::builder("k").base_url(base).build()?;
            let id: PaymentId = "abc".parse().expect("valid id");
            assert_eq!(
                client.url(&["payment", id.as_str()]).as_str(),
                "https://h.example/api/v4/payment/abc"
            );
        }
        Ok(())
    }

    #[test]
    fn refuses_keys_that_cannot_be_sent_without_showing_them() {
        let err = IvpayClient::builder("bad\nkey-secret")
            .build()
            .expect_err("newline in key");
        assert!(matches!(err, BuildError::ApiKey));
        assert!(!err.to_string().contains("secret"));
        assert!(matches!(
            IvpayClient::builder("").build(),
            Err(BuildError::ApiKey)
        ));
    }

    #[test]
    fn debug_never_shows_the_key() -> Result<(), BuildError> {
        let builder = IvpayClient::builder("sk_live_do_not_print");
        assert!(!format!("{builder:?}").contains("do_not_print"));
        let client = builder.build()?;
        let shown = format!("{client:?} {client:#?}");
        assert!(!shown.contains("do_not_print"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
        Ok(())
    }
}
