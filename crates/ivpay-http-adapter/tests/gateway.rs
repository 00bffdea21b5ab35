//! The client against a local stand-in for IVPAY (wiremock, and a raw TCP server for
//! broken connections), with IVPAY's documented bodies byte for byte.

use std::time::Duration;

use ivpay_domain::{ForeignId, Money, PaymentId, PaymentStatus, ReportedStatus, Timestamp};
use ivpay_http_adapter::{IvpayClient, IvpayError, RetryPolicy, Unavailability};
use ivpay_ports::{CreateRequest, Delivery, GatewayError, PaymentGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: &str = "test-key-5f2a";
const PAYMENT: &str = "6b577835afbefe60335b6e5cd04410a9";
const CREATE_RESPONSE: &str = include_str!("fixtures/create_response.json");
const GET_RESPONSE: &str = include_str!("fixtures/get_response.json");
const ERROR_400: &str = include_str!("fixtures/error_400.json");
const ERROR_401: &str = include_str!("fixtures/error_401.json");

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(5),
    }
}

fn client_for(base: &str, retry: RetryPolicy) -> IvpayClient {
    IvpayClient::builder(KEY)
        .base_url(base)
        .allow_http(true)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_millis(500))
        .retry_policy(retry)
        .build()
        .expect("valid test configuration")
}

fn client(server: &MockServer) -> IvpayClient {
    client_for(&format!("{}/api/v4", server.uri()), fast_retries(3))
}

fn payment_id() -> PaymentId {
    PAYMENT.parse().expect("documented id is valid")
}

