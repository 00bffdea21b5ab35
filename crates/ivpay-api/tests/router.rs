//! The router over the real use cases, an in-memory repository and a mocked IVPAY, driven
//! with `oneshot`: no socket, no database.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ivpay_api::{ApiConfig, ClientKeys, KeyDigest, Scopes, WebhookKeys, router};
use ivpay_domain::{AccountId, ReportedStatus, Timestamp, UpstreamPayment};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{Delivery, GatewayError, MockPaymentGateway, PaymentUseCases, RemotePayment};
use ivpay_service::{ManualClock, PaymentService, ServiceConfig};
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

const KEY: &str = "client-key-1";
const IVPAY_KEY: &str = "ivpay-merchant-key";

fn upstream(id: &str) -> UpstreamPayment {
    UpstreamPayment {
        payment_id: id.parse().expect("id"),
        payment_url: format!("https://pay.example/{id}").parse().expect("url"),
        created_at: Timestamp::from_unix_seconds(1_726_248_776),
    }
}

fn app(gateway: MockPaymentGateway) -> Router {
    app_and_use_cases(gateway).0
}

/// The router and the use cases behind it, for tests that also play the inbox worker.
fn app_and_use_cases(gateway: MockPaymentGateway) -> (Router, Arc<dyn PaymentUseCases>) {
    app_with(gateway, None)
}

/// As [`app_and_use_cases`], with the operators' key `admin` when given.
fn app_with(
    gateway: MockPaymentGateway,
    admin: Option<&str>,
) -> (Router, Arc<dyn PaymentUseCases>) {
    let service = PaymentService::new(
        InMemoryRepository::new(),
        gateway,
        ManualClock::new(Timestamp::from_unix_seconds(1_726_248_770)),
        ServiceConfig::default(),
    );
    let use_cases: Arc<dyn PaymentUseCases> = Arc::new(service);
    let mut clients = ClientKeys::new().with("shop".parse().expect("id"), &SecretString::from(KEY));
    if let Some(admin) = admin {
        clients = clients.with_digest(
            "ops".parse().expect("id"),
            KeyDigest::of(admin.as_bytes()),
            Scopes::ADMIN,
        );
    }
    let mut config = ApiConfig::new(clients);
    config.webhook_keys = webhook_keys();
    config.body_limit = 1024;
    (router(use_cases.clone(), config), use_cases)
}

fn webhook_keys() -> WebhookKeys {
    WebhookKeys::new().with(AccountId::default(), &SecretString::from(IVPAY_KEY))
}

fn creating(id: &'static str) -> MockPaymentGateway {
    let mut g = MockPaymentGateway::new();
    g.expect_create()
        .times(1)
        .returning(move |_| Ok(upstream(id)));
    g
}

fn post(path: &str) -> axum::http::request::Builder {
    Request::post(path)
        .header("content-type", "application/json")
        .header("x-api-key", KEY)
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON body")
}

const BODY: &str = r#"{"amount_fiat":"10.5","currency_fiat":"usd","foreign_id":"123456"}"#;

#[tokio::test]
async fn a_request_id_is_echoed_or_made_once_per_request() {
    let app = app(MockPaymentGateway::new());
    let given = Request::get("/healthz")
        .header("x-request-id", "from-the-client-7")
        .body(Body::empty())
        .expect("req");
    let (_, headers, _) = send(&app, given).await;
    assert_eq!(
        headers.get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"from-the-client-7"[..])
    );
    let mut made = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let (_, headers, _) = send(
            &app,
            Request::get("/healthz").body(Body::empty()).expect("req"),
        )
        .await;
        let id = headers
            .get("x-request-id")
            .expect("made")
            .to_str()
            .expect("text");
        assert_eq!(id.len(), 16, "{id}");
        made.insert(id.to_owned());
    }
    assert_eq!(made.len(), 3, "each request its own id");
}

