//! IVPAY's wire contract: paths, headers, envelope, 400/401 bodies, statuses.

use axum::http::StatusCode;
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::support::{
    KEY, START, TestResult, client, config, create_ok, get_payment, json_of, order, post_create,
    spawn,
};

const WRONG_AUTH: &str = r#"{"success":false,"error":"Wrong auth parameters"}"#;

#[tokio::test]
async fn create_answers_ivpays_envelope_with_a_checkout_url() -> TestResult {
    let sb = spawn().await;
    let response = post_create(sb.base_url(), KEY, &order("order-1")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_of(response).await;
    assert_eq!(body["success"], true);
    let data = body["data"].as_object().ok_or("data is an object")?;
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "foreign_id", "payment_id", "payment_url"],
        "{body}"
    );
    let id = data["payment_id"].as_str().ok_or("payment_id")?;
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(
        data["payment_url"],
        format!("{}/checkout/{id}", sb.base_url())
    );
    assert_eq!(data["created_at"], START);
    assert_eq!(data["foreign_id"], "order-1");
    Ok(())
}

#[tokio::test]
async fn get_answers_the_documented_fields() -> TestResult {
    let sb = spawn().await;
    let id = create_ok(sb.base_url(), "order-2").await;
    let response = get_payment(sb.base_url(), KEY, &id).await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(
        body,
        json!({
            "success": true,
            "data": {
                "payment_id": id,
                "foreign_id": "order-2",
                "processed_at": START,
                "status": "CREATED",
            }
        })
    );
    let missing = get_payment(sb.base_url(), KEY, "nope").await;
    assert_eq!(missing.status(), 404);
    let reads: Vec<String> = sb
        .sandbox()
        .reads()
        .into_iter()
        .map(|r| r.payment_id)
        .collect();
    assert_eq!(reads, [id.as_str(), "nope"], "every GET is in the read log");
    Ok(())
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_the_exact_401_body() -> TestResult {
    let sb = spawn().await;
    let id = create_ok(sb.base_url(), "order-3").await;
    let http = client();
    let cases = [
        http.post(format!("{}/payment/create", sb.base_url()))
            .header("Content-Type", "application/json")
            .body(order("x").to_string()),
        http.post(format!("{}/payment/create", sb.base_url()))
            .header("Content-Type", "application/json")
            .header("X-API-KEY", "wrong")
            .body(order("x").to_string()),
        http.get(format!("{}/payment/{id}", sb.base_url())),
        http.get(format!("{}/payment/{id}", sb.base_url()))
            .header("X-API-KEY", "wrong"),
    ];
    for request in cases {
        let response = request.send().await?;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.text().await?, WRONG_AUTH);
    }
    assert_eq!(sb.payments().len(), 1, "no payment from refused creates");
    Ok(())
}

#[tokio::test]
async fn bad_input_gets_400_in_the_envelope() -> TestResult {
    let sb = spawn().await;
    let base = sb.base_url();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"amount_fiat": "10.001", "currency_fiat": "USD"}),
            "amount_fiat",
        ),
        (
            json!({"amount_fiat": "-1", "currency_fiat": "USD"}),
            "amount_fiat",
        ),
        (
            json!({"amount_fiat": 10, "currency_fiat": "USD"}),
            "invalid JSON body",
        ),
        (
            json!({"amount_fiat": "10", "currency_fiat": "XXX1"}),
            "currency_fiat",
        ),
        (json!({"currency_fiat": "USD"}), "amount_fiat"),
        (
            json!({"amount_fiat": "10", "currency_fiat": "USD", "url_success": "/relative"}),
            "url_success",
        ),
    ];
    for (body, mentions) in cases {
        let response = post_create(base, KEY, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer = json_of(response).await;
        assert_eq!(answer["success"], false, "{body}");
        let error = answer["error"].as_str().ok_or("error text")?;
        assert!(error.contains(mentions), "{body} -> {error}");
    }
    let not_json = client()
        .post(format!("{base}/payment/create"))
        .header("Content-Type", "application/json")
        .header("X-API-KEY", KEY)
        .body("{nope")
        .send()
        .await?;
    assert_eq!(not_json.status(), 400);
    assert_eq!(json_of(not_json).await["success"], false);
    let no_content_type = client()
        .post(format!("{base}/payment/create"))
        .header("X-API-KEY", KEY)
        .body(order("y").to_string())
        .send()
        .await?;
    assert_eq!(no_content_type.status(), 400);
    assert!(sb.payments().is_empty());
    Ok(())
}

#[tokio::test]
async fn amounts_are_kept_at_the_currencys_scale() -> TestResult {
    let sb = spawn().await;
    let body = json!({"amount_fiat": "1000", "currency_fiat": "jpy"});
    let response = post_create(sb.base_url(), KEY, &body).await;
    assert_eq!(response.status(), 200);
    let body = json!({"amount_fiat": "19.9", "currency_fiat": "EUR"});
    assert_eq!(post_create(sb.base_url(), KEY, &body).await.status(), 200);
    let payments = sb.payments();
    let amounts: Vec<(&str, &str)> = payments
        .iter()
        .map(|p| (p.amount_fiat.as_str(), p.currency_fiat.as_str()))
        .collect();
    assert_eq!(amounts, [("1000", "JPY"), ("19.90", "EUR")]);
    Ok(())
}

