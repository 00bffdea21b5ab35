//! Shutdown is graceful but bounded: a client that never finishes its request cannot keep
//! the service up past the grace period, and a create whose request is gone is finished
//! (IVPAY's answer stored) before the process stops.

use std::time::{Duration, Instant};

use ivpay_app::{App, Settings};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_cannot_hold_shutdown_past_the_grace_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().expect("address");
    settings.server.shutdown_grace = Duration::from_secs(1);
    settings.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ivpay.db").display()
    )
    .parse()
    .expect("a database URL");
    let app = App::build(settings).await.expect("starts");
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    // A request whose body never arrives in full.
    let mut stuck = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    stuck
        .write_all(
            b"POST /payment/create HTTP/1.1\r\nHost: x\r\nX-API-KEY: dev-client-key\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"amount_fiat\"",
        )
        .await
        .expect("writes");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let asked = Instant::now();
    stop.send(()).expect("signal");
    let finished = tokio::time::timeout(Duration::from_secs(10), running).await;
    assert!(finished.is_ok(), "still running 10 s after the signal");
    finished
        .expect("in time")
        .expect("task")
        .expect("clean stop");
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "the request got its grace period: {took:?}"
    );
    drop(stuck);
}

/// A create whose request is gone (answered 503 by the request time limit) is still
/// talking to IVPAY when the signal comes: the process waits for it (within the grace
/// period) and stores IVPAY's answer before it stops, instead of leaving the intent
/// *initiated*.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_create_whose_request_is_gone() {
    use ivpay_ports::PaymentStore;
    use ivpay_sandbox::{FaultPlan, HttpFault, RouteFaults};

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ivpay.db").display()
    );
    // IVPAY stands apart from the service (an embedded sandbox would be stopped, and waited
    // for, by the shutdown under test).
    let ivpay = ivpay_sandbox::Sandbox::spawn(ivpay_sandbox::SandboxConfig {
        merchants: vec![ivpay_sandbox::MerchantConfig::new("merchant-key")],
        ..ivpay_sandbox::SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    ivpay
        .sandbox()
        .set_faults(FaultPlan {
            create: RouteFaults::script([HttpFault::Latency { ms: 2_500 }]),
            ..FaultPlan::default()
        })
        .expect("faults set");
    let mut settings = Settings::default();
    settings.ivpay.api_key = Some("merchant-key".into());
    settings.ivpay.base_url = ivpay.base_url().parse().expect("sandbox URL");
    settings.ivpay.allow_http = true;
    settings
        .clients
        .insert("shop".parse().expect("client id"), "shop-key".into());
    settings.server.bind = "127.0.0.1:0".parse().expect("address");
    settings.server.shutdown_grace = Duration::from_secs(10);
    settings.server.request_timeout = Duration::from_secs(1);
    settings.idempotency.wait = Duration::ZERO;
    settings.reconciler.enabled = false;
    settings.database.url = url.parse().expect("a database URL");
    let app = App::build(settings).await.expect("starts");
    let base = app.info().service_url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let cut_short = reqwest::Client::new()
        .post(format!("{base}/payment/create"))
        .header("X-API-KEY", "shop-key")
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", "cut-short")
        .body(r#"{"amount_fiat":"3.00","currency_fiat":"USD"}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        cut_short.status().as_u16(),
        503,
        "the request time limit fired"
    );
    stop.send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("stops within the grace period")
        .expect("task")
        .expect("clean stop");

    let db = ivpay_persistence::connect(&url, &Default::default())
        .await
        .expect("reopens");
    let repo = ivpay_persistence::SeaOrmRepository::new(&db);
    let page = repo
        .list(
            &Default::default(),
            ivpay_ports::PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("listed");
    let outcomes: Vec<_> = page.items.iter().map(|p| p.outcome().clone()).collect();
    assert_eq!(
        outcomes,
        vec![ivpay_domain::CreateOutcome::Created],
        "IVPAY's answer was stored before the process stopped"
    );
}
