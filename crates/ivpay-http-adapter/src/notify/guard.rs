//! The SSRF guard: which addresses a client's endpoint may make us reach, and a DNS
//! resolver that drops the others at connect time.
//!
//! Checking the URL once when an endpoint is registered is not enough: a name can resolve
//! to a public address then and to `127.0.0.1` a second later (DNS rebinding). So the
//! check runs inside the resolver the HTTP client connects through: the addresses it
//! hands to the connector are the addresses that were checked. IP literals never reach a
//! resolver, so [`url_refusal`] checks them (and `localhost` names) before sending.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use Scope::{Always, NonPublic};

/// Why `ip` must not be connected to, or `None` when it may be.
///
/// The answer is a rule, worded to follow the address: `"127.0.0.1 is " + rule`. IPv6
/// addresses that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by the IPv4
/// address inside, which is where the packets end up.
///
/// `allow_private` (a development setting) lets loopback, private, carrier-grade NAT,
/// unique-local and the other non-public ranges through. Some are refused even then:
///
/// - unspecified (`0.0.0.0/8`, `::`): connecting to it reaches this host on most systems,
///   and no one registers it on purpose;
/// - IPv4 link-local `169.254.0.0/16` and IPv6 link-local `fe80::/10`: the clouds keep
///   their instance services there (metadata and credentials at `169.254.169.254` and
///   `169.254.170.2`, DNS, time), and a notice has no business with any of them;
/// - the cloud metadata addresses outside link-local (`fd00:ec2::254`, `fd00:ec2::23`,
///   Alibaba's `100.100.100.200`): they hand out the host's credentials, so a setting
///   meant for a developer's laptop must not open them on a server;
/// - multicast and broadcast, which cannot be an HTTP peer.
///
/// ```
/// use std::net::IpAddr;
/// use ivpay_http_adapter::address_refusal;
///
/// let ip: IpAddr = "127.0.0.1".parse()?;
/// assert_eq!(address_refusal(ip, false), Some("a loopback address"));
/// assert_eq!(address_refusal(ip, true), None);
/// let metadata: IpAddr = "169.254.169.254".parse()?;
/// assert!(address_refusal(metadata, true).is_some());
/// assert_eq!(address_refusal("93.184.215.14".parse()?, false), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn address_refusal(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let (rule, scope) = match ip {
        IpAddr::V4(v4) => v4_rule(v4)?,
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_rule(v4)?,
            None => v6_rule(v6)?,
        },
    };
    match scope {
        Always => Some(rule),
        NonPublic => (!allow_private).then_some(rule),
    }
}

/// When a rule holds.
#[derive(Clone, Copy)]
enum Scope {
    /// Even with `allow_private`.
    Always,
    /// Unless `allow_private`.
    NonPublic,
}

const METADATA: &str = "a cloud metadata address";

/// Instance metadata and credential services at fixed addresses: AWS, GCP, Azure and
/// others (`169.254.169.254`), AWS ECS task credentials (`169.254.170.2`), Alibaba Cloud
/// (`100.100.100.200`, inside carrier-grade NAT space).
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
];

/// AWS's IPv6 instance metadata and EKS pod identity addresses (inside unique-local space).
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
];

/// The rule an IPv4 address falls under, and when it holds.
fn v4_rule(ip: Ipv4Addr) -> Option<(&'static str, Scope)> {
    let [a, b, c, _] = ip.octets();
    let rule = match (a, b, c) {
        // Named first: each lies inside a wider range with a weaker rule.
        _ if METADATA_V4.contains(&ip) => (METADATA, Always),
        _ if ip.is_broadcast() => ("the broadcast address", Always),
        (0, _, _) => ("an unspecified address (0.0.0.0/8)", Always),
        (169, 254, _) => ("a link-local address", Always),
        (224..=239, _, _) => ("a multicast address", Always),
        (127, _, _) => ("a loopback address", NonPublic),
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => ("a private address", NonPublic),
        (100, 64..=127, _) => ("a carrier-grade NAT address (100.64.0.0/10)", NonPublic),
        (192, 0, 0) => ("an IETF protocol assignment (192.0.0.0/24)", NonPublic),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => ("a documentation address", NonPublic),
        (192, 88, 99) => ("a 6to4 relay anycast address", NonPublic),
        (198, 18..=19, _) => ("a benchmarking address (198.18.0.0/15)", NonPublic),
        (240..=255, _, _) => ("a reserved address (240.0.0.0/4)", NonPublic),
        _ => return None,
    };
    Some(rule)
}

