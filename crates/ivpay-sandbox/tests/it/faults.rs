//! Fault injection on create, get and webhooks: scripted, random under a seed.

use std::time::{Duration, Instant};

use ivpay_domain::PaymentStatus;
use ivpay_sandbox::{
    DeliveryOutcome, FaultPlan, HttpFault, RouteFaults, Sandbox, SandboxServer, WebhookFault,
};

use crate::support::{
    KEY, TestResult, client, config, create_ok, get_payment, json_of, order, post_create, spawn,
    spawn_with_receiver,
};

fn create_script(faults: impl IntoIterator<Item = HttpFault>) -> FaultPlan {
    FaultPlan {
        create: RouteFaults::script(faults),
        ..FaultPlan::default()
    }
}

fn webhook_script(faults: impl IntoIterator<Item = WebhookFault>) -> FaultPlan {
    FaultPlan {
        webhook: RouteFaults::script(faults),
        ..FaultPlan::default()
    }
}

async fn raw_create(sb: &SandboxServer) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let response = client()
        .post(format!("{}/payment/create", sb.base_url()))
        .header("Content-Type", "application/json")
        .header("X-API-KEY", KEY)
        .body(order("faulty").to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn a_server_error_comes_before_anything_is_created() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::ServerError { status: 503 }]))?;
    let (status, body) = raw_create(&sb).await?;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(body["success"], false);
    assert!(sb.payments().is_empty());
    let (status, _) = raw_create(&sb).await?;
    assert_eq!(status, 200, "a script applies to the next request only");
    Ok(())
}

#[tokio::test]
async fn an_injected_401_refuses_a_valid_key() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::Unauthorized]))?;
    let (status, body) = raw_create(&sb).await?;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        br#"{"success":false,"error":"Wrong auth parameters"}"#
    );
    assert!(sb.payments().is_empty());
    Ok(())
}

#[tokio::test]
async fn latency_delays_the_answer() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::Latency { ms: 150 }]))?;
    let started = Instant::now();
    let (status, _) = raw_create(&sb).await?;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(sb.payments().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_reset_loses_the_answer_but_not_the_payment() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::Reset]))?;
    let outcome = raw_create(&sb).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(sb.payments().len(), 1, "created upstream all the same");
    let (status, _) = raw_create(&sb).await?;
    assert_eq!(status, 200, "the server survives the reset");
    Ok(())
}

#[tokio::test]
async fn a_429_names_its_wait_and_creates_nothing() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::RateLimited {
        retry_after_secs: 7,
    }]))?;
    let response = client()
        .post(format!("{}/payment/create", sb.base_url()))
        .header("Content-Type", "application/json")
        .header("X-API-KEY", KEY)
        .body(order("limited").to_string())
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert!(sb.payments().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_reset_before_handling_loses_the_request_and_creates_nothing() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::ResetBeforeHandling]))?;
    let outcome = raw_create(&sb).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(sb.payments().is_empty(), "nothing was created");
    let (status, _) = raw_create(&sb).await?;
    assert_eq!(status, 200, "the server survives the reset");
    Ok(())
}

#[tokio::test]
async fn garbage_and_truncated_bodies_are_not_json_but_the_payment_exists() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::Garbage, HttpFault::Truncated]))?;
    let (status, garbage) = raw_create(&sb).await?;
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&garbage).is_err());
    let (status, truncated) = raw_create(&sb).await?;
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&truncated).is_err());
    let text = String::from_utf8(truncated)?;
    assert!(text.starts_with(r#"{"success":true,"data":{"#), "{text}");
    assert_eq!(sb.payments().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_slow_body_comes_late_for_a_payment_that_already_exists() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::SlowBody { ms: 600 }]))?;
    let started = Instant::now();
    let response = post_create(sb.base_url(), KEY, &order("slow")).await;
    assert_eq!(response.status(), 200, "the status comes at once");
    assert_eq!(sb.payments().len(), 1, "created before the body is sent");
    let headers_after = started.elapsed();
    let body = json_of(response).await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "the body waited: {:?}",
        started.elapsed()
    );
    assert!(
        headers_after < Duration::from_millis(600),
        "{headers_after:?}"
    );
    assert_eq!(
        body["data"]["payment_id"],
        sb.payments()[0].payment_id.as_str()
    );
    Ok(())
}

#[tokio::test]
async fn the_trailing_comma_body_is_ivpays_documented_layout() -> TestResult {
    let sb = spawn().await;
    sb.set_faults(create_script([HttpFault::TrailingComma]))?;
    let (status, body) = raw_create(&sb).await?;
    assert_eq!(status, 200);
    let text = String::from_utf8(body)?;
    let payment = sb.payments().pop().ok_or("created")?;
    let expected = format!(
        "{{\n  \"success\": true,\n  \"data\": {{\n    \"payment_id\": \"{id}\",\n    \
         \"payment_url\": \"{base}/checkout/{id}\",\n    \"created_at\": {at},\n    \
         \"foreign_id\": \"faulty\",\n  }}\n}}\n",
        id = payment.payment_id,
        base = sb.base_url(),
        at = payment.created_at,
    );
    assert_eq!(text, expected);
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());

    sb.set_faults(FaultPlan {
        get: RouteFaults::script([HttpFault::TrailingComma]),
        ..FaultPlan::default()
    })?;
    let get = get_payment(sb.base_url(), KEY, &payment.payment_id).await;
    let text = get.text().await?;
    assert!(
        text.ends_with("\"status\": \"CREATED\",\n  }\n}\n"),
        "{text}"
    );
    Ok(())
}