fn create_request(foreign_id: &str) -> CreateRequest {
    CreateRequest {
        money: Money::parse("10.5", "usd").expect("valid money"),
        foreign_id: foreign_id.parse::<ForeignId>().expect("valid foreign id"),
        url_success: None,
        url_failed: None,
    }
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

async fn mount_get(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v4/payment/{PAYMENT}")))
        .and(header("x-api-key", KEY))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

async fn mount_create(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v4/payment/create"))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

fn unavailable(error: &GatewayError) -> (Delivery, Option<Duration>) {
    match error {
        GatewayError::Unavailable {
            delivery,
            retry_after,
            ..
        } => (*delivery, *retry_after),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn create_sends_exact_json_and_headers_and_reads_the_documented_answer() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/payment/create"))
        .and(header("x-api-key", KEY))
        .and(header("content-type", "application/json"))
        .and(body_string(
            r#"{"amount_fiat":"10.50","currency_fiat":"USD","foreign_id":"123456"}"#,
        ))
        .respond_with(json(200, CREATE_RESPONSE))
        .expect(1)
        .mount(&server)
        .await;

    let created = client(&server).create(&create_request("123456")).await?;

    assert_eq!(created.payment_id, payment_id());
    assert_eq!(
        created.payment_url.as_str(),
        "https://pay.ivpay.io/payment/6b577835afbefe60335b6e5cd04410a9"
    );
    assert_eq!(
        created.created_at,
        Timestamp::from_unix_seconds(1_726_248_776)
    );
    Ok(())
}

#[tokio::test]
async fn create_sends_redirect_urls_when_given() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string(concat!(
            r#"{"amount_fiat":"10.50","currency_fiat":"USD","foreign_id":"o-1","#,
            r#""url_success":"https://shop.example/ok","url_failed":"https://shop.example/fail"}"#
        )))
        .respond_with(json(201, CREATE_RESPONSE))
        .expect(1)
        .mount(&server)
        .await;
    let mut request = create_request("o-1");
    request.url_success = Some("https://shop.example/ok".parse()?);
    request.url_failed = Some("https://shop.example/fail".parse()?);

    let created = client(&server).create(&request).await?;
    assert_eq!(created.payment_id, payment_id());
    Ok(())
}

#[tokio::test]
async fn sdk_create_keeps_the_raw_body_with_its_trailing_comma() -> TestResult {
    let server = MockServer::start().await;
    mount_create(&server, json(200, CREATE_RESPONSE), 1).await;
    let request = ivpay_http_adapter::wire::CreatePaymentRequest {
        amount_fiat: "10.00".into(),
        currency_fiat: "USD".into(),
        foreign_id: None,
        url_success: None,
        url_failed: None,
    };
    let reply = client(&server).create_payment(&request).await?;
    assert_eq!(reply.raw, CREATE_RESPONSE);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.data.foreign_id.as_deref(), Some("123456"));
    Ok(())
}

#[tokio::test]
async fn get_reads_the_documented_answer_and_keeps_it_raw() -> TestResult {
    let server = MockServer::start().await;
    mount_get(&server, json(200, GET_RESPONSE), 1).await;

    let remote = client(&server).get(&payment_id()).await?;

    assert_eq!(remote.payment_id, payment_id());
    assert_eq!(remote.status, ReportedStatus::Known(PaymentStatus::Paid));
    assert_eq!(
        remote.processed_at,
        Some(Timestamp::from_unix_seconds(1_726_248_785))
    );
    assert_eq!(
        remote.foreign_id.map(String::from).as_deref(),
        Some("123456")
    );
    assert_eq!(remote.raw, GET_RESPONSE);
    Ok(())
}

#[tokio::test]
async fn get_records_an_unknown_status() -> TestResult {
    let server = MockServer::start().await;
    let body = GET_RESPONSE.replace("\"PAID\"", "\"CANCELED\"");
    mount_get(&server, json(200, &body), 1).await;
    let remote = client(&server).get(&payment_id()).await?;
    assert_eq!(remote.status, ReportedStatus::Unknown("CANCELED".into()));
    Ok(())
}

#[tokio::test]
async fn unauthorized_is_reported_and_not_retried() -> TestResult {
    let server = MockServer::start().await;
    mount_get(&server, json(401, ERROR_401), 1).await;
    mount_create(&server, json(401, ERROR_401), 1).await;
    let gw = client(&server);

    assert_eq!(gw.get(&payment_id()).await, Err(GatewayError::Unauthorized));
    let err = gw.create(&create_request("o-1")).await.expect_err("401");
    assert_eq!(err, GatewayError::Unauthorized);
    assert!(!err.is_retryable());
    Ok(())
}

/// Fields IVPAY's documentation does not name are contract drift: kept, and counted by the
/// call they came on (documented answers count nothing).
#[test]
fn undocumented_fields_are_counted_as_contract_drift() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                let server = MockServer::start().await;
                mount_create(&server, json(200, CREATE_RESPONSE), 1).await;
                client(&server)
                    .create(&create_request("123456"))
                    .await
                    .expect("created");
                let drifted = GET_RESPONSE
                    .replacen("{", r#"{"request_id": "r-1", "#, 1)
                    .replace(
                        r#""status": "PAID""#,
                        r#""status": "PAID", "network": "TRON", "fee": "0.10""#,
                    );
                mount_get(&server, json(200, &drifted), 1).await;
                let remote = client(&server).get(&payment_id()).await.expect("read");
                assert_eq!(remote.status, ReportedStatus::Known(PaymentStatus::Paid));
            });
    });
    let page = handle.render();
    let series = |source: &str| {
        page.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "ivpay_contract_drift_fields_total{{source=\"{source}\"}} "
                ))
            })
            .map(str::to_owned)
    };
    assert_eq!(series("get").as_deref(), Some("3"), "{page}");
    assert_eq!(
        series("create"),
        None,
        "the documented create answer: {page}"
    );
}

#[tokio::test]
async fn bad_request_is_rejected_with_ivpays_message() -> TestResult {
    let server = MockServer::start().await;
    mount_create(&server, json(400, ERROR_400), 1).await;
    let err = client(&server)
        .create(&create_request("o-1"))
        .await
        .expect_err("400");
    assert_eq!(
        err,
        GatewayError::Rejected {
            status: 400,
            message: "Error message".into()
        }
    );
    assert!(!err.may_have_reached_upstream());
    Ok(())
}

