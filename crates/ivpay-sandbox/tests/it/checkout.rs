//! The checkout page over plain HTTP: what its forms do to the payment.

use crate::support::{
    KEY, TestResult, client, create_ok, json_of, order, post_create, spawn, status_of,
};

async fn page_url(base: &str) -> (String, String) {
    let response = post_create(base, KEY, &order("order-7")).await;
    let data = json_of(response).await["data"].clone();
    (
        data["payment_id"].as_str().unwrap_or_default().to_owned(),
        data["payment_url"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_page_shows_amount_currency_order_and_status() -> TestResult {
    let sb = spawn().await;
    let (_, url) = page_url(sb.base_url()).await;
    let response = client().get(&url).send().await?;
    assert_eq!(response.status(), 200);
    let html = response.text().await?;
    for needle in [
        "<dd id=\"amount\">10.00</dd>",
        "<dd id=\"currency\">USD</dd>",
        "<dd id=\"foreign-id\">order-7</dd>",
        "<dd id=\"status\">CREATED</dd>",
        "id=\"coin-BTC\"",
    ] {
        assert!(html.contains(needle), "{needle} missing from {html}");
    }
    Ok(())
}

#[tokio::test]
async fn choosing_a_coin_then_paying_moves_to_paid_and_redirects_to_url_success() -> TestResult {
    let sb = spawn().await;
    let (id, url) = page_url(sb.base_url()).await;
    let http = client();
    let coin = http
        .post(format!("{url}/coin"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("coin=ETH")
        .send()
        .await?;
    assert_eq!(coin.status(), 303);
    let back = coin.headers()["location"].to_str()?.to_owned();
    assert!(url.ends_with(&back), "{back} vs {url}");
    assert_eq!(status_of(sb.base_url(), &id).await, "PENDING");
    assert_eq!(sb.payment(&id).and_then(|p| p.coin).as_deref(), Some("ETH"));

    let pay = http.post(format!("{url}/pay")).send().await?;
    assert_eq!(pay.status(), 303);
    assert_eq!(pay.headers()["location"], "https://shop.example/ok");
    assert_eq!(status_of(sb.base_url(), &id).await, "PAID");
    let html = http.get(&url).send().await?.text().await?;
    assert!(html.contains("<dd id=\"status\">PAID</dd>"), "{html}");
    Ok(())
}

#[tokio::test]
async fn giving_up_moves_to_timeout_and_redirects_to_url_failed() -> TestResult {
    let sb = spawn().await;
    let (id, url) = page_url(sb.base_url()).await;
    let response = client().post(format!("{url}/cancel")).send().await?;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example/failed"
    );
    assert_eq!(status_of(sb.base_url(), &id).await, "TIMEOUT");
    Ok(())
}

#[tokio::test]
async fn paying_a_final_payment_is_refused() -> TestResult {
    let sb = spawn().await;
    let (id, url) = page_url(sb.base_url()).await;
    let http = client();
    http.post(format!("{url}/cancel")).send().await?;
    let pay = http.post(format!("{url}/pay")).send().await?;
    assert_eq!(pay.status(), 409);
    let html = pay.text().await?;
    assert!(html.contains("id=\"error\""), "{html}");
    assert_eq!(status_of(sb.base_url(), &id).await, "TIMEOUT");
    Ok(())
}

#[tokio::test]
async fn without_merchant_urls_the_page_redirects_to_itself() -> TestResult {
    let sb = spawn().await;
    let body = serde_json::json!({"amount_fiat": "5", "currency_fiat": "EUR"});
    let data = json_of(post_create(sb.base_url(), KEY, &body).await).await["data"].clone();
    let url = data["payment_url"].as_str().ok_or("url")?.to_owned();
    let response = client().post(format!("{url}/cancel")).send().await?;
    assert_eq!(response.status(), 303);
    assert!(url.ends_with(response.headers()["location"].to_str()?));
    Ok(())
}

#[tokio::test]
async fn an_unknown_coin_or_payment_is_refused() -> TestResult {
    let sb = spawn().await;
    let id = create_ok(sb.base_url(), "o").await;
    let http = client();
    let coin = http
        .post(format!("{}/checkout/{id}/coin", sb.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("coin=DOGE%3Cscript%3E")
        .send()
        .await?;
    assert_eq!(coin.status(), 400);
    assert!(!coin.text().await?.contains("<script>"));
    assert_eq!(status_of(sb.base_url(), &id).await, "CREATED");
    let missing = http
        .get(format!("{}/checkout/nope", sb.base_url()))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}
