//! `ivpay-app purge`, the real binary on a terminal: old events deleted in bounded
//! batches, the running count rewritten in place, then what was deleted; a second run
//! finds nothing.

use std::process::Command;

use ivpay_domain::{EventOutcome, PaymentEvent, ReportedStatus, Timestamp, UpdateSource};
use ivpay_persistence::{DatabaseOptions, SeaOrmRepository, connect, migrate_up};
use ivpay_ports::PaymentStore;

/// Runs `ivpay-app purge` under `script`, so its standard output is a terminal.
fn purge_on_a_terminal(db_url: &str) -> (bool, String) {
    let command = format!(
        "IVPAY_DATABASE__URL='{db_url}' IVPAY_RETENTION__EVENTS_DAYS=30 \
         IVPAY_RETENTION__BATCH=2 IVPAY_LOG__FILTER=error {} purge",
        env!("CARGO_BIN_EXE_ivpay-app")
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("script runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn purge_deletes_old_events_in_batches_with_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let db = connect(&url, &DatabaseOptions::default())
        .await
        .expect("opens");
    migrate_up(&db).await.expect("migrates");
    let repo = SeaOrmRepository::new(&db);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    // Five events from 100 days ago, two from today.
    for (n, age_days) in [100, 100, 100, 100, 100, 0, 0].into_iter().enumerate() {
        repo.record_event(&PaymentEvent {
            payment: None,
            payment_id: format!("old{n}").parse().expect("id"),
            source: UpdateSource::Webhook,
            from: None,
            to: ReportedStatus::from("PAID"),
            outcome: EventOutcome::UnknownPayment,
            evidence: None,
            received_at: Timestamp::from_unix_seconds(now - age_days * 86_400),
        })
        .await
        .expect("recorded");
    }
    drop(repo);
    drop(db);

    let (ok, shown) = purge_on_a_terminal(&url);
    assert!(ok, "{shown}");
    // Batches of two: the count grows 2, 4, 5 on one line.
    for step in [
        "purging payment_events: 2 rows",
        "purging payment_events: 4 rows",
    ] {
        assert!(shown.contains(step), "{step} missing: {shown:?}");
    }
    assert!(
        shown.contains("purged 5 event(s) and 0 notification(s) past their retention"),
        "{shown:?}"
    );
    let (ok, again) = purge_on_a_terminal(&url);
    assert!(ok && again.contains("purged 0 event(s)"), "{again:?}");
}
