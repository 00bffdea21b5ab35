//! The notification sender over real HTTP on 127.0.0.1: wiremock for answers, raw TCP
//! listeners to see whether anything connected at all, and a table of fake DNS answers
//! to drive the guard's resolver.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivpay_http_adapter::{HostLookup, NotifyConfig, NotifySender};
use ivpay_ports::{NoticeSender, OutboundNotice, SendOutcome, SendReport};
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BODY: &str = r#"{"type":"payment.paid","data":{"payment_id":"p_1"}}"#;
const SIGNATURE: &str = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";

/// What a test lets through: private targets allowed (the local servers are loopback).
fn relaxed() -> NotifyConfig {
    NotifyConfig {
        allow_private: true,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        ..NotifyConfig::default()
    }
}

/// What production runs with.
fn strict() -> NotifyConfig {
    NotifyConfig {
        allow_private: false,
        ..relaxed()
    }
}

fn sender(config: NotifyConfig) -> NotifySender {
    NotifySender::new(config).expect("valid test configuration")
}

fn notice(url: &str) -> OutboundNotice {
    OutboundNotice {
        url: url.parse().expect("valid endpoint URL"),
        headers: vec![
            ("webhook-id", "msg_2Lp3Vx".to_owned()),
            ("webhook-timestamp", "1714000000".to_owned()),
            ("webhook-signature", SIGNATURE.to_owned()),
        ],
        body: BODY.as_bytes().to_vec(),
    }
}

fn answered(report: &SendReport) -> (u16, &str) {
    match &report.outcome {
        SendOutcome::Answered { status, excerpt } => (*status, excerpt.as_str()),
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn refusal(report: &SendReport) -> &str {
    match &report.outcome {
        SendOutcome::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A listener that counts nothing but whether a connection is waiting: after a send has
/// returned, a connection it made is already in the accept queue.
async fn assert_nothing_connected(listener: &TcpListener) {
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "something connected: {accepted:?}");
}

/// Fake DNS: fixed answers per name, and the names asked for.
#[derive(Default, Clone)]
struct FakeDns {
    answers: HashMap<&'static str, Vec<IpAddr>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl FakeDns {
    fn with(mut self, name: &'static str, addresses: &[&str]) -> Self {
        let parsed = addresses
            .iter()
            .map(|a| a.parse().expect("test address parses"))
            .collect();
        self.answers.insert(name, parsed);
        self
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("not poisoned").clone()
    }
}

#[async_trait::async_trait]
impl HostLookup for FakeDns {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self.asked
            .lock()
            .expect("not poisoned")
            .push(host.to_owned());
        self.answers.get(host).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "failed to lookup address information",
            )
        })
    }
}

// ---- answers, with private targets allowed ----

#[tokio::test]
async fn a_2xx_answer_is_delivered() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let report = sender(relaxed())
        .send(&notice(&format!("{}/hooks", server.uri())))
        .await;

    assert!(report.is_delivered(), "{report:?}");
    assert_eq!(answered(&report), (204, ""));
    assert!(report.latency > Duration::ZERO);
    Ok(())
}

#[tokio::test]
async fn a_500_is_an_answer_with_the_start_of_its_body() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database is down"))
        .mount(&server)
        .await;

    let report = sender(relaxed()).send(&notice(&server.uri())).await;

    assert!(!report.is_delivered());
    assert_eq!(answered(&report), (500, "database is down"));
    Ok(())
}

#[tokio::test]
async fn a_huge_body_is_read_only_up_to_the_excerpt_limit() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(1024 * 1024)))
        .mount(&server)
        .await;

    let report = sender(relaxed()).send(&notice(&server.uri())).await;

    let (status, excerpt) = answered(&report);
    assert_eq!(status, 200);
    assert_eq!(excerpt, "x".repeat(512));
    Ok(())
}

