//! Webhooks: one per status change, IVPAY's headers and body, retried until a 200,
//! every attempt logged.

use std::time::Duration;

use ivpay_domain::PaymentStatus;
use ivpay_sandbox::{DeliveryOutcome, MerchantConfig, Sandbox, SandboxConfig};

use crate::support::{KEY, Receiver, TestResult, config, create_ok, spawn_with_receiver};

#[tokio::test]
async fn every_status_change_is_posted_with_ivpays_headers_and_fields() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    let id = create_ok(sb.base_url(), "order-9").await;
    sb.set_status(&id, PaymentStatus::Pending, false)?;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    let hits = receiver.wait_for(3).await;
    let statuses: Vec<&str> = hits.iter().map(|h| h.status()).collect();
    assert_eq!(statuses, ["CREATED", "PENDING", "PAID"]);
    for hit in &hits {
        assert_eq!(hit.api_key.as_deref(), Some(KEY));
        assert_eq!(hit.content_type.as_deref(), Some("application/json"));
        assert_eq!(hit.body["payment_id"], id.as_str());
        assert_eq!(hit.body["foreign_id"], "order-9");
        assert!(hit.body["processed_at"].is_i64(), "{}", hit.raw);
    }
    let log = sb
        .wait_for_deliveries(Duration::from_secs(5), |log| log.len() >= 3)
        .await
        .ok_or("three deliveries logged")?;
    assert!(
        log.iter()
            .all(|d| d.outcome.is_delivered() && d.attempt == 1)
    );
    assert_eq!(log[2].body, hits[2].raw);
    assert_eq!(log[2].url, receiver.url());
    Ok(())
}

#[tokio::test]
async fn a_repeated_status_sends_nothing() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    let id = create_ok(sb.base_url(), "o").await;
    sb.set_status(&id, PaymentStatus::Pending, false)?;
    sb.set_status(&id, PaymentStatus::Pending, false)?;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    let hits = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.hits().len(), 3, "{hits:?}");
    Ok(())
}

#[tokio::test]
async fn anything_but_200_is_retried_until_delivered() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[500, 204]).await;
    let id = create_ok(sb.base_url(), "o").await;
    let hits = receiver.wait_for(3).await;
    assert!(hits.iter().all(|h| h.body["payment_id"] == id.as_str()));
    let log = sb
        .wait_for_deliveries(Duration::from_secs(5), |log| log.len() >= 3)
        .await
        .ok_or("three attempts")?;
    let outcomes: Vec<_> = log.iter().map(|d| (d.attempt, d.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        [
            (1, DeliveryOutcome::Status { code: 500 }),
            (2, DeliveryOutcome::Status { code: 204 }),
            (3, DeliveryOutcome::Status { code: 200 }),
        ]
    );
    assert!(log.iter().all(|d| d.event_id == log[0].event_id));
    // 30 ms apart in this config.
    assert!(log[1].after_ms >= 30 && log[2].after_ms >= 60, "{log:?}");
    Ok(())
}

#[tokio::test]
async fn delivery_stops_after_the_configured_attempts() -> TestResult {
    let receiver = Receiver::always(503).await;
    let mut config = config().with_merchant(MerchantConfig::new(KEY).with_webhook(receiver.url()));
    config.webhooks.attempts = 4;
    config.webhooks.retry_interval = Duration::from_millis(10);
    let sb = Sandbox::spawn(config).await?;
    create_ok(sb.base_url(), "o").await;
    receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(receiver.hits().len(), 4);
    let log = sb.deliveries();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|d| !d.outcome.is_delivered()));
    Ok(())
}

#[tokio::test]
async fn an_unreachable_receiver_is_logged_as_an_error() -> TestResult {
    // Bind and drop, so nothing listens on the port.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let mut config = config()
        .with_merchant(MerchantConfig::new(KEY).with_webhook(format!("http://127.0.0.1:{port}/")));
    config.webhooks.attempts = 2;
    let sb = Sandbox::spawn(config).await?;
    create_ok(sb.base_url(), "o").await;
    let log = sb
        .wait_for_deliveries(Duration::from_secs(5), |log| log.len() >= 2)
        .await
        .ok_or("two attempts")?;
    assert!(
        log.iter()
            .all(|d| matches!(d.outcome, DeliveryOutcome::Error { .. })),
        "{log:?}"
    );
    Ok(())
}

#[tokio::test]
async fn each_key_posts_to_its_own_url_with_its_own_key() -> TestResult {
    let a = Receiver::start(&[]).await;
    let b = Receiver::start(&[]).await;
    let sb = Sandbox::spawn(SandboxConfig {
        merchants: vec![
            MerchantConfig::new("pos-a").with_webhook(a.url()),
            MerchantConfig::new("pos-b").with_webhook(b.url()),
            MerchantConfig::new("pos-silent"),
        ],
        ..config()
    })
    .await?;
    for key in ["pos-a", "pos-b", "pos-silent"] {
        let response =
            crate::support::post_create(sb.base_url(), key, &crate::support::order(key)).await;
        assert_eq!(response.status(), 200);
    }
    let hits_a = a.wait_for(1).await;
    let hits_b = b.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.hits().len(), 1);
    assert_eq!(b.hits().len(), 1);
    assert_eq!(hits_a[0].api_key.as_deref(), Some("pos-a"));
    assert_eq!(hits_a[0].body["foreign_id"], "pos-a");
    assert_eq!(hits_b[0].api_key.as_deref(), Some("pos-b"));
    assert_eq!(
        sb.deliveries().len(),
        2,
        "no webhook for the key without a URL"
    );
    Ok(())
}

#[tokio::test]
async fn a_webhook_url_can_be_set_after_start() -> TestResult {
    let sb = Sandbox::spawn(config()).await?;
    let first = create_ok(sb.base_url(), "before").await;
    let receiver = Receiver::start(&[]).await;
    sb.set_merchant(MerchantConfig::new(KEY).with_webhook(receiver.url()))?;
    sb.set_status(&first, PaymentStatus::Paid, false)?;
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits[0].status(), "PAID");
    assert_eq!(hits[0].body["payment_id"], first.as_str());
    Ok(())
}

#[tokio::test]
async fn redelivery_sends_the_current_status_again() -> TestResult {
    let (sb, receiver) = spawn_with_receiver(&[]).await;
    let id = create_ok(sb.base_url(), "o").await;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    receiver.wait_for(2).await;
    let event = sb.redeliver(&id)?.ok_or("an event")?;
    let hits = receiver.wait_for(3).await;
    assert_eq!(hits[2].status(), "PAID");
    assert_eq!(hits[2].raw, hits[1].raw);
    let log = sb.deliveries();
    assert_eq!(log.last().map(|d| d.event_id), Some(event));
    assert_ne!(log[1].event_id, event);
    assert!(sb.redeliver("missing").is_err());
    Ok(())
}

#[tokio::test]
async fn the_log_keeps_at_most_its_capacity() -> TestResult {
    let receiver = Receiver::start(&[]).await;
    let sb = Sandbox::spawn(SandboxConfig {
        delivery_log_capacity: 2,
        ..config().with_merchant(MerchantConfig::new(KEY).with_webhook(receiver.url()))
    })
    .await?;
    for i in 0..4 {
        create_ok(sb.base_url(), &format!("o{i}")).await;
    }
    receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let log = sb.deliveries();
    assert_eq!(log.len(), 2);
    assert!(log.iter().any(|d| d.body.contains("\"o3\"")), "{log:?}");
    Ok(())
}
