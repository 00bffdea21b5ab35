//! ivpay's router nested under `/ivpay` in the shop's app: the shop's gate runs first,
//! ivpay's own checks and envelope after it, the shop's routes beside it.

use std::sync::Arc;

use ivpay_api::{ApiConfig, ClientKeys};
use ivpay_http_adapter::IvpayClient;
use ivpay_ports::PaymentUseCases;
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig};
use ivpay_service::{PaymentService, ServiceConfig, SystemClock};
use secrecy::SecretString;

#[tokio::test]
async fn the_nested_api_answers_behind_the_shops_gate() {
    let sandbox =
        Sandbox::spawn(SandboxConfig::default().with_merchant(MerchantConfig::new("m-key")))
            .await
            .expect("simulator");
    let gateway = IvpayClient::builder("m-key")
        .base_url(sandbox.base_url())
        .allow_http(true)
        .build()
        .expect("client");
    let use_cases: Arc<dyn PaymentUseCases> = Arc::new(PaymentService::new(
        InMemoryRepository::new(),
        gateway,
        SystemClock,
        ServiceConfig::default(),
    ));
    let clients = ClientKeys::new().with("shop".parse().expect("id"), &SecretString::from("c-key"));
    let app = ivpay_examples::shop_app(ivpay_api::router(use_cases, ApiConfig::new(clients)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, internal: bool, body: Option<&'static str>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .header("X-API-KEY", "c-key")
            .header("Content-Type", "application/json");
        if internal {
            request = request.header("X-Internal", "yes");
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        async move {
            let response = request.send().await.expect("answers");
            (
                response.status().as_u16(),
                response.text().await.expect("body"),
            )
        }
    };

    let order = Some(r#"{"amount_fiat":"24.90","currency_fiat":"EUR","foreign_id":"order-7"}"#);
    let (status, _) = call(reqwest::Method::POST, "/ivpay/payment/create", false, order).await;
    assert_eq!(status, 403, "the shop's gate comes first");
    let (status, body) = call(reqwest::Method::POST, "/ivpay/payment/create", true, order).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""amount_fiat":"24.90""#), "{body}");
    let (status, body) = call(reqwest::Method::GET, "/ivpay/payments", true, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("order-7"), "{body}");
    let (status, body) = call(reqwest::Method::GET, "/ivpay/no-such-route", true, None).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains(r#""success":false"#),
        "ivpay's envelope under the prefix: {body}"
    );
    let (status, body) = call(reqwest::Method::GET, "/", true, None).await;
    assert_eq!((status, body.as_str()), (200, "the shop"));
}
