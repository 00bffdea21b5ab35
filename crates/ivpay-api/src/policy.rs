//! Per-client rules a request must keep beyond its key: the hosts its redirect URLs may
//! name.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ivpay_domain::{ClientId, NewPayment};

use crate::error::ApiError;

/// A host a redirect URL may name: exactly `shop.example`, or with `*.shop.example` any
/// subdomain of it (not `shop.example` itself). Compared without case.
#[derive(Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    subdomains: bool,
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subdomains {
            write!(f, "*.{}", self.host)
        } else {
            f.write_str(&self.host)
        }
    }
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (subdomains, host) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(format!(
                "{s:?} is not a host name (`shop.example`, or `*.shop.example` for its subdomains)"
            ));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            subdomains,
        })
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        if self.subdomains {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

/// Each client's allowed redirect hosts. A client without an entry may name any host.
#[derive(Clone, Debug, Default)]
pub struct RedirectPolicy {
    allowed: BTreeMap<ClientId, Vec<HostPattern>>,
}

impl RedirectPolicy {
    /// No restriction for anyone.
    pub fn new() -> Self {
        Self::default()
    }

    /// `client`'s `url_success` and `url_failed` must name one of `hosts`.
    #[must_use]
    pub fn allow(mut self, client: ClientId, hosts: Vec<HostPattern>) -> Self {
        self.allowed.insert(client, hosts);
        self
    }

    /// 400 naming the field whose host `client` may not send customers to.
    pub(crate) fn check(&self, client: &ClientId, request: &NewPayment) -> Result<(), ApiError> {
        let Some(hosts) = self.allowed.get(client) else {
            return Ok(());
        };
        let fields = [
            ("url_success", request.url_success()),
            ("url_failed", request.url_failed()),
        ];
        for (field, url) in fields {
            if let Some(url) = url {
                let host = url.host();
                if !hosts.iter().any(|p| p.matches(&host)) {
                    return Err(ApiError::invalid(
                        field,
                        format!("host {host:?} is not among this client's allowed redirect hosts"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(success: &str) -> NewPayment {
        NewPayment::from_fields("10", "USD", None, Some(success), None).expect("valid")
    }

    fn pattern(s: &str) -> HostPattern {
        s.parse().expect("pattern")
    }

    #[test]
    fn exact_hosts_and_subdomain_patterns() {
        let shop: ClientId = "shop".parse().expect("id");
        let policy = RedirectPolicy::new().allow(
            shop.clone(),
            vec![pattern("shop.example"), pattern("*.pay.example")],
        );
        for ok in [
            "https://shop.example/done",
            "https://SHOP.example:8443/x?y#z",
            "https://eu.pay.example/",
        ] {
            assert!(policy.check(&shop, &request(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example/",
            "https://shop.example.evil.example/",
            "https://pay.example/",
            "https://xpay.example/",
            "https://shop.example@evil.example/",
        ] {
            let err = policy.check(&shop, &request(bad)).expect_err(bad);
            assert_eq!(
                err.to_string().split(':').next(),
                Some("url_success"),
                "{bad}"
            );
        }
        let other: ClientId = "other".parse().expect("id");
        assert!(
            policy
                .check(&other, &request("https://evil.example/"))
                .is_ok()
        );
    }

    #[test]
    fn patterns_must_be_host_names() {
        for bad in ["", "*.", "https://shop.example", "shop.example/x", "a..b"] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?}");
        }
    }
}