#[tokio::test]
async fn create_answers_in_ivpays_envelope_with_our_fields_added() {
    let app = app(creating("6b577835afbefe60335b6e5cd04410a9"));
    let (status, headers, body) = send(
        &app,
        post("/payment/create").body(Body::from(BODY)).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("x-request-id").is_some());
    let v = json(&body);
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["payment_id"], "6b577835afbefe60335b6e5cd04410a9");
    assert_eq!(
        v["data"]["payment_url"],
        "https://pay.example/6b577835afbefe60335b6e5cd04410a9"
    );
    assert_eq!(v["data"]["created_at"], 1_726_248_776);
    assert_eq!(v["data"]["foreign_id"], "123456");
    assert_eq!(v["data"]["amount_fiat"], "10.50");
    assert_eq!(v["data"]["currency_fiat"], "USD");
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_ivpays_401() {
    let app = app(MockPaymentGateway::new());
    for key in [None, Some("nope")] {
        let mut req = Request::post("/payment/create").header("content-type", "application/json");
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let (status, _, body) = send(&app, req.body(Body::from(BODY)).expect("req")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let v = json(&body);
        assert_eq!(v["success"], false);
        assert_eq!(v["error"], "Wrong auth parameters");
    }
}

#[tokio::test]
async fn bad_input_gets_a_400_naming_the_field() {
    let app = app(MockPaymentGateway::new());
    let cases = [
        (
            r#"{"amount_fiat":"10.505","currency_fiat":"USD"}"#,
            "amount_fiat: 3 decimals, USD allows 2",
        ),
        (
            r#"{"amount_fiat":10.5,"currency_fiat":"USD"}"#,
            "amount_fiat: must be a string",
        ),
        (r#"{"currency_fiat":"USD"}"#, "amount_fiat: required"),
        (
            r#"{"amount_fiat":"1","currency_fiat":"XAU"}"#,
            "currency_fiat: XAU is not a fiat currency",
        ),
        (
            r#"{"amount_fiat":"1","currency_fiat":"USD","url_success":"ftp://x"}"#,
            "url_success: scheme \"ftp\" is not allowed, use http or https",
        ),
    ];
    for (body, message) in cases {
        let (status, _, out) = send(
            &app,
            post("/payment/create").body(Body::from(body)).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let v = json(&out);
        assert_eq!(v["error"], message, "{body}");
        assert_eq!(v["code"], "invalid_request", "{body}");
        assert_eq!(
            Some(v["field"].as_str().expect("field named")),
            message.split(':').next(),
            "{body}"
        );
    }
    for body in [r#"[1]"#, r#"{"amount_fiat":"1",,}"#, "{"] {
        let (status, _, out) = send(
            &app,
            post("/payment/create").body(Body::from(body)).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json(&out)["code"], "malformed_body", "{body}");
    }
    let (status, _, out) = send(
        &app,
        post("/payment/create")
            .header("idempotency-key", "has space")
            .body(Body::from(BODY))
            .expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json(&out)["error"]
            .as_str()
            .expect("text")
            .starts_with("Idempotency-Key: ")
    );
}

#[tokio::test]
async fn wrong_media_type_and_oversized_bodies_are_refused_in_the_envelope() {
    let app = app(MockPaymentGateway::new());
    let req = Request::post("/payment/create")
        .header("x-api-key", KEY)
        .header("content-type", "text/plain")
        .body(Body::from(BODY))
        .expect("req");
    let (status, _, out) = send(&app, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json(&out)["success"], false);

    let big = format!(
        r#"{{"amount_fiat":"1","currency_fiat":"USD","foreign_id":"{}"}}"#,
        "x".repeat(2000)
    );
    let (status, _, out) = send(
        &app,
        post("/payment/create")
            .body(Body::from(big.clone()))
            .expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&out)["code"], "body_too_large");
}

#[tokio::test]
async fn a_repeated_key_replays_the_same_bytes_and_a_changed_body_gets_422() {
    let app = app(creating("p1"));
    let req = || {
        post("/payment/create")
            .header("idempotency-key", "order-123456")
            .body(Body::from(BODY))
            .expect("req")
    };
    let (s1, h1, b1) = send(&app, req()).await;
    let (s2, h2, b2) = send(&app, req()).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(b1, b2, "byte-identical replay");
    assert!(h1.get("idempotent-replayed").is_none());
    assert_eq!(
        h2.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );

    let other = r#"{"amount_fiat":"11","currency_fiat":"USD"}"#;
    let (s3, _, b3) = send(
        &app,
        post("/payment/create")
            .header("idempotency-key", "order-123456")
            .body(Body::from(other))
            .expect("req"),
    )
    .await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&b3)["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn a_rate_limited_create_answers_503_with_a_capped_retry_after_and_frees_the_key() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(2).returning(|_| {
        Err(GatewayError::Unavailable {
            reason: "HTTP 429".into(),
            delivery: Delivery::Refused,
            retry_after: Some(std::time::Duration::from_secs(3_600)),
        })
    });
    let app = app(g);
    for attempt in 1..=2 {
        let (status, headers, out) = send(
            &app,
            post("/payment/create")
                .header("idempotency-key", "limited")
                .body(Body::from(BODY))
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "attempt {attempt}");
        assert_eq!(json(&out)["code"], "upstream_unavailable");
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("60"),
            "IVPAY's hour, capped"
        );
    }
}

#[tokio::test]
async fn an_upstream_timeout_answers_504_with_our_id() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(1).returning(|_| {
        Err(GatewayError::Unavailable {
            reason: "timed out".into(),
            delivery: Delivery::MaybeSent,
            retry_after: None,
        })
    });
    let app = app(g);
    let (status, _, out) = send(
        &app,
        post("/payment/create").body(Body::from(BODY)).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let v = json(&out);
    assert_eq!(v["code"], "outcome_unknown");
    let id = v["id"].as_str().expect("internal id");
    // The intent was kept: it can be read back by that id.
    let get = Request::get(format!("/payment/{id}"))
        .header("x-api-key", KEY)
        .body(Body::empty())
        .expect("req");
    let (status, _, out) = send(&app, get).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&out)["data"]["outcome"], "unknown");
    // Readiness tells the operator there is one payment to look at.
    let (status, _, out) = send(
        &app,
        Request::get("/readyz").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&out)["data"]["unknown_payments"], 1);
    assert_eq!(json(&out)["data"]["quarantined_rows"], 0);
}

