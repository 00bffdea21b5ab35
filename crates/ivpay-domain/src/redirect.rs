//! Absolute http(s) URLs the customer is sent to after paying.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An absolute `http` or `https` URL with a host, at most 2048 characters.
///
/// Used for `url_success`, `url_failed` and IVPAY's `payment_url`. The text is kept as
/// given (after checking) so it goes back to the client exactly as sent.
///
/// ```
/// use ivpay_domain::RedirectUrl;
///
/// let ok: RedirectUrl = "https://shop.example/thanks?order=7".parse()?;
/// assert_eq!(ok.as_str(), "https://shop.example/thanks?order=7");
/// assert!("/relative".parse::<RedirectUrl>().is_err());
/// assert!("javascript:alert(1)".parse::<RedirectUrl>().is_err());
/// # Ok::<(), ivpay_domain::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUrl(String);

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute URL.
    #[error("not an absolute URL: {0}")]
    Invalid(String),
    /// A scheme other than http or https.
    #[error("scheme {0:?} is not allowed, use http or https")]
    Scheme(String),
    /// No host.
    #[error("must have a host")]
    NoHost,
    /// Longer than 2048 characters.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

impl RedirectUrl {
    /// Longest accepted URL.
    pub const MAX_LEN: usize = 2048;

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host a browser would go to, as the URL standard reads it: lower-cased,
    /// internationalised names in punycode, user info and port left out.
    pub fn host(&self) -> String {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn check(s: &str) -> Result<(), UrlError> {
        if s.len() > Self::MAX_LEN {
            return Err(UrlError::TooLong { max: Self::MAX_LEN });
        }
        let parsed = url::Url::parse(s).map_err(|e| UrlError::Invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlError::Scheme(parsed.scheme().to_owned()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        Ok(())
    }
}

impl FromStr for RedirectUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::check(s)?;
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for RedirectUrl {
    type Error = UrlError;
    fn try_from(s: String) -> Result<Self, UrlError> {
        Self::check(&s)?;
        Ok(Self(s))
    }
}

impl From<RedirectUrl> for String {
    fn from(u: RedirectUrl) -> String {
        u.0
    }
}

impl fmt::Display for RedirectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_with_host() {
        assert!("http://localhost:8080/ok".parse::<RedirectUrl>().is_ok());
        assert!("https://127.0.0.1/x".parse::<RedirectUrl>().is_ok());
    }

    #[test]
    fn refuses_other_schemes_relative_and_long_urls() {
        assert_eq!(
            "ftp://host/x".parse::<RedirectUrl>(),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert!(matches!(
            "shop.example/x".parse::<RedirectUrl>(),
            Err(UrlError::Invalid(_))
        ));
        let long = format!("https://h/{}", "a".repeat(2048));
        assert_eq!(
            long.parse::<RedirectUrl>(),
            Err(UrlError::TooLong { max: 2048 })
        );
    }
}
