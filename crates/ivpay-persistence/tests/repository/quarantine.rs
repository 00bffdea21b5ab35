//! Rows that no longer read into the domain: set aside, never a reason to stop recovery.
//! Only a database can hold such a row, so these run on SQLite and PostgreSQL only.

use std::collections::HashSet;

use ivpay_domain::InternalId;
use ivpay_persistence::Backend;
use ivpay_ports::{InboxWebhook, PaymentStore, ReconcileQueue, WebhookInbox};
use sea_orm::ConnectionTrait;

use crate::support::{LEASE, TestDb, at, created_upstream, id, intent};

fn webhook(n: u128) -> InboxWebhook {
    InboxWebhook {
        id: id(n),
        hint: ivpay_domain::WebhookHint {
            account: ivpay_domain::AccountId::default(),
            payment_id: format!("ivpay{n}").parse().expect("valid id"),
            status: Some(ivpay_domain::ReportedStatus::from("PAID")),
            raw: format!(r#"{{"payment_id":"ivpay{n}","status":"PAID"}}"#),
        },
        received_at: at(10),
        attempts: 0,
    }
}

/// `(id, quarantine_reason)` of every quarantined row of `table`, checking each has its time.
async fn quarantined(t: &TestDb, table: &str) -> Vec<(String, String)> {
    let ids = t
        .query_texts(&format!(
            "SELECT id FROM {table} WHERE quarantined_at IS NOT NULL ORDER BY id"
        ))
        .await;
    let reasons = t
        .query_texts(&format!(
            "SELECT quarantine_reason FROM {table} WHERE quarantined_at IS NOT NULL ORDER BY id"
        ))
        .await;
    ids.into_iter()
        .zip(reasons)
        .map(|(i, r)| (i.expect("an id"), r.expect("a reason")))
        .collect()
}

/// Corrupts row `n` of `table` by hand, under the repository: `set` is the SQL `SET` list.
async fn hand_edit(t: &TestDb, table: &str, set: &str, n: u128) {
    t.execute_raw(&format!("UPDATE {table} SET {set} WHERE id = '{}'", id(n)))
        .await;
}

fn ids_of<'a>(ids: impl IntoIterator<Item = &'a InternalId>) -> HashSet<InternalId> {
    ids.into_iter().copied().collect()
}

pub(crate) async fn unreadable_rows_are_quarantined_and_the_rest_of_the_batch_proceeds(t: TestDb) {
    let repo = &t.repo;
    // Stale intents, one with a currency a library upgrade no longer knows.
    for n in 1..=3u128 {
        repo.insert_intent(&intent(n, "1.00", 10 * n as i64), None)
            .await
            .expect("stored");
    }
    hand_edit(&t, "payments", "currency = 'QQQ'", 2).await;
    // Due payments, one with a hand-edited amount.
    for n in 4..=6u128 {
        created_upstream(repo, n, 10, Some(100)).await;
    }
    hand_edit(&t, "payments", "amount = 'ten'", 5).await;
    // Inbox webhooks, one with an impossible attempt count.
    for n in 7..=8u128 {
        repo.store_webhook(&webhook(n), at(100))
            .await
            .expect("kept");
    }
    hand_edit(&t, "webhook_inbox", "attempts = -1", 8).await;

    let stale = repo.stale_intents(at(1_000), 10).await.expect("listed");
    assert_eq!(
        ids_of(&stale.iter().map(|p| p.id()).collect::<Vec<_>>()),
        HashSet::from([id(1), id(3)])
    );
    let due = repo.claim_due(at(100), LEASE, 10).await.expect("claimed");
    assert_eq!(
        ids_of(&due.iter().map(|c| c.payment.id()).collect::<Vec<_>>()),
        HashSet::from([id(4), id(6)])
    );
    let webhooks = repo
        .claim_webhooks(at(100), LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!(
        webhooks.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![id(7)]
    );

    let payments = quarantined(&t, "payments").await;
    assert_eq!(
        payments.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
        vec![id(2).to_string(), id(5).to_string()]
    );
    assert!(payments[0].1.contains("amount"), "{payments:?}");
    let inbox = quarantined(&t, "webhook_inbox").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].0, id(8).to_string());
    assert!(inbox[0].1.contains("attempts"), "{inbox:?}");

    // Set aside for good: later passes neither fail on them nor take them again.
    assert_eq!(
        repo.stale_intents(at(1_000), 10)
            .await
            .expect("listed")
            .len(),
        2
    );
    let later = repo
        .claim_due(at(100_000), LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!(
        ids_of(&later.iter().map(|c| c.payment.id()).collect::<Vec<_>>()),
        HashSet::from([id(4), id(6)])
    );
    assert_eq!(
        repo.claim_webhooks(at(100_000), LEASE, 10)
            .await
            .expect("claimed")
            .len(),
        1
    );
    assert_eq!(quarantined(&t, "payments").await, payments, "marked once");
    assert_eq!(repo.count_quarantined().await.expect("counted"), 3);
}