#[tokio::test]
async fn a_character_cut_at_the_limit_keeps_the_excerpt_within_it() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("é".repeat(100)))
        .mount(&server)
        .await;
    let config = NotifyConfig {
        excerpt_bytes: 11,
        ..relaxed()
    };

    let report = sender(config).send(&notice(&server.uri())).await;

    // 11 bytes hold five "é" and half of the sixth, which is dropped.
    assert_eq!(answered(&report), (400, "ééééé"));
    Ok(())
}

#[tokio::test]
async fn a_redirect_is_an_answer_and_its_target_is_never_asked() -> TestResult {
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&target)
        .await;
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/stolen", target.uri())),
        )
        .expect(1)
        .mount(&endpoint)
        .await;

    let report = sender(relaxed()).send(&notice(&endpoint.uri())).await;

    assert_eq!(answered(&report).0, 302);
    assert!(!report.is_delivered());
    target.verify().await;
    assert!(
        target
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_server_that_never_answers_runs_into_the_time_limit() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    // Accepts, reads nothing, answers nothing, keeps the connection open.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = NotifyConfig {
        timeout: Duration::from_millis(300),
        ..relaxed()
    };

    let report = sender(config)
        .send(&notice(&format!("http://127.0.0.1:{port}/")))
        .await;

    match &report.outcome {
        SendOutcome::Failed { timed_out, reason } => {
            assert!(timed_out, "{reason}");
        }
        other => panic!("expected a time out, got {other:?}"),
    }
    assert!(report.latency >= Duration::from_millis(300));
    assert!(
        report.latency < Duration::from_secs(3),
        "{:?}",
        report.latency
    );
    silent.abort();
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_fails_without_a_time_out() -> TestResult {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        listener.local_addr()?.port()
    };

    let report = sender(relaxed())
        .send(&notice(&format!("http://127.0.0.1:{port}/?token=hush")))
        .await;

    match &report.outcome {
        SendOutcome::Failed { timed_out, reason } => {
            assert!(!timed_out);
            assert!(reason.starts_with("could not connect"), "{reason}");
            assert!(!reason.contains("hush"), "no URL in the reason: {reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_notice_arrives_with_exactly_its_headers_and_body() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let config = NotifyConfig {
        user_agent: "ivpay-notify/test".into(),
        ..relaxed()
    };

    sender(config)
        .send(&notice(&format!("{}/hooks/ivpay?shop=7", server.uri())))
        .await;

    let requests = server.received_requests().await.unwrap_or_default();
    let [request] = requests.as_slice() else {
        panic!("expected one request, got {}", requests.len());
    };
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/hooks/ivpay");
    assert_eq!(request.url.query(), Some("shop=7"));
    assert_eq!(request.body, BODY.as_bytes());
    let header = |name: &str| -> Vec<&str> {
        request
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ASCII header"))
            .collect()
    };
    assert_eq!(header("webhook-id"), ["msg_2Lp3Vx"]);
    assert_eq!(header("webhook-timestamp"), ["1714000000"]);
    assert_eq!(header("webhook-signature"), [SIGNATURE]);
    assert_eq!(header("content-type"), ["application/json"]);
    assert_eq!(header("user-agent"), ["ivpay-notify/test"]);
    Ok(())
}

// ---- the guard, with production settings ----

#[tokio::test]
async fn a_loopback_ip_is_refused_and_nothing_connects() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();

    let report = sender(strict())
        .send(&notice(&format!("http://127.0.0.1:{port}/hooks")))
        .await;

    assert_eq!(refusal(&report), "127.0.0.1 is a loopback address");
    assert_nothing_connected(&listener).await;
    Ok(())
}

#[tokio::test]
async fn localhost_is_refused_without_being_looked_up() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let dns = FakeDns::default().with("localhost", &["127.0.0.1"]);
    let sender = NotifySender::with_lookup(strict(), dns.clone())?;

    for host in ["localhost", "hooks.localhost", "LocalHost."] {
        let report = sender
            .send(&notice(&format!("http://{host}:{port}/")))
            .await;
        assert!(refusal(&report).contains("loopback"), "{report:?}");
    }

    assert!(dns.asked().is_empty(), "looked up {:?}", dns.asked());
    assert_nothing_connected(&listener).await;
    Ok(())
}

