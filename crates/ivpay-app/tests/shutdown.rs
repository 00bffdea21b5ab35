//! Shutdown is graceful but bounded: a client that never finishes its request cannot keep
//! the service up past the grace period.

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