/// The release an operator makes (`docs/operations.md`): fix the row, clear the mark.
pub(crate) async fn a_fixed_row_released_by_the_operator_is_claimed_again(t: TestDb) {
    let repo = &t.repo;
    created_upstream(repo, 1, 10, Some(100)).await;
    repo.store_webhook(&webhook(2), at(100))
        .await
        .expect("kept");
    hand_edit(&t, "payments", "currency = 'QQQ'", 1).await;
    hand_edit(&t, "webhook_inbox", "attempts = -1", 2).await;
    assert!(
        repo.claim_due(at(100), LEASE, 10)
            .await
            .expect("claimed")
            .is_empty()
    );
    assert!(
        repo.claim_webhooks(at(100), LEASE, 10)
            .await
            .expect("claimed")
            .is_empty()
    );
    assert_eq!(repo.count_quarantined().await.expect("counted"), 2);

    hand_edit(
        &t,
        "payments",
        "currency = 'USD', quarantined_at = NULL, quarantine_reason = NULL",
        1,
    )
    .await;
    hand_edit(
        &t,
        "webhook_inbox",
        "attempts = 0, quarantined_at = NULL, quarantine_reason = NULL",
        2,
    )
    .await;
    assert_eq!(repo.count_quarantined().await.expect("counted"), 0);
    // Due again once the lease the quarantining claim took has run out.
    let due = repo
        .claim_due(at(100) + LEASE, LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].payment.id(), id(1));
    let webhooks = repo
        .claim_webhooks(at(100) + LEASE, LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!(
        webhooks.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![id(2)]
    );
}

/// The reconciler's scans of *initiated* and *unknown* rows are served by their partial
/// indexes, not a scan of every payment.
pub(crate) async fn stale_intent_and_unknown_scans_use_their_partial_indexes(t: TestDb) {
    let conn = sea_orm::Database::connect(t.url.as_str())
        .await
        .expect("raw connection opens");
    let backend = conn.get_database_backend();
    let (prefix, setup) = match t.db.backend() {
        Backend::Sqlite => ("EXPLAIN QUERY PLAN", None),
        // The tables are tiny: forbid the sequential scan so the index, if usable, is used.
        Backend::Postgres => ("EXPLAIN", Some("SET enable_seqscan = off")),
    };
    if let Some(sql) = setup {
        conn.execute_unprepared(sql).await.expect("planner setting");
    }
    for (query, index) in [
        (
            "SELECT * FROM payments WHERE create_outcome = 'initiated' AND created_at < 100 \
             AND quarantined_at IS NULL ORDER BY created_at, id LIMIT 10",
            "payments_initiated_created_at_idx",
        ),
        (
            "SELECT COUNT(*) FROM payments WHERE create_outcome = 'unknown'",
            "payments_unknown_idx",
        ),
        // Abandoning a payment releases its key by payment.
        (
            "SELECT * FROM idempotency_keys WHERE internal_payment_id = 'x'",
            "idempotency_keys_internal_payment_id_idx",
        ),
    ] {
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_string(
                backend,
                format!("{prefix} {query}"),
            ))
            .await
            .expect("explained");
        let plan: Vec<String> = rows
            .iter()
            .map(|r| {
                let column = match t.db.backend() {
                    Backend::Sqlite => 3,
                    Backend::Postgres => 0,
                };
                r.try_get_by_index::<String>(column).expect("plan text")
            })
            .collect();
        assert!(
            plan.iter().any(|line| line.contains(index)),
            "{query}: {plan:#?}"
        );
    }
    conn.close().await.expect("raw connection closes");
}

/// Runs `body` on this thread with a Prometheus recorder of its own, and returns what it
/// recorded (this test's counters, whatever other tests do meanwhile).
#[cfg(feature = "sqlite")]
fn recorded<F: std::future::Future<Output = ()>>(body: impl FnOnce() -> F) -> String {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(body()));
    handle.render()
}

/// Each quarantined row is counted once, under its table, however many passes skip it.
#[cfg(feature = "sqlite")]
#[test]
fn quarantined_rows_are_counted_once_per_row_and_table() {
    let text = recorded(|| {
        crate::support::on_sqlite(
            unreadable_rows_are_quarantined_and_the_rest_of_the_batch_proceeds,
        )
    });
    assert!(
        text.contains(r#"ivpay_quarantined_rows_total{table="payments"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ivpay_quarantined_rows_total{table="webhook_inbox"} 1"#),
        "{text}"
    );
}