#[tokio::test]
async fn ipv6_loopback_and_ipv4_mapped_literals_are_refused() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let sender = sender(strict());

    let report = sender.send(&notice("http://[::1]/")).await;
    assert_eq!(refusal(&report), "::1 is a loopback address");

    let report = sender
        .send(&notice(&format!("http://[::ffff:127.0.0.1]:{port}/")))
        .await;
    assert!(
        refusal(&report).ends_with("is a loopback address"),
        "{report:?}"
    );

    // Spellings of 127.0.0.1 that the URL parser turns into it.
    for host in ["2130706433", "0x7f.0.0.1", "127.1"] {
        let report = sender
            .send(&notice(&format!("http://{host}:{port}/")))
            .await;
        assert_eq!(
            refusal(&report),
            "127.0.0.1 is a loopback address",
            "{host}"
        );
    }

    let report = sender
        .send(&notice("http://169.254.169.254/latest/meta-data/"))
        .await;
    assert_eq!(
        refusal(&report),
        "169.254.169.254 is a cloud metadata address"
    );

    assert_nothing_connected(&listener).await;
    Ok(())
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let dns = FakeDns::default().with("rebind.example", &["127.0.0.1"]);
    let sender = NotifySender::with_lookup(strict(), dns.clone())?;

    let report = sender
        .send(&notice(&format!("http://rebind.example:{port}/hooks")))
        .await;

    assert_eq!(
        refusal(&report),
        "127.0.0.1 is a loopback address (rebind.example resolves to no allowed address)"
    );
    assert_eq!(dns.asked(), ["rebind.example"], "the resolver was asked");
    assert_nothing_connected(&listener).await;
    Ok(())
}

#[tokio::test]
async fn a_name_that_resolves_only_to_private_addresses_is_refused() -> TestResult {
    let dns = FakeDns::default().with("intranet.example", &["10.0.0.1", "192.168.1.1", "fd12::1"]);
    let sender = NotifySender::with_lookup(strict(), dns)?;

    let report = sender.send(&notice("https://intranet.example/hooks")).await;

    assert!(
        refusal(&report).starts_with("10.0.0.1 is a private address"),
        "{report:?}"
    );
    Ok(())
}

#[tokio::test]
async fn metadata_addresses_are_refused_even_when_private_targets_are_allowed() -> TestResult {
    let dns = FakeDns::default()
        .with("metadata.example", &["169.254.169.254"])
        .with("metadata6.example", &["fd00:ec2::254"]);
    let sender = NotifySender::with_lookup(relaxed(), dns)?;

    for url in [
        "http://metadata.example/latest/meta-data/",
        "http://metadata6.example/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ] {
        let report = sender.send(&notice(url)).await;
        assert!(
            refusal(&report).contains("is a cloud metadata address"),
            "{url}: {report:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn with_private_targets_allowed_a_resolved_name_reaches_the_local_server() -> TestResult {
    // The fake answer carries no port: reaching wiremock shows that the addresses the
    // guard passed are the ones dialled, with the URL's port.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let port = server.address().port();
    let dns = FakeDns::default().with("hooks.example", &["127.0.0.1"]);
    let sender = NotifySender::with_lookup(relaxed(), dns.clone())?;

    let report = sender
        .send(&notice(&format!("http://hooks.example:{port}/")))
        .await;

    assert!(report.is_delivered(), "{report:?}");
    assert_eq!(dns.asked(), ["hooks.example"]);
    Ok(())
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_failure_not_a_refusal() -> TestResult {
    let sender = NotifySender::with_lookup(strict(), FakeDns::default())?;

    let report = sender.send(&notice("https://nowhere.example/")).await;

    match &report.outcome {
        SendOutcome::Failed { timed_out, reason } => {
            assert!(!timed_out);
            assert!(reason.contains("lookup"), "{reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    Ok(())
}
