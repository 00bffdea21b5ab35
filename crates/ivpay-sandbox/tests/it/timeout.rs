//! Unpaid payments end in TIMEOUT after the window, on the sandbox clock.

use std::time::Duration;

use ivpay_domain::PaymentStatus;
use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig};
use serde_json::json;

use crate::support::{
    KEY, Receiver, START, TestResult, client, config, create_ok, get_payment, json_of, status_of,
};

fn with_window(minutes: u64) -> SandboxConfig {
    SandboxConfig {
        payment_timeout: Duration::from_secs(minutes * 60),
        // Only the clock's advance (or a read) may expire anything in these tests.
        sweep_interval: Duration::from_secs(3600),
        ..config()
    }
}

#[tokio::test]
async fn an_unpaid_payment_times_out_when_the_window_passes() -> TestResult {
    let receiver = Receiver::start(&[]).await;
    let sb = Sandbox::spawn(
        with_window(15).with_merchant(MerchantConfig::new(KEY).with_webhook(receiver.url())),
    )
    .await?;
    let id = create_ok(sb.base_url(), "o").await;

    sb.advance_clock(Duration::from_secs(15 * 60 - 1));
    assert_eq!(status_of(sb.base_url(), &id).await, "CREATED");

    sb.advance_clock(Duration::from_secs(1));
    let body = json_of(get_payment(sb.base_url(), KEY, &id).await).await;
    assert_eq!(body["data"]["status"], "TIMEOUT");
    assert_eq!(body["data"]["processed_at"], START + 15 * 60);

    let hits = receiver.wait_for(2).await;
    let statuses: Vec<&str> = hits.iter().map(|h| h.status()).collect();
    assert_eq!(statuses, ["CREATED", "TIMEOUT"]);
    assert_eq!(hits[1].body["processed_at"], START + 15 * 60);
    Ok(())
}

#[tokio::test]
async fn the_sweeper_expires_payments_nobody_reads() -> TestResult {
    let sb = Sandbox::spawn(with_window(1)).await?;
    let id = create_ok(sb.base_url(), "o").await;
    // The raw clock: no synchronous expiry, the sweeper wakes on the advance.
    sb.clock().advance(Duration::from_secs(61));
    for _ in 0..200 {
        let status = sb.payments().first().map(|p| p.status).ok_or("payment")?;
        if status == PaymentStatus::Timeout {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{id} never timed out").into())
}

#[tokio::test]
async fn the_control_api_advances_the_clock() -> TestResult {
    let sb = Sandbox::spawn(with_window(10)).await?;
    let id = create_ok(sb.base_url(), "o").await;
    let http = client();
    let answer = http
        .post(format!("{}/sandbox/clock/advance", sb.base_url()))
        .header("Content-Type", "application/json")
        .body(json!({"seconds": 600}).to_string())
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let clock = json_of(answer).await;
    assert_eq!(clock["now"], START + 600);
    assert_eq!(clock["manual"], true);
    assert_eq!(
        sb.payment(&id).map(|p| p.status),
        Some(PaymentStatus::Timeout)
    );
    let now = json_of(
        http.get(format!("{}/sandbox/clock", sb.base_url()))
            .send()
            .await?,
    )
    .await;
    assert_eq!(now["now_millis"], (START + 600) * 1000);
    Ok(())
}

#[tokio::test]
async fn a_paid_payment_never_times_out() -> TestResult {
    let sb = Sandbox::spawn(with_window(1)).await?;
    let id = create_ok(sb.base_url(), "o").await;
    sb.set_status(&id, PaymentStatus::Paid, false)?;
    sb.advance_clock(Duration::from_secs(3600));
    assert_eq!(status_of(sb.base_url(), &id).await, "PAID");
    Ok(())
}

#[tokio::test]
async fn paying_after_the_window_is_refused() -> TestResult {
    let sb = Sandbox::spawn(with_window(1)).await?;
    let id = create_ok(sb.base_url(), "o").await;
    sb.clock().advance(Duration::from_secs(120));
    // Whether or not the sweeper got there first, the payment is already final.
    let refused = sb.set_status(&id, PaymentStatus::Paid, false);
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        sb.payment(&id).map(|p| p.status),
        Some(PaymentStatus::Timeout)
    );
    Ok(())
}

#[tokio::test]
async fn expires_at_is_reported() -> TestResult {
    let sb = Sandbox::spawn(with_window(20)).await?;
    let id = create_ok(sb.base_url(), "o").await;
    let payment = sb.payment(&id).ok_or("payment")?;
    assert_eq!(payment.expires_at.unix_seconds(), START + 20 * 60);
    Ok(())
}

#[tokio::test]
async fn payments_final_for_longer_than_kept_are_forgotten_and_recent_ones_kept() -> TestResult {
    let sb = Sandbox::spawn(SandboxConfig {
        forget_after: Some(Duration::from_secs(3600)),
        ..with_window(1)
    })
    .await?;
    let ended = create_ok(sb.base_url(), "a").await;
    // Times out after a minute, then stays final for more than the hour kept.
    sb.advance_clock(Duration::from_secs(61));
    assert_eq!(status_of(sb.base_url(), &ended).await, "TIMEOUT");
    let recent = create_ok(sb.base_url(), "b").await;
    // `ended` has now been final for an hour and a minute; `recent` ends a minute from
    // now, so it has been final for less than the hour.
    sb.clock().advance(Duration::from_secs(3600));
    for _ in 0..200 {
        let ids: Vec<String> = sb.payments().into_iter().map(|p| p.payment_id).collect();
        if !ids.contains(&ended) {
            assert!(
                ids.contains(&recent),
                "a payment final for less than the hour is kept: {ids:?}"
            );
            assert_eq!(
                get_payment(sb.base_url(), KEY, &ended)
                    .await
                    .status()
                    .as_u16(),
                404
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{ended} was never forgotten").into())
}