async fn get_statuses(seed: u64) -> Result<Vec<u16>, Box<dyn std::error::Error + Send + Sync>> {
    let sb = Sandbox::spawn(config()).await?;
    let id = create_ok(sb.base_url(), "o").await;
    sb.set_faults(FaultPlan {
        seed,
        get: RouteFaults::chance(0.5, HttpFault::ServerError { status: 500 }),
        ..FaultPlan::default()
    })?;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(get_payment(sb.base_url(), KEY, &id).await.status().as_u16());
    }
    Ok(statuses)
}

#[tokio::test]
async fn random_faults_repeat_under_the_same_seed() -> TestResult {
    let first = get_statuses(11).await?;
    let second = get_statuses(11).await?;
    assert_eq!(first, second);
    assert!(first.contains(&200) && first.contains(&500), "{first:?}");
    let other = get_statuses(12).await?;
    assert_ne!(first, other);
    Ok(())
}

#[tokio::test]
async fn a_dropped_webhook_is_logged_and_never_sent() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    sb.set_faults(webhook_script([WebhookFault::Drop]))?;
    let id = create_ok(sb.base_url(), "o").await;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    let hits = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.hits().len(), 1);
    assert_eq!(hits[0].status(), "PAID");
    let log = sb.deliveries();
    assert_eq!(log[0].outcome, DeliveryOutcome::Dropped);
    assert_eq!(log[0].fault, Some(WebhookFault::Drop));
    Ok(())
}

#[tokio::test]
async fn a_duplicated_webhook_arrives_twice() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    sb.set_faults(webhook_script([WebhookFault::Duplicate]))?;
    create_ok(sb.base_url(), "o").await;
    let hits = receiver.wait_for(2).await;
    assert_eq!(hits[0].raw, hits[1].raw);
    assert_eq!(hits[0].status(), "CREATED");
    let log = sb
        .wait_for_deliveries(Duration::from_secs(5), |log| log.len() >= 2)
        .await
        .ok_or("two deliveries")?;
    assert_eq!(log[0].event_id, log[1].event_id);
    Ok(())
}

#[tokio::test]
async fn a_delayed_webhook_is_overtaken() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    // Long enough that PAID, sent at once, wins even on a slow machine.
    sb.set_faults(webhook_script([WebhookFault::Delay { ms: 800 }]))?;
    let id = create_ok(sb.base_url(), "o").await;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    let hits = receiver.wait_for(2).await;
    let statuses: Vec<&str> = hits.iter().map(|h| h.status()).collect();
    assert_eq!(statuses, ["PAID", "CREATED"]);
    let log = sb
        .wait_for_deliveries(Duration::from_secs(5), |log| log.len() >= 2)
        .await
        .ok_or("two deliveries")?;
    let created = log
        .iter()
        .find(|d| d.status == PaymentStatus::Created)
        .ok_or("created logged")?;
    assert!(created.after_ms >= 800, "{created:?}");
    Ok(())
}

#[tokio::test]
async fn a_reordered_webhook_arrives_after_the_next_one() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    let id = create_ok(sb.base_url(), "o").await;
    receiver.wait_for(1).await;
    sb.set_faults(webhook_script([WebhookFault::Reorder]))?;
    sb.set_status(&id, PaymentStatus::Pending, false)?;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    let hits = receiver.wait_for(3).await;
    let statuses: Vec<&str> = hits.iter().map(|h| h.status()).collect();
    assert_eq!(statuses, ["CREATED", "PAID", "PENDING"]);
    Ok(())
}

#[tokio::test]
async fn a_held_webhook_goes_out_alone_after_the_hold() -> TestResult {
    let receiver = crate::support::Receiver::start(&[]).await;
    let mut config = config()
        .with_merchant(ivpay_sandbox::MerchantConfig::new(KEY).with_webhook(receiver.url()));
    config.webhooks.reorder_hold = Duration::from_millis(300);
    let sb = Sandbox::spawn(config).await?;
    sb.set_faults(webhook_script([WebhookFault::Reorder]))?;
    create_ok(sb.base_url(), "o").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(receiver.hits().is_empty(), "held back at first");
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits[0].status(), "CREATED");
    Ok(())
}

#[tokio::test]
async fn faults_from_the_config_apply_from_the_start() -> TestResult {
    let sb = Sandbox::spawn(ivpay_sandbox::SandboxConfig {
        faults: create_script([HttpFault::ServerError { status: 502 }]),
        ..config()
    })
    .await?;
    let response = post_create(sb.base_url(), KEY, &order("o")).await;
    assert_eq!(response.status(), 502);
    assert_eq!(json_of(response).await["success"], false);
    Ok(())
}
