//! The checkout page over plain HTTP: what its forms do to the payment.

use std::time::Duration;

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
        "<span id=\"amount\">10.00</span>",
        "<span id=\"currency\">USD</span>",
        "<dd id=\"foreign-id\">order-7</dd>",
        "<span id=\"status\" class=\"badge s-CREATED\">CREATED</span>",
        // The default window is 30 minutes, on the sandbox's (manual) clock.
        "data-remaining=\"1800\">30:00<",
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
    assert!(html.contains(">PAID</span>"), "{html}");
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

#[tokio::test]
async fn the_status_route_counts_down_on_the_sandbox_clock() -> TestResult {
    let sb = spawn().await;
    let (_, url) = page_url(sb.base_url()).await;
    let http = client();
    let first = json_of(http.get(format!("{url}/status")).send().await?).await;
    assert_eq!(first["status"], "CREATED");
    assert_eq!(first["remaining_seconds"], 1800);
    sb.advance_clock(Duration::from_secs(60));
    let later = json_of(http.get(format!("{url}/status")).send().await?).await;
    assert_eq!(later["remaining_seconds"], 1740);
    sb.advance_clock(Duration::from_secs(1740));
    let over = json_of(http.get(format!("{url}/status")).send().await?).await;
    assert_eq!(
        (over["status"].as_str(), over["remaining_seconds"].as_i64()),
        (Some("TIMEOUT"), Some(0))
    );
    // A payment paid with time to spare has none left either: its window is over.
    let (paid_id, paid_url) = page_url(sb.base_url()).await;
    sb.set_status(&paid_id, ivpay_domain::PaymentStatus::Paid, false)?;
    let paid = json_of(http.get(format!("{paid_url}/status")).send().await?).await;
    assert_eq!(
        (paid["status"].as_str(), paid["remaining_seconds"].as_i64()),
        (Some("PAID"), Some(0))
    );
    let page = http.get(&paid_url).send().await?.text().await?;
    assert!(
        page.contains("<span id=\"countdown-line\" hidden>"),
        "the paid page hides its countdown: {page}"
    );
    let missing = http
        .get(format!("{}/checkout/nope/status", sb.base_url()))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}

#[tokio::test]
async fn an_underpaid_payment_stays_pending_and_then_times_out() -> TestResult {
    let sb = spawn().await;
    let (id, url) = page_url(sb.base_url()).await;
    let http = client();
    // Nothing to underpay before a coin is chosen.
    let early = http.post(format!("{url}/underpay")).send().await?;
    assert_eq!(early.status(), 409);
    http.post(format!("{url}/coin"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("coin=LTC")
        .send()
        .await?;
    let short = http.post(format!("{url}/underpay")).send().await?;
    assert_eq!(short.status(), 303);
    assert_eq!(status_of(sb.base_url(), &id).await, "PENDING", "not paid");
    assert_eq!(
        sb.payment(&id).and_then(|p| p.received).as_deref(),
        Some("5.00")
    );
    let html = http.get(&url).send().await?.text().await?;
    assert!(
        html.contains("<dd id=\"received\">5.00 of 10.00 USD"),
        "{html}"
    );
    assert!(html.contains("<svg id=\"qr\""), "{html}");
    sb.advance_clock(Duration::from_secs(30 * 60));
    assert_eq!(status_of(sb.base_url(), &id).await, "TIMEOUT");
    Ok(())
}

#[tokio::test]
async fn letting_it_expire_ends_it_in_timeout_and_shows_the_page() -> TestResult {
    let sb = spawn().await;
    let (id, url) = page_url(sb.base_url()).await;
    let response = client().post(format!("{url}/expire")).send().await?;
    assert_eq!(response.status(), 303);
    assert!(
        url.ends_with(response.headers()["location"].to_str()?),
        "back to the page"
    );
    assert_eq!(status_of(sb.base_url(), &id).await, "TIMEOUT");
    let html = client().get(&url).send().await?.text().await?;
    assert!(
        html.contains("This payment has expired.") && !html.contains("<form"),
        "{html}"
    );
    Ok(())
}
