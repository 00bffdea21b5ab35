//! `ivpay-app doctor`, the real binary: each problem an operator meets first (a schema not
//! migrated, a database that does not answer, a wrong IVPAY key) is a failed check with
//! its fix and a non-zero exit; a healthy deployment passes.

use std::process::Command;

use ivpay_sandbox::{MerchantConfig, Sandbox, SandboxConfig, SandboxServer};

const MERCHANT_KEY: &str = "doctor-merchant-key";

/// Runs `ivpay-app <args>` in `dir` with exactly `env`; answers its exit status and output.
fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ivpay-app"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("IVPAY_LOG__FILTER", "error")
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sandbox() -> SandboxServer {
    Sandbox::spawn(SandboxConfig {
        merchants: vec![MerchantConfig::new(MERCHANT_KEY)],
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn live(sandbox: &SandboxServer, db: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("IVPAY_DATABASE__URL", db.to_owned()),
        ("IVPAY_IVPAY__API_KEY", key.to_owned()),
        ("IVPAY_IVPAY__BASE_URL", sandbox.base_url().to_owned()),
        ("IVPAY_IVPAY__ALLOW_HTTP", "true".to_owned()),
        ("IVPAY_CLIENTS__SHOP", "doctor-client-key".to_owned()),
        // Nothing listens here: the webhook route check warns, and a warning passes.
        ("IVPAY_SERVER__BIND", "127.0.0.1:9".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_fix_for_each_problem_and_passes_a_healthy_deployment() {
    let ivpay = sandbox().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ivpay.db").display()
    );

    // A schema not migrated.
    let (passed, text) = run(dir.path(), &["doctor"], &live(&ivpay, &db, MERCHANT_KEY));
    assert!(!passed, "{text}");
    assert!(text.contains("FAIL database schema is behind"), "{text}");
    assert!(text.contains("m0007_unannounced"), "{text}");
    assert!(text.contains("fix: run `ivpay-app migrate`"), "{text}");

    // Migrated, the right key: every check passes (the service is not running: a warning).
    let (migrated, text) = run(dir.path(), &["migrate"], &live(&ivpay, &db, MERCHANT_KEY));
    assert!(migrated, "{text}");
    assert!(
        text.contains("7 migration(s) to apply: m0001_payments, ")
            && text.contains("applied m0001_payments in ")
            && text.contains("applied m0007_unannounced in ")
            && text
                .find("applied m0001")
                .zip(text.find("applied m0007"))
                .is_some_and(|(a, b)| a < b),
        "migrate says what it applies, one line each as it goes: {text}"
    );
    let (again, text) = run(dir.path(), &["migrate"], &live(&ivpay, &db, MERCHANT_KEY));
    assert!(again && text.contains("the schema is up to date"), "{text}");
    let (passed, text) = run(dir.path(), &["doctor"], &live(&ivpay, &db, MERCHANT_KEY));
    assert!(passed, "{text}");
    assert!(
        text.contains("ok   database schema is up to date"),
        "{text}"
    );
    assert!(text.contains("accepts ivpay.api_key"), "{text}");
    assert!(text.contains("ok   clock within"), "{text}");
    assert!(text.contains("warn webhook route"), "{text}");
    assert!(text.contains("all checks passed"), "{text}");

    // A wrong key: refused by IVPAY, named with the setting and its variable.
    let (passed, text) = run(dir.path(), &["doctor"], &live(&ivpay, &db, "not-the-key"));
    assert!(!passed, "{text}");
    assert!(text.contains("FAIL IVPAY at"), "{text}");
    assert!(text.contains("refuses ivpay.api_key"), "{text}");
    assert!(text.contains("fix: set ivpay.api_key"), "{text}");
    assert!(text.contains("IVPAY_IVPAY__API_KEY"), "{text}");
    assert!(
        !text.contains("not-the-key"),
        "the key itself is never printed: {text}"
    );

    // A database that does not answer.
    let unreachable = "postgres://ivpay@127.0.0.1:1/ivpay".to_owned();
    let (passed, text) = run(
        dir.path(),
        &["doctor"],
        &live(&ivpay, &unreachable, MERCHANT_KEY),
    );
    assert!(!passed, "{text}");
    assert!(text.contains("FAIL database postgres://"), "{text}");
    assert!(text.contains("fix: "), "{text}");

    // Settings that do not load are a failed check too, not a crash.
    let mut broken = live(&ivpay, &db, MERCHANT_KEY);
    broken.push(("IVPAY_RECONCILER__INTERVAL_SECS", "0".to_owned()));
    let (passed, text) = run(dir.path(), &["doctor"], &broken);
    assert!(!passed, "{text}");
    assert!(
        text.contains("FAIL configuration: ") && text.contains("reconciler.interval_secs"),
        "{text}"
    );
}