/// The rule an IPv6 address (one that carries no IPv4 address) falls under, and when it
/// holds.
fn v6_rule(ip: Ipv6Addr) -> Option<(&'static str, Scope)> {
    let rule = match ip.segments() {
        _ if METADATA_V6.contains(&ip) => (METADATA, Always),
        _ if ip.is_unspecified() => ("an unspecified address", Always),
        _ if ip.is_multicast() => ("a multicast address", Always),
        [a, ..] if a & 0xffc0 == 0xfe80 => ("a link-local address", Always),
        _ if ip.is_loopback() => ("a loopback address", NonPublic),
        [a, ..] if a & 0xfe00 == 0xfc00 => ("a unique-local address (fc00::/7)", NonPublic),
        [a, ..] if a & 0xffc0 == 0xfec0 => ("a site-local address (fec0::/10)", NonPublic),
        [0x64, 0xff9b, 1, ..] => ("a local-use NAT64 address (64:ff9b:1::/48)", NonPublic),
        [0x100, 0, 0, 0, ..] => ("a discard-only address (100::/64)", NonPublic),
        [0x2001, 0, ..] => ("a Teredo address (2001::/32)", NonPublic),
        [0x2001, 2, 0, ..] => ("a benchmarking address (2001:2::/48)", NonPublic),
        [0x2001, 0xdb8, ..] => ("a documentation address", NonPublic),
        [0x3fff, b, ..] if b < 0x1000 => ("a documentation address", NonPublic),
        // ::/96 (but :: and ::1) is IPv4-compatible and judged by its IPv4 part, and
        // 64:ff9b::/96 is NAT64; the rest of ::/8 is reserved.
        [a, ..] if a < 0x100 => ("a reserved address (::/8)", NonPublic),
        _ => return None,
    };
    Some(rule)
}

/// The IPv4 address an IPv6 address stands for, if it carries one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        // IPv4-compatible ::a.b.c.d (deprecated); :: and ::1 are themselves
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(low(hi, lo)),
        // 6to4 2002:aabb:ccdd::/48
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// Why a host name is refused without being looked up: `localhost` and `*.localhost`
/// always mean this machine (RFC 6761), whatever a resolver says.
pub(crate) fn name_refusal(host: &str, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost"))
        .then(|| format!("{host} is a loopback name (localhost)"))
}

/// Why the host of `url` is refused before anything is sent: an IP literal the guard
/// refuses, or a `localhost` name. Names are otherwise judged by the resolver when
/// connecting.
///
/// The host is read the way the connector reads it (`[...]` stripped, then parsed as an
/// address), so every host the connector would dial without resolving is checked here.
pub(crate) fn url_refusal(url: &reqwest::Url, allow_private: bool) -> Option<String> {
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => address_refusal(ip, allow_private).map(|rule| format!("{ip} is {rule}")),
        Err(_) => name_refusal(bare, allow_private),
    }
}

/// Looks up the addresses of a host name. [`SystemLookup`] asks the operating system; a
/// test can answer from a table instead (a name that "rebinds" to `127.0.0.1`).
///
/// The answers are not trusted: the sender filters them through [`address_refusal`].
#[async_trait::async_trait]
pub trait HostLookup: Send + Sync {
    /// The addresses of `host`, a DNS name (never an IP literal).
    ///
    /// # Errors
    ///
    /// Any lookup failure (unknown name, no DNS answer); it is reported as a failed
    /// attempt.
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio's `lookup_host`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemLookup;

#[async_trait::async_trait]
impl HostLookup for SystemLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// The guard refused a destination: the error the resolver fails with, found again in
/// reqwest's error chain to report `Refused` rather than `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Keeps the allowed addresses of `host`; refuses when none is left.
///
/// # Errors
///
/// [`Refusal`] naming the first refused address and its rule.
pub(crate) fn keep_allowed(
    host: &str,
    addrs: Vec<IpAddr>,
    allow_private: bool,
) -> Result<Vec<IpAddr>, Refusal> {
    let mut first_refused = None;
    let mut dropped = 0_usize;
    let allowed: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|ip| match address_refusal(*ip, allow_private) {
            None => true,
            Some(rule) => {
                dropped += 1;
                first_refused.get_or_insert((*ip, rule));
                false
            }
        })
        .collect();
    match (allowed.is_empty(), first_refused) {
        (true, Some((ip, rule))) => Err(Refusal {
            reason: format!("{ip} is {rule} ({host} resolves to no allowed address)"),
        }),
        (false, Some((ip, rule))) => {
            tracing::debug!(%host, %ip, rule, dropped, "refused addresses dropped from a DNS answer");
            Ok(allowed)
        }
        (_, None) => Ok(allowed),
    }
}