#[tokio::test]
async fn get_list_and_events_read_what_was_stored() {
    let mut g = creating("p2");
    g.expect_get().returning(|id| {
        Ok(RemotePayment {
            payment_id: id.clone(),
            foreign_id: None,
            status: ReportedStatus::from("PAID"),
            processed_at: Some(Timestamp::from_unix_seconds(1_726_248_785)),
            raw: r#"{"success":true}"#.into(),
        })
    });
    let app = app(g);
    send(
        &app,
        post("/payment/create").body(Body::from(BODY)).expect("req"),
    )
    .await;
    let get = |uri: &str| {
        Request::get(uri)
            .header("x-api-key", KEY)
            .body(Body::empty())
            .expect("req")
    };

    let (status, _, out) = send(&app, get("/payment/p2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&out)["data"]["status"], "CREATED");

    let (_, _, out) = send(&app, get("/payment/p2?refresh=true")).await;
    let v = json(&out);
    assert_eq!(v["data"]["status"], "PAID");
    assert_eq!(v["data"]["processed_at"], 1_726_248_785);

    let (_, _, out) = send(&app, get("/payments?status=PAID&limit=10")).await;
    assert_eq!(
        json(&out)["data"]["items"].as_array().map(Vec::len),
        Some(1)
    );
    let (_, _, out) = send(&app, get("/payments?status=PENDING")).await;
    assert_eq!(
        json(&out)["data"]["items"].as_array().map(Vec::len),
        Some(0)
    );
    let (status, _, out) = send(&app, get("/payments?status=paid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json(&out)["error"]
            .as_str()
            .expect("text")
            .starts_with("status: ")
    );
    let (status, _, _) = send(&app, get("/payments?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, _, out) = send(&app, get("/payment/p2/events")).await;
    let events = json(&out)["data"].as_array().cloned().expect("array");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["source"], "api");
    assert_eq!(events[0]["outcome"], "applied");

    let (status, _, out) = send(&app, get("/payment/unknown-id")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&out)["success"], false);
}

#[tokio::test]
async fn webhooks_need_ivpays_key_and_are_confirmed_by_get() {
    let mut g = creating("p3");
    g.expect_get().times(1).returning(|id| {
        Ok(RemotePayment {
            payment_id: id.clone(),
            foreign_id: None,
            status: ReportedStatus::from("PENDING"),
            processed_at: None,
            raw: "{}".into(),
        })
    });
    let (app, use_cases) = app_and_use_cases(g);
    send(
        &app,
        post("/payment/create").body(Body::from(BODY)).expect("req"),
    )
    .await;
    let hook = r#"{"payment_id":"p3","status":"PAID","processed_at":1726248785}"#;
    let with_key = |k: &str| {
        Request::post("/webhooks/ivpay")
            .header("content-type", "application/json")
            .header("x-api-key", k)
            .body(Body::from(hook))
            .expect("req")
    };
    let (status, _, _) = send(&app, with_key(KEY)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a client key is not IVPAY's key"
    );
    let (status, _, out) = send(&app, with_key(IVPAY_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&out)["data"]["outcome"],
        "queued",
        "kept, not yet confirmed"
    );
    // The inbox worker's pass: the one GET (times(1) above) happens here.
    let report = use_cases.confirm_webhooks().await.expect("pass");
    assert_eq!(report.processed, 1);
    let get = Request::get("/payment/p3")
        .header("x-api-key", KEY)
        .body(Body::empty())
        .expect("req");
    let (_, _, out) = send(&app, get).await;
    assert_eq!(
        json(&out)["data"]["status"],
        "PENDING",
        "GET's answer wins over the webhook's claim"
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = app(MockPaymentGateway::new());
    let (status, _, _) = send(
        &app,
        Request::get("/healthz").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, out) = send(
        &app,
        Request::get("/readyz").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&out)["data"]["database"], "ok");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_the_docs_page_serves() {
    let app = app(MockPaymentGateway::new());
    let (status, _, out) = send(
        &app,
        Request::get("/openapi.json")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc = json(&out);
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/payment/create",
        "/payment/{payment_id}",
        "/payment/{payment_id}/events",
        "/payments",
        "/webhooks/ivpay",
        "/admin/payments/{id}/link",
        "/admin/payments/{id}/abandon",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // The create answer is IVPAY's fields and ours, with the request's terms (`allOf`).
    let parts = doc["components"]["schemas"]["CreatedView"]["allOf"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for field in ["payment_id", "payment_url", "created_at", "foreign_id"] {
        assert!(
            parts.iter().any(|p| p["properties"].get(field).is_some()),
            "create response documents IVPAY's {field}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());

    let (status, _, page) = send(
        &app,
        Request::get("/docs/").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&page).contains("swagger"),
        "an interactive page"
    );
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let service = PaymentService::new(
        InMemoryRepository::new(),
        MockPaymentGateway::new(),
        ManualClock::new(Timestamp::from_unix_seconds(1_726_248_770)),
        ServiceConfig::default(),
    );
    let use_cases: Arc<dyn PaymentUseCases> = Arc::new(service);
    let clients = ClientKeys::new()
        .with("shop".parse().expect("id"), &SecretString::from(KEY))
        .with(
            "other".parse().expect("id"),
            &SecretString::from("other-key"),
        );
    let mut config = ApiConfig::new(clients);
    let two = std::num::NonZeroU32::new(2).expect("non-zero");
    config.rate_limit = Some(ivpay_api::RateLimit {
        per_second: std::num::NonZeroU32::new(1).expect("non-zero"),
        burst: two,
    });
    let app = router(use_cases, config);
    let get = |key: &str| {
        Request::get("/payments")
            .header("x-api-key", key)
            .body(Body::empty())
            .expect("req")
    };
    assert_eq!(send(&app, get(KEY)).await.0, StatusCode::OK);
    assert_eq!(send(&app, get(KEY)).await.0, StatusCode::OK);
    let (status, headers, out) = send(&app, get(KEY)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json(&out)["code"], "rate_limited");
    assert!(headers.get("retry-after").is_some());
    // The limit is per client: another key is unaffected.
    assert_eq!(send(&app, get("other-key")).await.0, StatusCode::OK);
}

/// IVPAY that answers creates at once and reads never (within the test's patience).
struct StuckReads;

#[async_trait::async_trait]
impl ivpay_ports::PaymentGateway for StuckReads {
    async fn create(
        &self,
        _: &ivpay_ports::CreateRequest,
    ) -> Result<UpstreamPayment, GatewayError> {
        Ok(upstream("slow1"))
    }
    async fn get(&self, _: &ivpay_domain::PaymentId) -> Result<RemotePayment, GatewayError> {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Err(GatewayError::Protocol {
            detail: "unreachable in this test".into(),
        })
    }
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_503_in_the_envelope() {
    let service = PaymentService::new(
        InMemoryRepository::new(),
        StuckReads,
        ManualClock::new(Timestamp::from_unix_seconds(1_726_248_770)),
        ServiceConfig::default(),
    );
    let use_cases: Arc<dyn PaymentUseCases> = Arc::new(service);
    let clients = ClientKeys::new().with("shop".parse().expect("id"), &SecretString::from(KEY));
    let mut config = ApiConfig::new(clients);
    config.request_timeout = Some(std::time::Duration::from_millis(100));
    let app = router(use_cases, config);
    let (status, _, _) = send(
        &app,
        post("/payment/create").body(Body::from(BODY)).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "fast requests are untouched");
    let started = std::time::Instant::now();
    let get = Request::get("/payment/slow1?refresh=true")
        .header("x-api-key", KEY)
        .body(Body::empty())
        .expect("req");
    let (status, _, out) = send(&app, get).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v = json(&out);
    assert_eq!(
        (v["success"].clone(), v["code"].clone()),
        (Value::Bool(false), Value::from("timeout"))
    );
}

// --- The contract with IVPAY and its clients, against a mocked use case (issue #10) ---

mod contract {
    use super::*;
    use ivpay_domain::{
        EventOutcome, Evidence, InternalId, NewPayment, Payment, PaymentEvent, PaymentStatus,
        UpdateSource, WebhookHint,
    };
    use ivpay_ports::{CreateReply, MockPaymentUseCases, WebhookReceipt};

    const OUR_ID: &str = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d";
    const IVPAY_ID: &str = "6b577835afbefe60335b6e5cd04410a9";

    fn mocked(use_cases: MockPaymentUseCases) -> Router {
        let clients = ClientKeys::new().with("shop".parse().expect("id"), &SecretString::from(KEY));
        let mut config = ApiConfig::new(clients);
        config.webhook_keys = webhook_keys();
        router(Arc::new(use_cases), config)
    }

    fn webhook(body: impl Into<Body>) -> Request<Body> {
        Request::post("/webhooks/ivpay")
            .header("content-type", "application/json")
            .header("x-api-key", IVPAY_KEY)
            .body(body.into())
            .expect("req")
    }

    /// A use case that expects exactly one webhook, naming `id` and claiming `status`,
    /// with `raw` as its body.
    fn expecting_webhook(id: &str, status: Option<&str>, raw: &[u8]) -> MockPaymentUseCases {
        let (id, status, raw) = (
            id.to_owned(),
            status.map(ReportedStatus::from),
            String::from_utf8(raw.to_vec()).expect("utf-8"),
        );
        let mut uc = MockPaymentUseCases::new();
        uc.expect_receive_webhook()
            .times(1)
            .withf(move |h: &WebhookHint| {
                h.payment_id.as_str() == id && h.status == status && h.raw == raw
            })
            .returning(|_| Ok(WebhookReceipt::Queued));
        uc
    }

    #[tokio::test]
    async fn a_webhook_with_a_trailing_comma_is_accepted() {
        let body = br#"{"payment_id":"6b577835afbefe60335b6e5cd04410a9","status":"PAID",}"#;
        let app = mocked(expecting_webhook(IVPAY_ID, Some("PAID"), body));
        let (status, _, out) = send(&app, webhook(&body[..])).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
        let v = json(&out);
        assert_eq!(
            (v["success"].clone(), v["data"]["outcome"].clone()),
            (Value::Bool(true), Value::from("queued"))
        );
    }

    #[tokio::test]
    async fn a_numeric_payment_id_reaches_the_use_case_as_its_digits() {
        let body = br#"{"payment_id": 12345, "foreign_id": 678, "status": "PENDING"}"#;
        let app = mocked(expecting_webhook("12345", Some("PENDING"), body));
        let (status, _, out) = send(&app, webhook(&body[..])).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
    }

    #[tokio::test]
    async fn every_documented_webhook_body_is_accepted_through_the_router() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks");
        let cases = [
            ("flat_trailing_comma.json", IVPAY_ID, Some("PAID")),
            ("event_created.json", IVPAY_ID, Some("CREATED")),
            ("event_pending.json", IVPAY_ID, Some("PENDING")),
            ("event_paid.json", IVPAY_ID, Some("PAID")),
            ("event_timeout.json", IVPAY_ID, Some("TIMEOUT")),
            ("paid_with_network_and_tx_url.json", IVPAY_ID, Some("PAID")),
            ("enveloped.json", IVPAY_ID, Some("PAID")),
            ("enveloped_trailing_comma.json", IVPAY_ID, Some("PAID")),
            ("numeric_ids.json", "12345", Some("PAID")),
            ("id_only.json", IVPAY_ID, None),
            ("sandbox.json", IVPAY_ID, Some("PENDING")),
        ];
        let listed: std::collections::BTreeSet<_> = cases.iter().map(|c| c.0.to_owned()).collect();
        let on_disk: std::collections::BTreeSet<_> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert_eq!(listed, on_disk, "every fixture is tested");
        for (file, id, claimed) in cases {
            let body = std::fs::read(dir.join(file)).expect("fixture");
            let app = mocked(expecting_webhook(id, claimed, &body));
            let (status, _, out) = send(&app, webhook(body)).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{file}: {}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[tokio::test]
    async fn a_webhook_without_a_usable_payment_id_gets_400_naming_it_and_nothing_is_kept() {
        for body in [
            r#"{"status":"PAID",}"#,
            r#"{"payment_id":"../x"}"#,
            r#"{"payment_id":1.5}"#,
        ] {
            // No expectation: the use case must not be called.
            let app = mocked(MockPaymentUseCases::new());
            let (status, _, out) = send(&app, webhook(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let v = json(&out);
            assert_eq!(
                (v["code"].clone(), v["field"].clone()),
                (Value::from("invalid_request"), Value::from("payment_id")),
                "{body}"
            );
        }
        let app = mocked(MockPaymentUseCases::new());
        let (status, _, out) = send(&app, webhook("{\"payment_id\":")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json(&out)["code"], "malformed_body");
    }

    #[tokio::test]
    async fn a_webhook_with_a_clients_key_is_refused_before_its_body_is_read() {
        let app = mocked(MockPaymentUseCases::new());
        let req = Request::post("/webhooks/ivpay")
            .header("x-api-key", KEY)
            .body(Body::from("not json"))
            .expect("req");
        let (status, _, out) = send(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json(&out)["error"], "Wrong auth parameters");
    }

    fn created(request: NewPayment) -> Payment {
        let now = Timestamp::from_unix_seconds(1_726_248_770);
        let mut p = Payment::initiate(
            OUR_ID.parse().expect("uuid"),
            "shop".parse().expect("client"),
            AccountId::default(),
            request,
            now,
        );
        p.mark_created(upstream(IVPAY_ID), now).expect("initiated");
        p
    }

    fn creating_once() -> MockPaymentUseCases {
        let mut uc = MockPaymentUseCases::new();
        uc.expect_create()
            .times(1)
            .withf(|_, _, r: &NewPayment| r.money().to_string() == "10.50 USD")
            .returning(|_, _, request| {
                Ok(CreateReply {
                    payment: created(request),
                    replayed: false,
                })
            });
        uc
    }

    /// Runs `body` on this thread with a Prometheus recorder of its own, and returns what
    /// it recorded (the counters of one test, whatever other tests do meanwhile).
    fn recorded<F: std::future::Future<Output = ()>>(body: impl FnOnce() -> F) -> String {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        metrics::with_local_recorder(&recorder, || runtime.block_on(body()));
        handle.render()
    }

    #[test]
    fn unknown_create_fields_are_accepted_ignored_and_counted_without_their_names() {
        let text = recorded(|| async {
            let app = mocked(creating_once());
            let body = r#"{"amount_fiat":"10.5","currency_fiat":"USD","callback":"https://x","note":{"a":[1,]},}"#;
            let (status, _, out) = send(
                &app,
                post("/payment/create").body(Body::from(body)).expect("req"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
            assert_eq!(json(&out)["data"]["payment_id"], IVPAY_ID);
        });
        assert!(
            text.contains(r#"ivpay_unknown_fields_total{source="create"} 2"#),
            "{text}"
        );
        assert!(!text.contains("callback"), "field names are not labels");
    }

    #[test]
    fn a_create_without_unknown_fields_counts_none() {
        let text = recorded(|| async {
            let app = mocked(creating_once());
            let body = r#"{"amount_fiat":"10.50","currency_fiat":"USD",}"#;
            let (status, _, _) = send(
                &app,
                post("/payment/create").body(Body::from(body)).expect("req"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "a trailing comma is fine");
        });
        assert!(!text.contains("ivpay_unknown_fields_total"), "{text}");
    }

    #[tokio::test]
    async fn a_bad_limit_and_a_bad_amount_get_the_same_body_shape() {
        let mut uc = MockPaymentUseCases::new();
        uc.expect_create().never();
        uc.expect_list().never();
        let app = mocked(uc);
        let (s1, _, limit) = send(
            &app,
            Request::get("/payments?limit=500")
                .header("x-api-key", KEY)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        let (s2, _, amount) = send(
            &app,
            post("/payment/create")
                .body(Body::from(r#"{"amount_fiat":10.5,"currency_fiat":"USD"}"#))
                .expect("req"),
        )
        .await;
        assert_eq!((s1, s2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST));
        let (limit, amount) = (json(&limit), json(&amount));
        assert_eq!(limit["field"], "limit");
        assert_eq!(amount["field"], "amount_fiat");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&limit), keys(&amount));
    }

    fn event(source: UpdateSource, evidence: Evidence) -> PaymentEvent {
        PaymentEvent {
            payment: Some(OUR_ID.parse::<InternalId>().expect("uuid")),
            payment_id: IVPAY_ID.parse().expect("id"),
            source,
            from: Some(PaymentStatus::Created),
            to: ReportedStatus::from("PAID"),
            outcome: EventOutcome::Applied,
            evidence: Some(evidence),
            received_at: Timestamp::from_unix_seconds(1_726_248_790),
        }
    }

    #[tokio::test]
    async fn a_contended_refresh_is_503_with_retry_after_and_says_to_retry() {
        let mut uc = MockPaymentUseCases::new();
        uc.expect_get().times(1).return_once(|_, _, _| {
            Err(ivpay_ports::QueryError::Contended {
                id: OUR_ID.parse().expect("uuid"),
                attempts: 17,
            })
        });
        let app = mocked(uc);
        let (status, headers, out) = send(
            &app,
            Request::get(format!("/payment/{IVPAY_ID}?refresh=true"))
                .header("x-api-key", KEY)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let body = json(&out);
        assert_eq!(body["code"], "contended");
        assert_eq!(body["error"], "the payment is busy, try again");
    }

    #[tokio::test]
    async fn an_answer_that_could_not_be_stored_is_503_with_our_id() {
        let mut uc = MockPaymentUseCases::new();
        uc.expect_create().times(1).return_once(|_, _, _| {
            Err(ivpay_ports::CreateError::NotRecorded {
                id: OUR_ID.parse().expect("uuid"),
                source: ivpay_ports::RepositoryError::Unavailable(Box::new(std::io::Error::other(
                    "disk full at /var/lib/secret",
                ))),
            })
        });
        let app = mocked(uc);
        let (status, _, out) = send(
            &app,
            post("/payment/create").body(Body::from(BODY)).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body = json(&out);
        assert_eq!(body["code"], "not_recorded");
        assert_eq!(body["id"], OUR_ID);
        let text = body["error"].as_str().expect("message");
        assert!(text.contains(OUR_ID), "{text}");
        assert!(
            !text.contains("disk full"),
            "storage details stay in the log: {text}"
        );
    }

    #[tokio::test]
    async fn evidence_is_rendered_as_json_objects() {
        let confirmed = Evidence::from_webhook(
            r#"{"payment_id":"6b577835afbefe60335b6e5cd04410a9","status":"PAID",}"#,
        )
        .with_confirmation(
            r#"{"success":true,"data":{"status":"PAID","processed_at":1726248785}}"#,
        );
        let unknown =
            Evidence::from_webhook(r#"{"payment_id":"6b577835afbefe60335b6e5cd04410a9"}"#)
                .with_note("not found at IVPAY");
        let poll = Evidence::from_confirmation(
            r#"{"success": true, "data": {"status": "PAID", "fee": 0.10}}"#,
        );
        let events = vec![
            event(UpdateSource::Webhook, confirmed),
            event(UpdateSource::Webhook, unknown),
            event(UpdateSource::Poll, poll),
        ];
        let mut uc = MockPaymentUseCases::new();
        uc.expect_events()
            .times(1)
            .return_once(move |_, _| Ok(events));
        let app = mocked(uc);
        let (status, _, out) = send(
            &app,
            Request::get(format!("/payment/{IVPAY_ID}/events"))
                .header("x-api-key", KEY)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(out).expect("utf-8");
        let v: Value = serde_json::from_str(&text).expect("json");
        let e = &v["data"];
        assert_eq!(e[0]["evidence"]["webhook"]["status"], "PAID");
        assert_eq!(
            e[0]["evidence"]["confirmation"]["data"]["processed_at"],
            1_726_248_785
        );
        assert_eq!(e[1]["evidence"]["webhook"]["payment_id"], IVPAY_ID);
        assert_eq!(e[1]["evidence"]["note"], "not found at IVPAY");
        assert!(e[1]["evidence"].get("confirmation").is_none());
        assert!(
            e[2]["evidence"].get("webhook").is_none(),
            "absent parts are left out"
        );
        assert_eq!(e[2]["evidence"]["confirmation"]["data"]["status"], "PAID");
        assert!(
            text.contains(r#""fee": 0.10"#),
            "numbers keep their spelling: {text}"
        );
    }

    #[tokio::test]
    async fn a_misspelt_listing_filter_is_refused_not_ignored() {
        let mut uc = MockPaymentUseCases::new();
        uc.expect_list().never();
        let app = mocked(uc);
        for query in ["statuss=PAID", "=false"] {
            let (status, _, out) = send(
                &app,
                Request::get(format!("/payments?{query}"))
                    .header("x-api-key", KEY)
                    .body(Body::empty())
                    .expect("req"),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(json(&out)["field"], "query", "{query}");
        }
    }

    #[tokio::test]
    async fn an_error_before_the_body_is_read_closes_the_connection() {
        let app = mocked(MockPaymentUseCases::new());
        let big = "x".repeat(100_000);
        let (status, headers, _) = send(
            &app,
            Request::post("/webhooks/ivpay")
                .header("x-api-key", KEY)
                .header("content-length", big.len())
                .body(Body::from(big))
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers.get("connection").map(|v| v.as_bytes()),
            Some(&b"close"[..])
        );
        let (status, headers, _) = send(
            &app,
            Request::get("/payments").body(Body::empty()).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            headers.get("connection").is_none(),
            "a request without a body keeps its connection"
        );
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_answer_in_the_envelope() {
        let app = mocked(MockPaymentUseCases::new());
        let (status, _, out) = send(
            &app,
            Request::get("/nope").body(Body::empty()).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json(&out)["code"], "not_found");
        let (status, _, out) = send(
            &app,
            Request::delete("/payments")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(json(&out)["code"], "method_not_allowed");
    }

    #[test]
    fn the_openapi_document_states_the_rules_the_handlers_enforce() {
        let doc = serde_json::to_value(ivpay_api::openapi_document()).expect("document");
        let schemas = &doc["components"]["schemas"];
        // The fields' own rules, then the rule across them (amount by currency).
        let body = &schemas["CreateBody"]["allOf"][0];
        let per_currency = &schemas["CreateBody"]["allOf"][1]["oneOf"];
        assert!(body["properties"]["amount_fiat"]["pattern"].is_string());
        let yen = per_currency
            .as_array()
            .and_then(|branches| {
                branches.iter().find(|b| {
                    b["properties"]["currency_fiat"]["enum"]
                        .as_array()
                        .is_some_and(|codes| codes.contains(&Value::from("JPY")))
                })
            })
            .expect("a branch for JPY");
        assert_eq!(
            yen["properties"]["amount_fiat"]["pattern"], "^(0*[1-9][0-9]{0,11}|0*1000000000000)$",
            "JPY has no minor units"
        );
        assert_eq!(body["properties"]["foreign_id"]["maxLength"], 255);
        assert_eq!(body["properties"]["url_success"]["maxLength"], 2048);
        let required: Vec<_> = body["required"].as_array().cloned().unwrap_or_default();
        assert!(
            required.contains(&Value::from("amount_fiat"))
                && required.contains(&Value::from("currency_fiat"))
        );
        assert!(!required.contains(&Value::from("foreign_id")));

        let param = |path: &str, name: &str| -> Value {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name).cloned())
                .unwrap_or_else(|| panic!("{path} documents {name}"))
        };
        let limit = param("/payments", "limit");
        assert_eq!(
            (
                limit["schema"]["minimum"].clone(),
                limit["schema"]["maximum"].clone()
            ),
            (Value::from(1), Value::from(200))
        );
        assert_eq!(
            param("/payments", "status")["schema"]["enum"],
            serde_json::json!(["CREATED", "PENDING", "PAID", "TIMEOUT"])
        );
        let id = param("/payment/{payment_id}", "payment_id");
        assert_eq!(id["schema"]["maxLength"], 64);
        assert!(id["schema"]["pattern"].is_string());
        assert!(
            param("/payment/{payment_id}/events", "payment_id")["schema"]["pattern"].is_string()
        );

        for (path, method) in [
            ("/payment/create", "post"),
            ("/payment/{payment_id}", "get"),
            ("/payment/{payment_id}/events", "get"),
            ("/payments", "get"),
            ("/webhooks/ivpay", "post"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            for status in ["200", "400", "401", "503"] {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} documents {status}"
                );
            }
            assert_eq!(
                responses["401"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{path}"
            );
        }
        for path in ["/payment/create", "/payment/{payment_id}", "/payments"] {
            let method = if path == "/payment/create" {
                "post"
            } else {
                "get"
            };
            assert!(
                doc["paths"][path][method]["responses"]["429"]["headers"]["Retry-After"]
                    .is_object(),
                "{path}"
            );
        }
        for status in ["413", "415", "409", "422", "502", "504"] {
            assert!(
                doc["paths"]["/payment/create"]["post"]["responses"]
                    .get(status)
                    .is_some(),
                "create documents {status}"
            );
        }
        assert!(
            doc["paths"]["/payment/{payment_id}"]["get"]["responses"]
                .get("502")
                .is_some()
        );
        assert_eq!(
            doc["paths"]["/webhooks/ivpay"]["post"]["security"],
            serde_json::json!([{"ivpay_key": []}])
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["name"],
            "X-API-KEY"
        );
        assert!(
            schemas["ErrorBody"]["properties"]["code"]["enum"]
                .as_array()
                .is_some_and(|c| c.len() == ivpay_api::ApiError::CODES.len())
        );
    }
}

const ADMIN_KEY: &str = "operator-key-1";

fn timing_out() -> GatewayError {
    GatewayError::Unavailable {
        reason: "timed out".into(),
        delivery: Delivery::MaybeSent,
        retry_after: None,
    }
}

fn admin_post(path: &str, key: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(Body::from(body.to_owned()))
        .expect("req")
}

/// Creates through the router with `Idempotency-Key: k-unknown`; IVPAY times out, so the
/// outcome is unknown. Our id.
async fn unknown_create(app: &Router) -> String {
    let req = post("/payment/create")
        .header("idempotency-key", "k-unknown")
        .body(Body::from(BODY))
        .expect("req");
    let (status, _, out) = send(app, req).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    json(&out)["id"].as_str().expect("our id").to_owned()
}

#[tokio::test]
async fn admin_routes_answer_404_without_an_admin_key() {
    let (app, _) = app_with(MockPaymentGateway::new(), None);
    let id = "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d";
    for (path, key) in [
        (format!("/admin/payments/{id}/link"), KEY),
        (format!("/admin/payments/{id}/abandon"), ADMIN_KEY),
    ] {
        let (status, _, out) = send(&app, admin_post(&path, key, r#"{"payment_id":"p1"}"#)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(json(&out)["code"], "not_found");
    }
}

#[tokio::test]
async fn an_operator_links_an_unknown_payment_once_confirmed_by_ivpay() {
    let mut g = MockPaymentGateway::new();
    g.expect_create().times(1).returning(|_| Err(timing_out()));
    g.expect_get().returning(|id| {
        if id.as_str() == "gone" {
            return Err(GatewayError::NotFound(id.clone()));
        }
        Ok(RemotePayment {
            payment_id: id.clone(),
            foreign_id: Some("123456".parse().expect("foreign id")),
            status: ReportedStatus::from("PENDING"),
            processed_at: None,
            raw: "{}".into(),
        })
    });
    let (app, _) = app_with(g, Some(ADMIN_KEY));
    let id = unknown_create(&app).await;
    let link = format!("/admin/payments/{id}/link");

    let nobody = "/admin/payments/0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d/link";
    let p1 = r#"{"payment_id":"p1"}"#;
    for (path, key, body, status, code) in [
        // A client's key lacks the admin scope; an unknown key is no one's.
        (link.as_str(), KEY, p1, StatusCode::FORBIDDEN, "forbidden"),
        (
            link.as_str(),
            "not-a-key",
            p1,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        // Not our id; no such payment; IVPAY does not know the id; no payment_id.
        (
            "/admin/payments/p1/link",
            ADMIN_KEY,
            p1,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (nobody, ADMIN_KEY, p1, StatusCode::NOT_FOUND, "not_found"),
        (
            link.as_str(),
            ADMIN_KEY,
            r#"{"payment_id":"gone"}"#,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            link.as_str(),
            ADMIN_KEY,
            "{}",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let (got, _, out) = send(&app, admin_post(path, key, body)).await;
        assert_eq!(
            (got, json(&out)["code"].clone()),
            (status, code.into()),
            "{path} {body}"
        );
    }

    let (status, _, out) = send(&app, admin_post(&link, ADMIN_KEY, r#"{"payment_id":"p1"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
    let v = json(&out);
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["outcome"], "created");
    assert_eq!(v["data"]["payment_id"], "p1");
    assert_eq!(v["data"]["payment_url"], "https://pay.ivpay.io/payment/p1");

    // Settled now: neither a second link nor an abandon.
    let (status, _, out) = send(&app, admin_post(&link, ADMIN_KEY, r#"{"payment_id":"p2"}"#)).await;
    assert_eq!(
        (status, json(&out)["code"].clone()),
        (StatusCode::CONFLICT, "outcome_settled".into())
    );
    let abandon = format!("/admin/payments/{id}/abandon");
    let (status, _, out) = send(&app, admin_post(&abandon, ADMIN_KEY, "")).await;
    assert_eq!(
        (status, json(&out)["code"].clone()),
        (StatusCode::CONFLICT, "outcome_settled".into())
    );
}

#[tokio::test]
async fn an_operator_abandons_an_unknown_payment_and_its_key_is_free_again() {
    let mut g = MockPaymentGateway::new();
    let mut first = true;
    g.expect_create().times(2).returning(move |_| {
        if std::mem::take(&mut first) {
            Err(timing_out())
        } else {
            Ok(upstream("p2"))
        }
    });
    let (app, _) = app_with(g, Some(ADMIN_KEY));
    let id = unknown_create(&app).await;
    let abandon = format!("/admin/payments/{id}/abandon");
    let (status, _, _) = send(&app, admin_post(&abandon, "wrong", "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, out) = send(&app, admin_post(&abandon, ADMIN_KEY, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&out)["data"]["outcome"], "abandoned");

    // The same key and request now create a fresh payment.
    let req = post("/payment/create")
        .header("idempotency-key", "k-unknown")
        .body(Body::from(BODY))
        .expect("req");
    let (status, _, out) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&out)["data"]["payment_id"], "p2");
    assert_ne!(json(&out)["data"]["id"], id.as_str());
}
