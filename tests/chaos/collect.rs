//! Reads the service's side of the ledger straight from its database (sea-orm, raw SQL,
//! the same statements on SQLite and PostgreSQL), and the sandbox's side from its
//! snapshot and delivery log.

use ivpay_sandbox::Sandbox;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};

use crate::ledger::{Counter, EventRow, Ledger, NoticeRow, Row, UpstreamPayment};

/// Opens the database for reading (and for the poison row).
pub(crate) async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    Database::connect(url).await
}

/// Runs one statement that returns nothing.
pub(crate) async fn execute(db: &DatabaseConnection, sql: &str) -> Result<(), DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
}

/// The webhook body an event keeps as evidence: `{"webhook": "<raw body>", ...}`.
fn webhook_of(evidence: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(evidence?).ok()?;
    match value.get("webhook")? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Fills the database's part of `ledger`: payments (but the ids in `skip`), events,
/// the inbox, SQLite's integrity check, and the row count behind `unknown_payments`.
pub(crate) async fn database(
    db: &DatabaseConnection,
    ledger: &mut Ledger,
    skip: &[String],
) -> Result<(), DbErr> {
    for r in rows(
        db,
        "SELECT id, ivpay_payment_id, foreign_id, create_outcome, create_outcome_reason, status \
         FROM payments",
    )
    .await?
    {
        let id: String = r.try_get("", "id")?;
        if skip.contains(&id) {
            continue;
        }
        ledger.rows.push(Row {
            id,
            ivpay_payment_id: r.try_get("", "ivpay_payment_id")?,
            foreign_id: r.try_get("", "foreign_id")?,
            outcome: r.try_get("", "create_outcome")?,
            reason: r.try_get("", "create_outcome_reason")?,
            status: r.try_get("", "status")?,
        });
    }
    for r in rows(
        db,
        "SELECT internal_payment_id, ivpay_payment_id, from_status, to_status, outcome, evidence \
         FROM payment_events ORDER BY id",
    )
    .await?
    {
        let internal: Option<String> = r.try_get("", "internal_payment_id")?;
        if internal.as_ref().is_some_and(|id| skip.contains(id)) {
            continue;
        }
        let evidence: Option<String> = r.try_get("", "evidence")?;
        ledger.events.push(EventRow {
            internal_payment_id: internal,
            ivpay_payment_id: r.try_get("", "ivpay_payment_id")?,
            from_status: r.try_get("", "from_status")?,
            to_status: r.try_get("", "to_status")?,
            outcome: r.try_get("", "outcome")?,
            webhook_body: webhook_of(evidence.as_deref()),
        });
    }
    for r in rows(
        db,
        "SELECT internal_payment_id, event_type, state, message_id FROM notifications",
    )
    .await?
    {
        let payment: String = r.try_get("", "internal_payment_id")?;
        if skip.contains(&payment) {
            continue;
        }
        ledger.notices.push(NoticeRow {
            payment,
            kind: r.try_get("", "event_type")?,
            state: r.try_get("", "state")?,
            message_id: r.try_get("", "message_id")?,
        });
    }
    for r in rows(db, "SELECT raw FROM webhook_inbox").await? {
        ledger.inbox.push(r.try_get("", "raw")?);
    }
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        let answers = rows(db, "PRAGMA integrity_check").await?;
        let text: Vec<String> = answers
            .iter()
            .map(|r| r.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?;
        ledger.integrity = Some(text.join("; "));
    }
    Ok(())
}

/// The number of rows whose create outcome is `unknown` (what `/readyz` must report).
pub(crate) async fn unknown_rows(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let r = rows(
        db,
        "SELECT COUNT(*) AS n FROM payments WHERE create_outcome = 'unknown'",
    )
    .await?;
    let n: i64 = r.first().map_or(Ok(0), |r| r.try_get("", "n"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Non-final rows, inbox entries, and notifications still owed or to deliver: zero when
/// the service has caught up.
pub(crate) async fn backlog(db: &DatabaseConnection, skip: &[String]) -> Result<usize, DbErr> {
    let mut n = 0;
    for r in rows(
        db,
        "SELECT id FROM payments WHERE create_outcome IN ('created', 'initiated') \
         AND status NOT IN ('PAID', 'TIMEOUT')",
    )
    .await?
    {
        let id: String = r.try_get("", "id")?;
        if !skip.contains(&id) {
            n += 1;
        }
    }
    n += rows(db, "SELECT id FROM webhook_inbox").await?.len();
    n += rows(db, "SELECT id FROM notifications WHERE state = 'pending'")
        .await?
        .len();
    // Notices still owed on payments' rows, not yet written out as notifications.
    n += rows(db, "SELECT id FROM payments WHERE unannounced IS NOT NULL")
        .await?
        .len();
    Ok(n)
}

/// The sandbox's truth: every payment it created.
pub(crate) fn upstream(sandbox: &Sandbox, ledger: &mut Ledger) {
    ledger.upstream = sandbox
        .payments()
        .into_iter()
        .map(|p| UpstreamPayment {
            payment_id: p.payment_id,
            foreign_id: p.foreign_id,
            status: p.status.as_str().to_owned(),
        })
        .collect();
}

/// A counter the service reports, next to the rows' count.
pub(crate) fn counter(name: &str, reported: u64, from_rows: u64) -> Counter {
    Counter {
        name: name.to_owned(),
        reported,
        from_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::webhook_of;

    #[test]
    fn reads_the_webhook_body_kept_as_evidence() {
        let body = r#"{"payment_id":"p1","status":"PAID"}"#;
        let evidence = serde_json::json!({"webhook": body, "confirmation": "{}"}).to_string();
        assert_eq!(webhook_of(Some(&evidence)).as_deref(), Some(body));
    }

    #[test]
    fn an_event_without_a_webhook_has_no_body() {
        assert_eq!(webhook_of(Some(r#"{"confirmation":"{}"}"#)), None);
        assert_eq!(webhook_of(None), None);
        assert_eq!(webhook_of(Some("not json")), None);
    }
}