/// reqwest's resolver with the guard inside: looks the name up, drops refused addresses,
/// and fails with [`Refusal`] when none is left.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    lookup: Arc<dyn HostLookup>,
    allow_private: bool,
}

impl GuardedResolver {
    pub(crate) fn new(lookup: Arc<dyn HostLookup>, allow_private: bool) -> Self {
        Self {
            lookup,
            allow_private,
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = Arc::clone(&self.lookup);
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if let Some(reason) = name_refusal(&host, allow_private) {
                return Err(Refusal { reason }.into());
            }
            let found = lookup.lookup(&host).await?;
            if found.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} has no addresses"),
                )
                .into());
            }
            let allowed = keep_allowed(&host, found, allow_private)?;
            // Port 0: the connector puts in the URL's port, or the scheme's.
            let addrs: Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: &str = "a loopback address";
    const PRIVATE: &str = "a private address";
    const CGNAT: &str = "a carrier-grade NAT address (100.64.0.0/10)";
    const LINK_LOCAL: &str = "a link-local address";
    const UNSPECIFIED_V4: &str = "an unspecified address (0.0.0.0/8)";
    const DOC: &str = "a documentation address";
    const ULA: &str = "a unique-local address (fc00::/7)";
    const MULTICAST: &str = "a multicast address";

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address parses")
    }

    /// (address, rule without allow_private, rule with allow_private)
    const TABLE: &[(&str, Option<&str>, Option<&str>)] = &[
        // public
        ("1.1.1.1", None, None),
        ("93.184.215.14", None, None),
        ("2606:4700:4700::1111", None, None),
        ("2001:4860:4860::8888", None, None),
        // unspecified, "this network"
        ("0.0.0.0", Some(UNSPECIFIED_V4), Some(UNSPECIFIED_V4)),
        ("0.255.255.255", Some(UNSPECIFIED_V4), Some(UNSPECIFIED_V4)),
        (
            "::",
            Some("an unspecified address"),
            Some("an unspecified address"),
        ),
        // loopback
        ("127.0.0.1", Some(LOOPBACK), None),
        ("127.255.255.254", Some(LOOPBACK), None),
        ("::1", Some(LOOPBACK), None),
        // private, with boundaries
        ("9.255.255.255", None, None),
        ("10.0.0.0", Some(PRIVATE), None),
        ("10.255.255.255", Some(PRIVATE), None),
        ("11.0.0.0", None, None),
        ("172.15.255.255", None, None),
        ("172.16.0.0", Some(PRIVATE), None),
        ("172.31.255.255", Some(PRIVATE), None),
        ("172.32.0.0", None, None),
        ("192.167.255.255", None, None),
        ("192.168.0.1", Some(PRIVATE), None),
        ("192.169.0.0", None, None),
        // carrier-grade NAT
        ("100.63.255.255", None, None),
        ("100.64.0.0", Some(CGNAT), None),
        ("100.127.255.255", Some(CGNAT), None),
        ("100.128.0.0", None, None),
        // link-local and metadata: refused even with allow_private
        ("169.253.255.255", None, None),
        ("169.254.0.1", Some(LINK_LOCAL), Some(LINK_LOCAL)),
        ("169.254.169.254", Some(METADATA), Some(METADATA)),
        ("169.254.170.2", Some(METADATA), Some(METADATA)),
        ("169.255.0.0", None, None),
        ("100.100.100.200", Some(METADATA), Some(METADATA)),
        ("fe80::1", Some(LINK_LOCAL), Some(LINK_LOCAL)),
        ("febf:ffff::1", Some(LINK_LOCAL), Some(LINK_LOCAL)),
        ("fd00:ec2::254", Some(METADATA), Some(METADATA)),
        ("fd00:ec2::23", Some(METADATA), Some(METADATA)),
        // unique-local
        ("fc00::1", Some(ULA), None),
        ("fdff:ffff::1", Some(ULA), None),
        ("fe00::1", None, None),
        ("fec0::1", Some("a site-local address (fec0::/10)"), None),
        // multicast and broadcast
        ("224.0.0.1", Some(MULTICAST), Some(MULTICAST)),
        ("239.255.255.255", Some(MULTICAST), Some(MULTICAST)),
        ("ff02::1", Some(MULTICAST), Some(MULTICAST)),
        (
            "255.255.255.255",
            Some("the broadcast address"),
            Some("the broadcast address"),
        ),
        // special-purpose IPv4
        (
            "192.0.0.8",
            Some("an IETF protocol assignment (192.0.0.0/24)"),
            None,
        ),
        ("192.0.1.0", None, None),
        ("192.0.2.1", Some(DOC), None),
        ("198.51.100.7", Some(DOC), None),
        ("203.0.113.255", Some(DOC), None),
        ("192.88.99.1", Some("a 6to4 relay anycast address"), None),
        ("198.17.255.255", None, None),
        (
            "198.18.0.0",
            Some("a benchmarking address (198.18.0.0/15)"),
            None,
        ),
        (
            "198.19.255.255",
            Some("a benchmarking address (198.18.0.0/15)"),
            None,
        ),
        ("198.20.0.0", None, None),
        ("223.255.255.255", None, None),
        ("240.0.0.1", Some("a reserved address (240.0.0.0/4)"), None),
        // special-purpose IPv6
        ("2001:db8::1", Some(DOC), None),
        ("3fff::1", Some(DOC), None),
        ("2001::1", Some("a Teredo address (2001::/32)"), None),
        (
            "2001:2::1",
            Some("a benchmarking address (2001:2::/48)"),
            None,
        ),
        ("100::1", Some("a discard-only address (100::/64)"), None),
        (
            "64:ff9b:1::1",
            Some("a local-use NAT64 address (64:ff9b:1::/48)"),
            None,
        ),
        ("::2:0:0:1", Some("a reserved address (::/8)"), None),
        ("3fff:fff::1", Some(DOC), None),
        ("3fff:1000::1", None, None),
        ("2001:1::1", None, None),
        // IPv6 carrying IPv4: judged by the IPv4 address
        ("::ffff:127.0.0.1", Some(LOOPBACK), None),
        ("::ffff:10.1.2.3", Some(PRIVATE), None),
        ("::ffff:169.254.169.254", Some(METADATA), Some(METADATA)),
        ("::ffff:0.0.0.0", Some(UNSPECIFIED_V4), Some(UNSPECIFIED_V4)),
        ("::ffff:1.1.1.1", None, None),
        ("::127.0.0.1", Some(LOOPBACK), None),
        ("::10.0.0.1", Some(PRIVATE), None),
        ("::8.8.8.8", None, None),
        ("64:ff9b::127.0.0.1", Some(LOOPBACK), None),
        ("64:ff9b::169.254.169.254", Some(METADATA), Some(METADATA)),
        ("64:ff9b::8.8.8.8", None, None),
        ("2002:7f00:1::", Some(LOOPBACK), None),
        ("2002:c0a8:101::1", Some(PRIVATE), None),
        ("2002:808:808::1", None, None),
    ];

    #[test]
    fn every_range_is_judged_as_the_table_says() {
        for &(text, strict, relaxed) in TABLE {
            assert_eq!(address_refusal(ip(text), false), strict, "{text} strict");
            assert_eq!(
                address_refusal(ip(text), true),
                relaxed,
                "{text} allow_private"
            );
        }
    }

    #[test]
    fn localhost_names_are_refused_without_lookup_unless_private_is_allowed() {
        for name in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "api.localhost",
            "a.b.localhost.",
        ] {
            let reason = name_refusal(name, false).expect(name);
            assert!(reason.contains("loopback"), "{reason}");
            assert_eq!(name_refusal(name, true), None);
        }
        for name in ["localhost.example", "notlocalhost", "shop.example"] {
            assert_eq!(name_refusal(name, false), None, "{name}");
        }
    }

    #[test]
    fn ip_literal_hosts_are_checked_before_sending() {
        let check =
            |url: &str| url_refusal(&reqwest::Url::parse(url).expect("test URL parses"), false);
        assert_eq!(
            check("https://127.0.0.1/hook").as_deref(),
            Some("127.0.0.1 is a loopback address")
        );
        assert_eq!(
            check("http://[::1]:8080/").as_deref(),
            Some("::1 is a loopback address")
        );
        // The URL parser normalises the odd spellings of an IPv4 address first.
        assert_eq!(
            check("http://2130706433/").as_deref(),
            Some("127.0.0.1 is a loopback address")
        );
        assert_eq!(
            check("http://0x7f.1/").as_deref(),
            Some("127.0.0.1 is a loopback address")
        );
        assert!(check("http://[::ffff:169.254.169.254]/").is_some());
        assert!(check("http://0/").is_some());
        assert!(check("http://localhost:3000/").is_some());
        assert_eq!(check("https://shop.example/hook"), None);
        assert_eq!(check("https://1.1.1.1/hook"), None);
    }

    #[test]
    fn a_mixed_answer_keeps_only_the_public_addresses() -> Result<(), Refusal> {
        let kept = keep_allowed(
            "mixed.example",
            vec![ip("10.0.0.1"), ip("93.184.215.14"), ip("::1")],
            false,
        )?;
        assert_eq!(kept, vec![ip("93.184.215.14")]);
        Ok(())
    }

    #[test]
    fn an_answer_with_only_refused_addresses_is_a_refusal_naming_the_first() {
        let refusal = keep_allowed(
            "rebind.example",
            vec![ip("127.0.0.1"), ip("10.0.0.1")],
            false,
        )
        .expect_err("nothing allowed");
        assert_eq!(
            refusal.reason,
            "127.0.0.1 is a loopback address (rebind.example resolves to no allowed address)"
        );
    }

    struct Table(Vec<IpAddr>);

    #[async_trait::async_trait]
    impl HostLookup for Table {
        async fn lookup(&self, _host: &str) -> io::Result<Vec<IpAddr>> {
            Ok(self.0.clone())
        }
    }

    fn resolver(answer: &[&str], allow_private: bool) -> GuardedResolver {
        GuardedResolver::new(
            Arc::new(Table(answer.iter().map(|a| ip(a)).collect())),
            allow_private,
        )
    }

    fn name(text: &str) -> Name {
        text.parse().expect("valid DNS name")
    }

    #[tokio::test]
    async fn the_resolver_filters_what_the_lookup_answers()
    -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let addrs: Vec<SocketAddr> = resolver(&["10.0.0.1", "1.1.1.1"], false)
            .resolve(name("mixed.example"))
            .await?
            .collect();
        assert_eq!(addrs, vec![SocketAddr::new(ip("1.1.1.1"), 0)]);

        let relaxed: Vec<SocketAddr> = resolver(&["10.0.0.1", "1.1.1.1"], true)
            .resolve(name("mixed.example"))
            .await?
            .collect();
        assert_eq!(relaxed.len(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn the_resolver_fails_with_a_refusal_it_can_be_recognised_by() {
        let error = resolver(&["127.0.0.1"], false)
            .resolve(name("rebind.example"))
            .await
            .err()
            .expect("a loopback-only answer is refused");
        let refusal = error.downcast_ref::<Refusal>().expect("a Refusal");
        assert!(
            refusal
                .reason
                .starts_with("127.0.0.1 is a loopback address")
        );

        let error = resolver(&["1.1.1.1"], false)
            .resolve(name("localhost"))
            .await
            .err()
            .expect("localhost is refused whatever the lookup says");
        assert!(error.downcast_ref::<Refusal>().is_some());

        let error = resolver(&[], false)
            .resolve(name("empty.example"))
            .await
            .err()
            .expect("an empty answer is an error");
        assert!(error.downcast_ref::<Refusal>().is_none(), "not a refusal");
    }
}
