//! The `/sandbox/` control API over HTTP.

use serde_json::{Value, json};

use crate::support::{
    KEY, Receiver, TestResult, client, create_ok, json_of, spawn, spawn_with_receiver, status_of,
};

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> reqwest::Response {
    let mut request = client().request(method, url);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    request.send().await.expect("control API answered")
}

#[tokio::test]
async fn lists_payments_with_their_status() -> TestResult {
    let sb = spawn().await;
    let a = create_ok(sb.base_url(), "a").await;
    let b = create_ok(sb.base_url(), "b").await;
    sb.set_status(&b, ivpay_domain::PaymentStatus::Paid, false)?;
    let list = json_of(
        call(
            reqwest::Method::GET,
            format!("{}/sandbox/payments", sb.base_url()),
            None,
        )
        .await,
    )
    .await;
    let rows: Vec<(&str, &str, &str)> = list
        .as_array()
        .ok_or("array")?
        .iter()
        .map(|p| {
            (
                p["payment_id"].as_str().unwrap_or(""),
                p["foreign_id"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(a.as_str(), "a", "CREATED"), (b.as_str(), "b", "PAID")]
    );
    let one = call(
        reqwest::Method::GET,
        format!("{}/sandbox/payments/{a}", sb.base_url()),
        None,
    )
    .await;
    assert_eq!(json_of(one).await["amount_fiat"], "10.00");
    let missing = call(
        reqwest::Method::GET,
        format!("{}/sandbox/payments/nope", sb.base_url()),
        None,
    )
    .await;
    assert_eq!(missing.status(), 404);
    Ok(())
}

#[tokio::test]
async fn sets_a_status_through_the_state_machine_or_by_force() -> TestResult {
    let sb = spawn().await;
    let id = create_ok(sb.base_url(), "o").await;
    let url = format!("{}/sandbox/payments/{id}/status", sb.base_url());
    let paid = call(
        reqwest::Method::POST,
        url.clone(),
        Some(json!({"status": "PAID"})),
    )
    .await;
    assert_eq!(paid.status(), 200);
    let answer = json_of(paid).await;
    assert_eq!(answer["changed"], true);
    assert_eq!(answer["payment"]["status"], "PAID");

    let again = call(
        reqwest::Method::POST,
        url.clone(),
        Some(json!({"status": "PAID"})),
    )
    .await;
    assert_eq!(json_of(again).await["changed"], false);

    let conflict = call(
        reqwest::Method::POST,
        url.clone(),
        Some(json!({"status": "TIMEOUT"})),
    )
    .await;
    assert_eq!(conflict.status(), 409);
    let error = json_of(conflict).await["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(error.contains("PAID -> TIMEOUT"), "{error}");
    assert_eq!(status_of(sb.base_url(), &id).await, "PAID");

    let forced = call(
        reqwest::Method::POST,
        url.clone(),
        Some(json!({"status": "TIMEOUT", "force": true})),
    )
    .await;
    assert_eq!(forced.status(), 200);
    assert_eq!(status_of(sb.base_url(), &id).await, "TIMEOUT");

    let bad = call(
        reqwest::Method::POST,
        url,
        Some(json!({"status": "CANCELED"})),
    )
    .await;
    assert_eq!(bad.status(), 400);
    Ok(())
}

#[tokio::test]
async fn redelivers_and_lists_deliveries_by_payment() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    let a = create_ok(sb.base_url(), "a").await;
    let _b = create_ok(sb.base_url(), "b").await;
    receiver.wait_for(2).await;
    let redeliver = call(
        reqwest::Method::POST,
        format!("{}/sandbox/payments/{a}/redeliver", sb.base_url()),
        None,
    )
    .await;
    assert_eq!(redeliver.status(), 202);
    assert!(json_of(redeliver).await["event_id"].is_u64());
    receiver.wait_for(3).await;
    sb.wait_for_deliveries(std::time::Duration::from_secs(5), |log| log.len() >= 3)
        .await
        .ok_or("three deliveries")?;
    let only_a = json_of(
        call(
            reqwest::Method::GET,
            format!("{}/sandbox/deliveries?payment_id={a}", sb.base_url()),
            None,
        )
        .await,
    )
    .await;
    let only_a = only_a.as_array().ok_or("array")?;
    assert_eq!(only_a.len(), 2);
    assert!(only_a.iter().all(|d| d["payment_id"] == a.as_str()));
    assert_eq!(only_a[0]["outcome"], json!({"kind": "status", "code": 200}));
    assert_eq!(only_a[0]["url"], receiver.url());

    let cleared = call(
        reqwest::Method::DELETE,
        format!("{}/sandbox/deliveries", sb.base_url()),
        None,
    )
    .await;
    assert_eq!(cleared.status(), 204);
    assert!(sb.deliveries().is_empty());
    Ok(())
}

#[tokio::test]
async fn installs_shows_and_clears_faults() -> TestResult {
    let sb = spawn().await;
    let url = format!("{}/sandbox/faults", sb.base_url());
    let plan = json!({
        "seed": 5,
        "create": {"script": [{"kind": "server_error", "status": 502}]},
        "webhook": {"random": [{"probability": 0.5, "fault": {"kind": "drop"}}]}
    });
    let put = call(reqwest::Method::PUT, url.clone(), Some(plan)).await;
    assert_eq!(put.status(), 200);
    let shown = json_of(call(reqwest::Method::GET, url.clone(), None).await).await;
    assert_eq!(shown["seed"], 5);
    assert_eq!(shown["create"]["script"][0]["status"], 502);

    let injected = format!("{}/sandbox/faults/injected", sb.base_url());
    let none = json_of(call(reqwest::Method::GET, injected.clone(), None).await).await;
    assert_eq!(none, json!({"create": 0, "get": 0, "webhook": 0}));
    let response =
        crate::support::post_create(sb.base_url(), KEY, &crate::support::order("o")).await;
    assert_eq!(response.status(), 502);
    let counted = json_of(call(reqwest::Method::GET, injected.clone(), None).await).await;
    assert_eq!(counted, json!({"create": 1, "get": 0, "webhook": 0}));
    let clean = crate::support::post_create(sb.base_url(), KEY, &crate::support::order("p")).await;
    assert_eq!(clean.status(), 200);
    assert_eq!(
        sb.faults_injected().create,
        1,
        "a request without a fault is not counted"
    );
    let shown = json_of(call(reqwest::Method::GET, url.clone(), None).await).await;
    assert_eq!(
        shown["create"]["script"],
        json!([]),
        "the script was used up"
    );

    let too_likely = json!({"get": {"random": [
        {"probability": 0.8, "fault": {"kind": "reset"}},
        {"probability": 0.8, "fault": {"kind": "garbage"}}
    ]}});
    let refused = call(reqwest::Method::PUT, url.clone(), Some(too_likely)).await;
    assert_eq!(refused.status(), 400);

    let deleted = call(reqwest::Method::DELETE, url.clone(), None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(sb.faults(), ivpay_sandbox::FaultPlan::default());
    Ok(())
}

#[tokio::test]
async fn points_a_key_at_a_webhook_url() -> TestResult {
    let sb = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let put = call(
        reqwest::Method::PUT,
        format!("{}/sandbox/merchants", sb.base_url()),
        Some(json!({"api_key": KEY, "webhook_url": receiver.url()})),
    )
    .await;
    assert_eq!(put.status(), 204);
    create_ok(sb.base_url(), "o").await;
    assert_eq!(receiver.wait_for(1).await[0].status(), "CREATED");

    let new_key = call(
        reqwest::Method::PUT,
        format!("{}/sandbox/merchants", sb.base_url()),
        Some(json!({"api_key": "second-pos"})),
    )
    .await;
    assert_eq!(new_key.status(), 204);
    let response =
        crate::support::post_create(sb.base_url(), "second-pos", &crate::support::order("o2"))
            .await;
    assert_eq!(response.status(), 200);

    let bad = call(
        reqwest::Method::PUT,
        format!("{}/sandbox/merchants", sb.base_url()),
        Some(json!({"api_key": KEY, "webhook_url": "ftp://x"})),
    )
    .await;
    assert_eq!(bad.status(), 400);
    Ok(())
}