#[tokio::test]
async fn other_client_errors_are_rejections_even_without_an_envelope() -> TestResult {
    let server = MockServer::start().await;
    mount_create(
        &server,
        ResponseTemplate::new(422).set_body_string("nope"),
        1,
    )
    .await;
    let err = client(&server)
        .create(&create_request("o-1"))
        .await
        .expect_err("422");
    match err {
        GatewayError::Rejected { status, message } => {
            assert_eq!(status, 422);
            assert!(message.contains("nope"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn unknown_payments_are_not_found() -> TestResult {
    let server = MockServer::start().await;
    mount_get(
        &server,
        json(404, r#"{"success": false, "error": "Not Found"}"#),
        1,
    )
    .await;
    assert_eq!(
        client(&server).get(&payment_id()).await,
        Err(GatewayError::NotFound(payment_id()))
    );

    let server = MockServer::start().await;
    mount_get(
        &server,
        json(400, r#"{"success": false, "error": "Payment not found"}"#),
        1,
    )
    .await;
    assert_eq!(
        client(&server).get(&payment_id()).await,
        Err(GatewayError::NotFound(payment_id()))
    );
    Ok(())
}

#[tokio::test]
async fn a_plain_bad_request_on_get_is_not_mistaken_for_not_found() -> TestResult {
    let server = MockServer::start().await;
    mount_get(&server, json(400, ERROR_400), 1).await;
    assert_eq!(
        client(&server).get(&payment_id()).await,
        Err(GatewayError::Rejected {
            status: 400,
            message: "Error message".into()
        })
    );
    Ok(())
}

#[tokio::test]
async fn server_errors_retry_reads_but_never_creates() -> TestResult {
    let server = MockServer::start().await;
    mount_get(&server, ResponseTemplate::new(503), 3).await;
    mount_create(&server, ResponseTemplate::new(500), 1).await;
    let gw = client(&server);

    let read = gw.get(&payment_id()).await.expect_err("503");
    assert_eq!(unavailable(&read).0, Delivery::MaybeSent);
    let create = gw.create(&create_request("o-1")).await.expect_err("500");
    assert_eq!(unavailable(&create).0, Delivery::MaybeSent);
    assert!(create.may_have_reached_upstream());
    Ok(())
}

#[tokio::test]
async fn a_read_recovers_after_a_transient_failure() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_get(&server, json(200, GET_RESPONSE), 1).await;
    let remote = client(&server).get(&payment_id()).await?;
    assert_eq!(remote.status, ReportedStatus::Known(PaymentStatus::Paid));
    Ok(())
}

#[tokio::test]
async fn rate_limits_report_retry_after_and_it_is_honoured() -> TestResult {
    let server = MockServer::start().await;
    mount_get(
        &server,
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
        1,
    )
    .await;
    let gw = client_for(&format!("{}/api/v4", server.uri()), RetryPolicy::NONE);
    let err = gw.get(&payment_id()).await.expect_err("429");
    assert_eq!(unavailable(&err).1, Some(Duration::from_secs(7)));
    drop(server);

    // With a budget, the wait before the second attempt is at least Retry-After.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_get(&server, json(200, GET_RESPONSE), 1).await;
    let started = std::time::Instant::now();
    client(&server).get(&payment_id()).await?;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // A Retry-After beyond the total budget ends the retries at once.
    let server = MockServer::start().await;
    mount_get(
        &server,
        ResponseTemplate::new(429).insert_header("retry-after", "3600"),
        1,
    )
    .await;
    let err = client(&server).get(&payment_id()).await.expect_err("429");
    assert_eq!(unavailable(&err).1, Some(Duration::from_secs(3600)));
    Ok(())
}

#[tokio::test]
async fn slow_answers_time_out_and_a_timed_out_create_is_never_repeated() -> TestResult {
    let server = MockServer::start().await;
    let slow = json(200, CREATE_RESPONSE).set_delay(Duration::from_secs(2));
    mount_create(&server, slow, 1).await;
    mount_get(
        &server,
        json(200, GET_RESPONSE).set_delay(Duration::from_secs(2)),
        2,
    )
    .await;
    let gw = client_for(&format!("{}/api/v4", server.uri()), fast_retries(2));

    let err = gw.create(&create_request("o-1")).await.expect_err("slow");
    assert_eq!(unavailable(&err).0, Delivery::MaybeSent);
    assert!(err.may_have_reached_upstream());
    let err = gw.get(&payment_id()).await.expect_err("slow");
    assert_eq!(unavailable(&err).0, Delivery::MaybeSent);
    Ok(())
}

#[tokio::test]
async fn unreadable_success_bodies_are_protocol_errors() -> TestResult {
    let truncated = &CREATE_RESPONSE[..CREATE_RESPONSE.len() / 2];
    let cases: [(&str, &str); 6] = [
        ("", "empty body"),
        ("<html>Bad Gateway</html>", "<html>Bad Gateway"),
        (truncated, "payment_id"),
        (r#"{"success": true}"#, "data"),
        (
            r#"{"success": true, "data": {"payment_id": "x"}}"#,
            "payment_url",
        ),
        (r#"[1, 2, 3]"#, "envelope"),
    ];
    for (body, expected) in cases {
        let server = MockServer::start().await;
        mount_create(&server, json(200, body), 1).await;
        let err = client(&server)
            .create(&create_request("o-1"))
            .await
            .expect_err("unreadable");
        match &err {
            GatewayError::Protocol { detail } => {
                assert!(detail.contains(expected), "{body:?}: {detail}");
            }
            other => panic!("{body:?}: expected Protocol, got {other:?}"),
        }
        assert!(err.may_have_reached_upstream());
    }
    Ok(())
}

#[tokio::test]
async fn invalid_ids_and_urls_in_answers_are_protocol_errors() -> TestResult {
    let server = MockServer::start().await;
    let body = CREATE_RESPONSE.replace("https://pay.ivpay.io", "javascript:alert(1)//");
    mount_create(&server, json(200, &body), 1).await;
    let err = client(&server).create(&create_request("o-1")).await;
    assert!(
        matches!(&err, Err(GatewayError::Protocol { detail }) if detail.contains("payment_url")),
        "{err:?}"
    );

    let server = MockServer::start().await;
    let other = GET_RESPONSE.replace(PAYMENT, "someone-else");
    mount_get(&server, json(200, &other), 1).await;
    let err = client(&server).get(&payment_id()).await;
    assert!(
        matches!(&err, Err(GatewayError::Protocol { detail }) if detail.contains("someone-else")),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn success_false_in_a_2xx_is_a_rejection() -> TestResult {
    let server = MockServer::start().await;
    mount_create(&server, json(200, ERROR_400), 1).await;
    let err = client(&server).create(&create_request("o-1")).await;
    assert_eq!(
        err,
        Err(GatewayError::Rejected {
            status: 200,
            message: "Error message".into()
        })
    );
    Ok(())
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused() -> TestResult {
    let server = MockServer::start().await;
    let huge = format!(
        r#"{{"success": true, "data": {{"pad": "{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    mount_get(&server, json(200, &huge), 1).await;
    let err = client(&server).get(&payment_id()).await;
    assert!(
        matches!(&err, Err(GatewayError::Protocol { detail }) if detail.contains("larger than")),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn redirects_are_not_followed() -> TestResult {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(json(200, GET_RESPONSE))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    let redirect = ResponseTemplate::new(302).insert_header(
        "location",
        format!("{}/api/v4/payment/{PAYMENT}", elsewhere.uri()),
    );
    mount_get(&server, redirect, 1).await;

    let err = client(&server).get(&payment_id()).await;
    assert!(
        matches!(&err, Err(GatewayError::Protocol { detail }) if detail.contains("redirect")),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_is_provably_unsent() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let gw = client_for(&format!("http://127.0.0.1:{port}/api/v4"), fast_retries(3));

    let err = gw
        .create(&create_request("o-1"))
        .await
        .expect_err("refused");
    assert_eq!(unavailable(&err).0, Delivery::NotSent);
    assert!(!err.may_have_reached_upstream());
    assert!(err.is_retryable());

    let sdk_err = gw.get_payment(&payment_id()).await.expect_err("refused");
    assert!(matches!(
        sdk_err,
        IvpayError::Unavailable {
            cause: Unavailability::Connect { .. },
            ..
        }
    ));
    Ok(())
}

/// A server that answers every connection with `response` and then closes it, counting
/// connections.
async fn raw_server(
    response: &'static [u8],
) -> std::io::Result<(String, tokio::task::JoinHandle<usize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v4", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let mut served = 0;
        while let Ok(Ok((mut socket, _))) =
            tokio::time::timeout(Duration::from_millis(1500), listener.accept()).await
        {
            served += 1;
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(response).await;
            let _ = socket.shutdown().await;
        }
        served
    });
    Ok((base, task))
}

#[tokio::test]
async fn a_body_cut_off_mid_way_is_unavailability_and_reads_retry_it() -> TestResult {
    let response: &'static [u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 300\r\n\r\n{\"success\": true, \"da";
    let (base, server) = raw_server(response).await?;
    let gw = client_for(&base, fast_retries(2));

    let err = gw.get_payment(&payment_id()).await.expect_err("cut off");
    assert!(
        matches!(
            &err,
            IvpayError::Unavailable {
                cause: Unavailability::Interrupted { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        GatewayError::from(err).may_have_reached_upstream(),
        "a broken answer leaves the outcome open"
    );
    let err = gw
        .create(&create_request("o-1"))
        .await
        .expect_err("cut off");
    assert_eq!(unavailable(&err).0, Delivery::MaybeSent);
    assert_eq!(server.await?, 3, "two reads, one create");
    Ok(())
}

#[tokio::test]
async fn the_api_key_never_appears_in_debug_or_errors() -> TestResult {
    let server = MockServer::start().await;
    mount_get(
        &server,
        ResponseTemplate::new(400).set_body_string(format!("bad key {KEY} given")),
        1,
    )
    .await;
    let gw = client(&server);
    assert!(!format!("{gw:?}").contains(KEY));
    let err = gw.get(&payment_id()).await.expect_err("400");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("[REDACTED]"), "{shown}");
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_create_is_refused_unprocessed_and_not_repeated() -> TestResult {
    let server = MockServer::start().await;
    mount_create(
        &server,
        ResponseTemplate::new(429).insert_header("retry-after", "9"),
        1,
    )
    .await;
    let err = client(&server)
        .create(&create_request("o-1"))
        .await
        .expect_err("429");
    assert_eq!(
        unavailable(&err),
        (Delivery::Refused, Some(Duration::from_secs(9)))
    );
    assert!(!err.may_have_reached_upstream(), "IVPAY did not process it");
    Ok(())
}

/// A caller's own `reqwest::Client` (its default headers stand for a proxy's or a
/// middleware's additions) carries the requests, with the key, content type, user agent
/// and timeout still set on each.
#[tokio::test]
async fn requests_go_through_the_callers_own_http_client() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v4/payment/{PAYMENT}")))
        .and(header("X-API-KEY", KEY))
        .and(header("x-shop-trace", "abc"))
        .and(header("content-type", "application/json"))
        .respond_with(json(200, GET_RESPONSE))
        .expect(1)
        .mount(&server)
        .await;
    let mut shop_headers = reqwest::header::HeaderMap::new();
    shop_headers.insert(
        "x-shop-trace",
        reqwest::header::HeaderValue::from_static("abc"),
    );
    let shared = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(shop_headers)
        .build()?;
    let client = IvpayClient::builder(KEY)
        .base_url(format!("{}/api/v4", server.uri()))
        .allow_http(true)
        .http_client(shared)
        .retry_policy(RetryPolicy::NONE)
        .build()?;
    let got = client.get(&payment_id()).await?;
    assert_eq!(got.status, ReportedStatus::from("PAID"));
    Ok(())
}