#[tokio::test]
async fn an_unknown_payment_is_an_error_envelope_with_the_configured_status() -> TestResult {
    let sb = spawn().await;
    let response = get_payment(sb.base_url(), KEY, "0000").await;
    assert_eq!(response.status(), 404);
    assert_eq!(json_of(response).await["success"], false);

    let sb = Sandbox::spawn(SandboxConfig {
        unknown_payment_status: StatusCode::BAD_REQUEST,
        ..config()
    })
    .await?;
    let response = get_payment(sb.base_url(), KEY, "0000").await;
    assert_eq!(response.status(), 400);
    Ok(())
}

#[tokio::test]
async fn the_create_status_is_configurable() -> TestResult {
    let sb = Sandbox::spawn(SandboxConfig {
        create_status: StatusCode::CREATED,
        ..config()
    })
    .await?;
    let response = post_create(sb.base_url(), KEY, &order("o")).await;
    assert_eq!(response.status(), 201);
    Ok(())
}

#[tokio::test]
async fn routes_live_under_the_configured_prefix() -> TestResult {
    let sb = Sandbox::spawn(SandboxConfig {
        prefix: "/api/v4".into(),
        ..config()
    })
    .await?;
    assert!(sb.base_url().ends_with("/api/v4"), "{}", sb.base_url());
    let response = post_create(sb.base_url(), KEY, &order("o")).await;
    assert_eq!(response.status(), 200);
    let data = json_of(response).await["data"].clone();
    let url = data["payment_url"].as_str().ok_or("payment_url")?;
    assert!(
        url.starts_with(&format!("{}/checkout/", sb.base_url())),
        "{url}"
    );
    let page = client().get(url).send().await?;
    assert_eq!(page.status(), 200);
    let root = format!("http://{}", sb.addr());
    assert_eq!(post_create(&root, KEY, &order("o")).await.status(), 404);
    Ok(())
}

#[tokio::test]
async fn several_keys_are_accepted_and_each_sees_only_its_payments() -> TestResult {
    let sb = Sandbox::spawn(SandboxConfig {
        merchants: vec![MerchantConfig::new("pos-a"), MerchantConfig::new("pos-b")],
        ..config()
    })
    .await?;
    let a = post_create(sb.base_url(), "pos-a", &order("a")).await;
    assert_eq!(a.status(), 200);
    let id = json_of(a).await["data"]["payment_id"]
        .as_str()
        .ok_or("id")?
        .to_owned();
    assert_eq!(
        post_create(sb.base_url(), "pos-b", &order("b"))
            .await
            .status(),
        200
    );
    assert_eq!(get_payment(sb.base_url(), "pos-a", &id).await.status(), 200);
    assert_eq!(get_payment(sb.base_url(), "pos-b", &id).await.status(), 404);
    assert_eq!(sb.payments().len(), 2);
    Ok(())
}

#[tokio::test]
async fn the_router_nests_into_another_server() -> TestResult {
    let sandbox = Sandbox::new(config())?;
    let app = axum::Router::new().nest("/upstream", sandbox.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/upstream", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let response = post_create(&base, KEY, &order("nested")).await;
    assert_eq!(response.status(), 200);
    let url = json_of(response).await["data"]["payment_url"]
        .as_str()
        .ok_or("payment_url")?
        .to_owned();
    assert!(url.starts_with(&format!("{base}/checkout/")), "{url}");
    assert_eq!(client().get(&url).send().await?.status(), 200);
    assert_eq!(sandbox.payments().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_public_url_overrides_the_payment_url_base() -> TestResult {
    let sb = Sandbox::spawn(SandboxConfig {
        public_url: Some("https://pay.example/".into()),
        ..config()
    })
    .await?;
    let id = create_ok(sb.base_url(), "o").await;
    let payment = sb.payment(&id).ok_or("payment")?;
    assert_eq!(payment.status.as_str(), "CREATED");
    let response = post_create(sb.base_url(), KEY, &order("p")).await;
    let url = json_of(response).await["data"]["payment_url"].clone();
    assert!(
        url.as_str()
            .is_some_and(|u| u.starts_with("https://pay.example/checkout/")),
        "{url}"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_the_server() -> TestResult {
    let sb = spawn().await;
    let base = sb.base_url().to_owned();
    create_ok(&base, "o").await;
    sb.shutdown().await?;
    let after = client()
        .get(format!("{base}/sandbox/payments"))
        .send()
        .await;
    assert!(after.is_err(), "{after:?}");
    Ok(())
}

#[tokio::test]
async fn a_shutdown_handle_stops_the_server_from_elsewhere() -> TestResult {
    let mut sb = spawn().await;
    let handle = sb.shutdown_handle();
    tokio::spawn(async move { handle.shutdown() });
    tokio::time::timeout(std::time::Duration::from_secs(5), sb.wait()).await??;
    Ok(())
}

#[tokio::test]
async fn serves_many_creates_and_gets_concurrently() -> TestResult {
    let sb = spawn().await;
    let base = sb.base_url().to_owned();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let id = create_ok(&base, &format!("order-{i}")).await;
                crate::support::status_of(&base, &id).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await?, "CREATED");
    }
    assert_eq!(sb.payments().len(), 200);
    Ok(())
}
