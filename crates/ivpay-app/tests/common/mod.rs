//! What several of the binary's tests share: a free port, waiting for a service to be
//! ready, waiting for a condition.
#![allow(dead_code, reason = "each test file uses the part it needs")]

use std::time::Duration;

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether `{base}/readyz` answered 2xx within about ten seconds.
pub(crate) async fn ready(http: &reqwest::Client, base: &str) -> bool {
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Polls `probe` every 50 ms until it holds; fails the test after ten seconds.
pub(crate) async fn wait_until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}
