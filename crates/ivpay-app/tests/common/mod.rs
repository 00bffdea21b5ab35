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

/// Runs `ivpay-app <args>` with only `env` (and error-level logs); answers success and
/// stdout, with stderr appended on failure. `tables`: tables even though stdout is a pipe.
pub(crate) fn cli(args: &[&str], env: &[(&str, String)], tables: bool) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ivpay-app"));
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("IVPAY_LOG__FILTER", "error");
    if tables {
        cmd.env("IVPAY_TABLES", "1");
    }
    let out = cmd.output().expect("the binary runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), text)
}

/// As [`cli`] with `--json`: the answer, which must be a success.
pub(crate) fn cli_json(args: &[&str], env: &[(&str, String)]) -> serde_json::Value {
    let mut with = args.to_vec();
    with.push("--json");
    let (ok, text) = cli(&with, env, false);
    assert!(ok, "{args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}
