//! The ledger checker: three records joined after a scenario — what the clients were
//! answered (kept by the harness), what the sandbox created and delivered (its truth), and
//! the service's database — and every promise of issue #11 checked against them.
//!
//! The checker is pure: it reads a [`Ledger`] and returns what it checked and every
//! violation, so its tests feed it ledgers with one violation of each kind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// IVPAY's final statuses.
pub(crate) fn is_final(status: &str) -> bool {
    status == "PAID" || status == "TIMEOUT"
}

/// One create request as the client saw it (one attempt; retries are separate entries).
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientCreate {
    /// The `Idempotency-Key` sent, if any.
    pub(crate) key: Option<String>,
    /// The `foreign_id` sent, if any (the harness makes one per logical request).
    pub(crate) foreign_id: Option<String>,
    /// The HTTP status answered; `None` when the client got no answer (reset, kill,
    /// gave up).
    pub(crate) status: Option<u16>,
    /// Our internal id from the answer (`data.id`, or an error body's `id`).
    pub(crate) internal_id: Option<String>,
    /// IVPAY's id from a 2xx answer (`data.payment_id`).
    pub(crate) payment_id: Option<String>,
}

/// A status a client read from the service, in the order the harness saw them.
#[derive(Clone, Debug)]
pub(crate) struct ClientRead {
    /// IVPAY's id of the payment read.
    pub(crate) payment_id: String,
    /// The status answered.
    pub(crate) status: String,
    /// When the request left and when its answer came, in the harness's microseconds:
    /// only a read sent after another was answered must agree with it.
    pub(crate) sent: u64,
    pub(crate) answered: u64,
}

/// A payment as the sandbox (IVPAY's truth) has it.
#[derive(Clone, Debug)]
pub(crate) struct UpstreamPayment {
    pub(crate) payment_id: String,
    pub(crate) foreign_id: Option<String>,
    pub(crate) status: String,
}

/// A webhook the service answered 200 (sent by the sandbox, or by the harness itself).
#[derive(Clone, Debug)]
pub(crate) struct AcceptedWebhook {
    pub(crate) payment_id: String,
    /// The body exactly as sent.
    pub(crate) body: String,
}

/// A row of `payments`.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) ivpay_payment_id: Option<String>,
    pub(crate) foreign_id: Option<String>,
    pub(crate) outcome: String,
    /// Why the create ended as it did (`create_outcome_reason`), if noted.
    pub(crate) reason: Option<String>,
    pub(crate) status: String,
}

/// A row of `payment_events`, in insertion order.
#[derive(Clone, Debug)]
pub(crate) struct EventRow {
    pub(crate) internal_payment_id: Option<String>,
    pub(crate) ivpay_payment_id: String,
    pub(crate) from_status: Option<String>,
    pub(crate) to_status: String,
    pub(crate) outcome: String,
    /// The webhook body kept as evidence, when the event came from one.
    pub(crate) webhook_body: Option<String>,
}

/// The `GET`s IVPAY answered for one payment in a phase where only the reconcilers ask
/// (no webhooks, no client refreshes): milliseconds since the phase began.
#[derive(Clone, Debug)]
pub(crate) struct QuietPolls {
    pub(crate) payment_id: String,
    pub(crate) gets_ms: Vec<u64>,
}

/// The closest two reconciliation checks of one payment may be: the shortest back-off
/// (`reconciler.first_check_secs` less its 20 % jitter, 800 ms in the harness) with room
/// for scheduling. Two instances checking one payment in the same cycle ask within
/// milliseconds of each other.
pub(crate) const MIN_POLL_GAP_MS: u64 = 500;

/// A counter the service reports next to what the rows say it should be.
#[derive(Clone, Debug)]
pub(crate) struct Counter {
    pub(crate) name: String,
    pub(crate) reported: u64,
    pub(crate) from_rows: u64,
}

/// Everything the checker joins.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) creates: Vec<ClientCreate>,
    pub(crate) reads: Vec<ClientRead>,
    pub(crate) upstream: Vec<UpstreamPayment>,
    pub(crate) webhooks: Vec<AcceptedWebhook>,
    pub(crate) rows: Vec<Row>,
    pub(crate) events: Vec<EventRow>,
    /// Raw bodies still waiting in `webhook_inbox`.
    pub(crate) inbox: Vec<String>,
    pub(crate) counters: Vec<Counter>,
    /// SQLite's `PRAGMA integrity_check` answer (`None` on PostgreSQL).
    pub(crate) integrity: Option<String>,
    /// With several instances: the payments of the quiet phase and IVPAY's `GET`s of each.
    pub(crate) quiet_polls: Vec<QuietPolls>,
    /// Whether one endpoint listened to every type: then the outbox is checked.
    pub(crate) notify: bool,
    /// The outbox: every notification row.
    pub(crate) notices: Vec<NoticeRow>,
    /// What the endpoint received (answered 2xx or not).
    pub(crate) received: Vec<ReceivedNotice>,
}

/// A row of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NoticeRow {
    pub(crate) payment: String,
    /// `payment.created`, ...
    pub(crate) kind: String,
    /// `pending`, `delivered`, ...
    pub(crate) state: String,
    pub(crate) message_id: String,
}

/// A notice as the endpoint got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReceivedNotice {
    pub(crate) message_id: String,
    pub(crate) kind: String,
    pub(crate) payment: String,
    /// Its signature verified with the endpoint's secret.
    pub(crate) signed: bool,
    /// The endpoint answered it 2xx.
    pub(crate) taken: bool,
}

/// The promises, one per kind of violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Invariant {
    /// Every 2xx create is stored with its upstream id.
    CreateStored,
    /// No idempotency key ever produced two upstream payments.
    OnePaymentPerKey,
    /// Every upstream payment is linked to exactly one row, or is an orphan with a
    /// reason (a row whose create outcome is `unknown`, and no webhook naming the payment
    /// ever reached the service: with one, it must be linked); no row stays `initiated`.
    Linked,
    /// Every final status equals the sandbox's.
    FinalMatches,
    /// No final status ever changed, and no transition was applied twice.
    FinalNeverChanges,
    /// No webhook answered 200 is missing.
    WebhookKept,
    /// Counters agree with the rows.
    CountersAgree,
    /// SQLite's `integrity_check` says `ok`.
    StorageIntact,
    /// With several instances, each payment is checked with IVPAY at most once per
    /// reconciliation cycle (and at least once while it is open).
    OneGetPerCycle,
    /// Every change a row shows is announced in the outbox (created or linked, rejected,
    /// unknown, abandoned, paid, timeout), and no notice announces what the row does not
    /// show.
    NoticeWritten,
    /// Every notice reached the endpoint, signed, and the endpoint took it; nothing it
    /// received was invented.
    NoticeDelivered,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateStored => "2xx create stored with its upstream id",
            Self::OnePaymentPerKey => "one upstream payment per idempotency key",
            Self::Linked => "upstream payment linked or an orphan with a reason",
            Self::FinalMatches => "final status equals the sandbox's",
            Self::FinalNeverChanges => "final status never changed",
            Self::WebhookKept => "webhook answered 200 kept",
            Self::CountersAgree => "counters agree with the rows",
            Self::StorageIntact => "sqlite integrity_check",
            Self::OneGetPerCycle => "at most one GET per payment per cycle",
            Self::NoticeWritten => "every change announced, nothing else",
            Self::NoticeDelivered => "every notice delivered, signed",
        })
    }
}

/// One broken promise, with what shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) invariant: Invariant,
    pub(crate) detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// What a check found.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    /// Individual assertions made (one per answer, payment, row, webhook, counter...).
    pub(crate) checked: u64,
    pub(crate) violations: Vec<Violation>,
    /// Upstream payments with no row of their own, each with its reason.
    pub(crate) orphans: Vec<(String, String)>,
}

impl Report {
    fn violation(&mut self, invariant: Invariant, detail: String) {
        self.violations.push(Violation { invariant, detail });
    }
}

/// Checks every invariant. Call it once the scenario has settled: every upstream payment
/// final and the service given time to learn it.
pub(crate) fn check(ledger: &Ledger) -> Report {
    let mut report = Report::default();
    let by_upstream_id: BTreeMap<&str, Vec<&Row>> =
        ledger.rows.iter().fold(BTreeMap::new(), |mut m, r| {
            if let Some(p) = r.ivpay_payment_id.as_deref() {
                m.entry(p).or_insert_with(Vec::new).push(r);
            }
            m
        });
    let upstream: BTreeMap<&str, &UpstreamPayment> = ledger
        .upstream
        .iter()
        .map(|p| (p.payment_id.as_str(), p))
        .collect();

    // 1. every 2xx create is stored with its upstream id
    for c in ledger
        .creates
        .iter()
        .filter(|c| c.status.is_some_and(|s| (200..300).contains(&s)))
    {
        report.checked += 1;
        let Some(pid) = c.payment_id.as_deref() else {
            report.violation(
                Invariant::CreateStored,
                format!("2xx create without payment_id: {c:?}"),
            );
            continue;
        };
        match by_upstream_id.get(pid).map(Vec::as_slice) {
            Some([row]) => {
                if c.internal_id.as_deref().is_some_and(|id| id != row.id) {
                    report.violation(
                        Invariant::CreateStored,
                        format!(
                            "answered id {:?} for {pid}, stored as row {}",
                            c.internal_id, row.id
                        ),
                    );
                } else if row.outcome != "created" {
                    report.violation(
                        Invariant::CreateStored,
                        format!(
                            "answered 2xx for {pid}, row {} has outcome {}",
                            row.id, row.outcome
                        ),
                    );
                }
            }
            _ => report.violation(
                Invariant::CreateStored,
                format!(
                    "answered 2xx with {pid} (key {:?}), no single row holds it",
                    c.key
                ),
            ),
        }
    }

    // 2. no idempotency key ever produced two upstream payments: the harness sends one
    // foreign_id per key, so the key's payments are the sandbox's with that foreign_id.
    let keyed: BTreeMap<&str, &str> = ledger
        .creates
        .iter()
        .filter_map(|c| Some((c.foreign_id.as_deref()?, c.key.as_deref()?)))
        .collect();
    let mut per_foreign: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &ledger.upstream {
        if let Some(f) = p.foreign_id.as_deref() {
            per_foreign.entry(f).or_default().push(&p.payment_id);
        }
    }
    for (foreign, key) in &keyed {
        report.checked += 1;
        let made = per_foreign.get(foreign).map_or(0, Vec::len);
        if made > 1 {
            report.violation(
                Invariant::OnePaymentPerKey,
                format!(
                    "key {key} produced {made} upstream payments: {:?}",
                    per_foreign[foreign]
                ),
            );
        }
    }

    // 3. every upstream payment linked to exactly one row, or an orphan with a reason
    for p in &ledger.upstream {
        report.checked += 1;
        match by_upstream_id
            .get(p.payment_id.as_str())
            .map_or(0, Vec::len)
        {
            1 => {}
            0 => {
                // Our id travels as foreign_id when the client gave none.
                let reason = ledger.rows.iter().find(|r| {
                    r.outcome == "unknown"
                        && p.foreign_id.is_some()
                        && (r.foreign_id == p.foreign_id || Some(&r.id) == p.foreign_id.as_ref())
                });
                // A webhook kept for it carried its IVPAY id and our foreign_id: the
                // service had what it needs to link it ("kept and linked later").
                let heard = ledger.webhooks.iter().any(|w| w.payment_id == p.payment_id);
                match reason {
                    Some(r) if heard => report.violation(
                        Invariant::Linked,
                        format!(
                            "upstream {} stays unlinked from unknown-outcome row {} ({}) although a webhook for it was answered 200",
                            p.payment_id,
                            r.id,
                            r.reason.as_deref().map_or("no reason noted".into(), |why| why
                                .chars()
                                .take(90)
                                .collect::<String>())
                        ),
                    ),
                    Some(r) => report.orphans.push((
                        p.payment_id.clone(),
                        format!("row {} has outcome unknown and no webhook named it", r.id),
                    )),
                    None => report.violation(
                        Invariant::Linked,
                        format!(
                            "upstream {} (foreign_id {:?}) has no row and no unknown-outcome row to explain it",
                            p.payment_id, p.foreign_id
                        ),
                    ),
                }
            }
            n => report.violation(
                Invariant::Linked,
                format!("upstream {} is held by {n} rows", p.payment_id),
            ),
        }
    }
    for r in &ledger.rows {
        report.checked += 1;
        if r.outcome == "initiated" {
            report.violation(
                Invariant::Linked,
                format!("row {} still initiated after recovery", r.id),
            );
        }
        if let Some(pid) = r.ivpay_payment_id.as_deref()
            && !upstream.contains_key(pid)
        {
            report.violation(
                Invariant::Linked,
                format!("row {} names {pid}, unknown upstream", r.id),
            );
        }
    }

    // 4. every final status equals the sandbox's
    for (pid, rows) in &by_upstream_id {
        let Some(truth) = upstream.get(pid) else {
            continue;
        };
        for r in rows {
            report.checked += 1;
            if r.status != truth.status {
                report.violation(
                    Invariant::FinalMatches,
                    format!(
                        "row {} ({pid}) is {}, the sandbox says {}",
                        r.id, r.status, truth.status
                    ),
                );
            }
        }
    }

    // 5. no final status ever changed: not in the events, not in what clients read; and
    // no transition applied twice (double processing)
    let mut applied: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for e in ledger.events.iter().filter(|e| e.outcome == "applied") {
        report.checked += 1;
        if let Some(from) = e.from_status.as_deref()
            && is_final(from)
            && from != e.to_status
        {
            report.violation(
                Invariant::FinalNeverChanges,
                format!(
                    "event on {} applied {from} -> {}",
                    e.ivpay_payment_id, e.to_status
                ),
            );
        }
        let who = e
            .internal_payment_id
            .as_deref()
            .unwrap_or(&e.ivpay_payment_id);
        *applied.entry((who, e.to_status.as_str())).or_default() += 1;
    }
    for ((who, to), n) in applied {
        if n > 1 {
            report.violation(
                Invariant::FinalNeverChanges,
                format!("transition to {to} applied {n} times on payment {who}"),
            );
        }
    }
    let mut reads: Vec<&ClientRead> = ledger.reads.iter().collect();
    reads.sort_by_key(|r| r.sent);
    let mut finals: BTreeMap<&str, &ClientRead> = BTreeMap::new();
    for read in reads {
        report.checked += 1;
        if let Some(first) = finals.get(read.payment_id.as_str())
            && read.sent > first.answered
            && read.status != first.status
        {
            report.violation(
                Invariant::FinalNeverChanges,
                format!(
                    "{} read {}, later {}",
                    read.payment_id, first.status, read.status
                ),
            );
        }
        if is_final(&read.status) {
            let earlier = finals
                .get(read.payment_id.as_str())
                .is_some_and(|f| f.answered <= read.answered);
            if !earlier {
                finals.insert(&read.payment_id, read);
            }
        }
    }

    // 6. no webhook answered 200 is missing: its body is an event's evidence, or still
    // waits in the inbox
    let kept: BTreeSet<(&str, &str)> = ledger
        .events
        .iter()
        .filter_map(|e| Some((e.ivpay_payment_id.as_str(), e.webhook_body.as_deref()?)))
        .collect();
    let inbox: BTreeSet<&str> = ledger.inbox.iter().map(String::as_str).collect();
    for w in &ledger.webhooks {
        report.checked += 1;
        if !kept.contains(&(w.payment_id.as_str(), w.body.as_str()))
            && !inbox.contains(w.body.as_str())
        {
            report.violation(
                Invariant::WebhookKept,
                format!(
                    "webhook for {} answered 200, kept nowhere: {}",
                    w.payment_id, w.body
                ),
            );
        }
    }

    // 7. counters agree with the rows
    for c in &ledger.counters {
        report.checked += 1;
        if c.reported != c.from_rows {
            report.violation(
                Invariant::CountersAgree,
                format!(
                    "{} reports {}, the rows say {}",
                    c.name, c.reported, c.from_rows
                ),
            );
        }
    }

    if let Some(answer) = &ledger.integrity {
        report.checked += 1;
        if answer != "ok" {
            report.violation(
                Invariant::StorageIntact,
                format!("integrity_check: {answer}"),
            );
        }
    }

    for polls in &ledger.quiet_polls {
        report.checked += 1;
        if polls.gets_ms.is_empty() {
            report.violation(
                Invariant::OneGetPerCycle,
                format!("{} was never checked with IVPAY", polls.payment_id),
            );
        }
        let mut gets = polls.gets_ms.clone();
        gets.sort_unstable();
        for pair in gets.windows(2) {
            report.checked += 1;
            if pair[1] - pair[0] < MIN_POLL_GAP_MS {
                report.violation(
                    Invariant::OneGetPerCycle,
                    format!(
                        "{} checked at {} ms and again at {} ms",
                        polls.payment_id, pair[0], pair[1]
                    ),
                );
            }
        }
    }
    if ledger.notify {
        check_notices(ledger, &mut report);
    }
    report
}

/// The notices a row's state must have been announced by, each as one of a few types.
fn announced(row: &Row) -> Vec<&'static [&'static str]> {
    let mut wanted: Vec<&'static [&'static str]> = Vec::new();
    match row.outcome.as_str() {
        "created" => wanted.push(&["payment.created", "payment.linked"]),
        "rejected" => wanted.push(&["payment.rejected"]),
        "abandoned" => wanted.push(&["payment.abandoned"]),
        "unknown" => wanted.push(&["payment.unknown"]),
        _ => {}
    }
    match row.status.as_str() {
        "PAID" if row.outcome == "created" => wanted.push(&["payment.paid"]),
        "TIMEOUT" if row.outcome == "created" => wanted.push(&["payment.timeout"]),
        _ => {}
    }
    wanted
}

/// Whether a notice of `kind` fits what the row shows (a pending, linked or unknown notice
/// may be history: the row moved on).
fn fits(row: &Row, kind: &str) -> bool {
    match kind {
        "payment.paid" => row.status == "PAID",
        "payment.timeout" => row.status == "TIMEOUT",
        "payment.pending" | "payment.created" => row.outcome == "created",
        "payment.linked" => row.outcome == "created",
        "payment.unknown" => matches!(row.outcome.as_str(), "unknown" | "created" | "abandoned"),
        "payment.rejected" => row.outcome == "rejected",
        "payment.abandoned" => row.outcome == "abandoned",
        _ => false,
    }
}

fn check_notices(ledger: &Ledger, report: &mut Report) {
    let mut by_payment: BTreeMap<&str, Vec<&NoticeRow>> = BTreeMap::new();
    for n in &ledger.notices {
        by_payment.entry(n.payment.as_str()).or_default().push(n);
    }
    let rows: BTreeMap<&str, &Row> = ledger.rows.iter().map(|r| (r.id.as_str(), r)).collect();
    for row in &ledger.rows {
        let written = by_payment.get(row.id.as_str()).cloned().unwrap_or_default();
        for kinds in announced(row) {
            report.checked += 1;
            if !written.iter().any(|n| kinds.contains(&n.kind.as_str())) {
                report.violation(
                    Invariant::NoticeWritten,
                    format!(
                        "{} ({} {}) has no {} notice (has {:?})",
                        row.id,
                        row.outcome,
                        row.status,
                        kinds.join(" or "),
                        written.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>()
                    ),
                );
            }
        }
    }
    for n in &ledger.notices {
        report.checked += 1;
        match rows.get(n.payment.as_str()) {
            Some(row) if fits(row, &n.kind) => {}
            Some(row) => report.violation(
                Invariant::NoticeWritten,
                format!(
                    "{} announces {} but the row is {} {}",
                    n.payment, n.kind, row.outcome, row.status
                ),
            ),
            None => report.violation(
                Invariant::NoticeWritten,
                format!("{} announces {} for no row", n.message_id, n.kind),
            ),
        }
    }
    let outbox: BTreeMap<&str, &NoticeRow> = ledger
        .notices
        .iter()
        .map(|n| (n.message_id.as_str(), n))
        .collect();
    let mut taken: BTreeMap<&str, bool> = BTreeMap::new();
    for r in &ledger.received {
        report.checked += 1;
        if !r.signed {
            report.violation(
                Invariant::NoticeDelivered,
                format!(
                    "{} arrived with a signature that does not verify",
                    r.message_id
                ),
            );
        }
        match outbox.get(r.message_id.as_str()) {
            Some(n) if n.kind == r.kind && n.payment == r.payment => {}
            _ => report.violation(
                Invariant::NoticeDelivered,
                format!(
                    "received {} ({} of {}) that the outbox does not hold",
                    r.message_id, r.kind, r.payment
                ),
            ),
        }
        *taken.entry(r.message_id.as_str()).or_default() |= r.taken;
    }
    for n in &ledger.notices {
        report.checked += 1;
        if n.state != "delivered" || !taken.get(n.message_id.as_str()).copied().unwrap_or(false) {
            report.violation(
                Invariant::NoticeDelivered,
                format!(
                    "{} ({} of {}) is {} and the endpoint took it: {}",
                    n.message_id,
                    n.kind,
                    n.payment,
                    n.state,
                    taken.get(n.message_id.as_str()).copied().unwrap_or(false)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"payment_id":"p1","foreign_id":"f1","status":"PAID","processed_at":5}"#;

    fn read(status: &str, sent: u64, answered: u64) -> ClientRead {
        ClientRead {
            payment_id: "p1".into(),
            status: status.into(),
            sent,
            answered,
        }
    }

    /// A run where everything held: one keyed create, paid by webhook, read twice.
    fn clean() -> Ledger {
        Ledger {
            creates: vec![ClientCreate {
                key: Some("k1".into()),
                foreign_id: Some("f1".into()),
                status: Some(200),
                internal_id: Some("r1".into()),
                payment_id: Some("p1".into()),
            }],
            reads: vec![
                read("CREATED", 1, 2),
                read("PAID", 3, 4),
                read("PAID", 5, 6),
                // sent before the PAID answer came: may still see CREATED
                read("CREATED", 2, 7),
            ],
            upstream: vec![UpstreamPayment {
                payment_id: "p1".into(),
                foreign_id: Some("f1".into()),
                status: "PAID".into(),
            }],
            webhooks: vec![AcceptedWebhook {
                payment_id: "p1".into(),
                body: BODY.into(),
            }],
            rows: vec![Row {
                id: "r1".into(),
                ivpay_payment_id: Some("p1".into()),
                foreign_id: Some("f1".into()),
                outcome: "created".into(),
                reason: None,
                status: "PAID".into(),
            }],
            events: vec![EventRow {
                internal_payment_id: Some("r1".into()),
                ivpay_payment_id: "p1".into(),
                from_status: Some("CREATED".into()),
                to_status: "PAID".into(),
                outcome: "applied".into(),
                webhook_body: Some(BODY.into()),
            }],
            inbox: vec![],
            counters: vec![Counter {
                name: "unknown_payments".into(),
                reported: 0,
                from_rows: 0,
            }],
            integrity: Some("ok".into()),
            quiet_polls: vec![QuietPolls {
                payment_id: "p1".into(),
                gets_ms: vec![900, 2100, 3900],
            }],
            notify: false,
            notices: vec![
                notice("m1", "payment.created", "delivered"),
                notice("m2", "payment.paid", "delivered"),
            ],
            received: vec![
                received("m1", "payment.created", true),
                received("m2", "payment.paid", false),
                received("m2", "payment.paid", true),
            ],
        }
    }

    fn notice(id: &str, kind: &str, state: &str) -> NoticeRow {
        NoticeRow {
            payment: "r1".into(),
            kind: kind.into(),
            state: state.into(),
            message_id: id.into(),
        }
    }

    fn received(id: &str, kind: &str, taken: bool) -> ReceivedNotice {
        ReceivedNotice {
            message_id: id.into(),
            kind: kind.into(),
            payment: "r1".into(),
            signed: true,
            taken,
        }
    }

    fn notifying() -> Ledger {
        Ledger {
            notify: true,
            ..clean()
        }
    }

    #[test]
    fn a_change_without_its_notice_or_a_notice_without_its_change_is_caught() {
        assert_eq!(violated(&notifying()), vec![]);
        let mut l = notifying();
        l.notices.retain(|n| n.kind != "payment.paid");
        l.received.retain(|r| r.kind != "payment.paid");
        assert_eq!(violated(&l), vec![Invariant::NoticeWritten]);
        let mut l = notifying();
        l.notices.push(notice("m3", "payment.timeout", "delivered"));
        l.received.push(received("m3", "payment.timeout", true));
        assert_eq!(violated(&l), vec![Invariant::NoticeWritten]);
    }

    #[test]
    fn a_notice_not_delivered_unsigned_or_invented_is_caught() {
        let mut l = notifying();
        l.notices[1].state = "pending".into();
        assert_eq!(violated(&l), vec![Invariant::NoticeDelivered]);
        let mut l = notifying();
        l.received
            .retain(|r| !(r.kind == "payment.paid" && r.taken));
        assert_eq!(violated(&l), vec![Invariant::NoticeDelivered]);
        let mut l = notifying();
        l.received[0].signed = false;
        assert_eq!(violated(&l), vec![Invariant::NoticeDelivered]);
        let mut l = notifying();
        l.received.push(received("m9", "payment.paid", true));
        assert_eq!(violated(&l), vec![Invariant::NoticeDelivered]);
    }

    fn violated(ledger: &Ledger) -> Vec<Invariant> {
        let mut found: Vec<_> = check(ledger)
            .violations
            .iter()
            .map(|v| v.invariant)
            .collect();
        found.dedup();
        found
    }

    #[test]
    fn a_clean_ledger_has_no_violation() {
        let report = check(&clean());
        assert_eq!(report.violations, vec![]);
        assert!(report.checked >= 10, "{report:?}");
    }

    #[test]
    fn a_2xx_create_without_its_row_is_caught() {
        let mut l = clean();
        l.rows[0].ivpay_payment_id = None;
        l.events.clear();
        l.webhooks.clear();
        assert!(violated(&l).contains(&Invariant::CreateStored));
    }

    #[test]
    fn a_2xx_create_answered_with_another_rows_id_is_caught() {
        let mut l = clean();
        l.creates[0].internal_id = Some("r2".into());
        assert_eq!(violated(&l), vec![Invariant::CreateStored]);
    }

    #[test]
    fn a_key_that_made_two_upstream_payments_is_caught() {
        let mut l = clean();
        l.upstream.push(UpstreamPayment {
            payment_id: "p2".into(),
            foreign_id: Some("f1".into()),
            status: "TIMEOUT".into(),
        });
        l.rows.push(Row {
            id: "r2".into(),
            ivpay_payment_id: Some("p2".into()),
            foreign_id: Some("f1".into()),
            outcome: "created".into(),
            reason: None,
            status: "TIMEOUT".into(),
        });
        assert_eq!(violated(&l), vec![Invariant::OnePaymentPerKey]);
    }

    #[test]
    fn an_upstream_payment_with_no_row_is_caught_unless_an_unknown_row_explains_it() {
        let mut l = clean();
        l.upstream.push(UpstreamPayment {
            payment_id: "p3".into(),
            foreign_id: Some("r3".into()),
            status: "TIMEOUT".into(),
        });
        assert_eq!(violated(&l), vec![Invariant::Linked]);

        // our own id travelled as foreign_id, and the row says its outcome is unknown
        l.rows.push(Row {
            id: "r3".into(),
            ivpay_payment_id: None,
            foreign_id: None,
            outcome: "unknown".into(),
            reason: None,
            status: "CREATED".into(),
        });
        let report = check(&l);
        assert_eq!(report.violations, vec![]);
        assert_eq!(report.orphans.len(), 1);

        // but once a webhook naming it was answered 200, it must be linked
        l.webhooks.push(AcceptedWebhook {
            payment_id: "p3".into(),
            body: r#"{"payment_id":"p3","foreign_id":"r3","status":"CREATED"}"#.into(),
        });
        l.events.push(EventRow {
            internal_payment_id: None,
            ivpay_payment_id: "p3".into(),
            from_status: None,
            to_status: "CREATED".into(),
            outcome: "unknown_payment".into(),
            webhook_body: Some(l.webhooks[1].body.clone()),
        });
        assert_eq!(violated(&l), vec![Invariant::Linked]);
    }

    #[test]
    fn an_upstream_payment_held_by_two_rows_is_caught() {
        let mut l = clean();
        let mut twin = l.rows[0].clone();
        twin.id = "r9".into();
        l.rows.push(twin);
        assert!(violated(&l).contains(&Invariant::Linked));
    }

    #[test]
    fn a_row_left_initiated_is_caught() {
        let mut l = clean();
        l.rows.push(Row {
            id: "r4".into(),
            ivpay_payment_id: None,
            foreign_id: Some("f4".into()),
            outcome: "initiated".into(),
            reason: None,
            status: "CREATED".into(),
        });
        assert_eq!(violated(&l), vec![Invariant::Linked]);
    }

    #[test]
    fn a_final_status_other_than_the_sandboxs_is_caught() {
        let mut l = clean();
        l.upstream[0].status = "TIMEOUT".into();
        assert_eq!(violated(&l), vec![Invariant::FinalMatches]);
    }

    #[test]
    fn a_final_status_changed_in_the_events_is_caught() {
        let mut l = clean();
        l.events.push(EventRow {
            internal_payment_id: Some("r1".into()),
            ivpay_payment_id: "p1".into(),
            from_status: Some("PAID".into()),
            to_status: "TIMEOUT".into(),
            outcome: "applied".into(),
            webhook_body: None,
        });
        assert_eq!(violated(&l), vec![Invariant::FinalNeverChanges]);
    }

    #[test]
    fn a_transition_applied_twice_is_caught() {
        let mut l = clean();
        let again = l.events[0].clone();
        l.events.push(again);
        assert_eq!(violated(&l), vec![Invariant::FinalNeverChanges]);
    }

    #[test]
    fn a_final_status_read_then_changed_is_caught() {
        let mut l = clean();
        l.reads.push(read("TIMEOUT", 8, 9));
        assert_eq!(violated(&l), vec![Invariant::FinalNeverChanges]);
    }

    #[test]
    fn a_webhook_answered_200_and_kept_nowhere_is_caught() {
        let mut l = clean();
        l.events[0].webhook_body = None;
        assert_eq!(violated(&l), vec![Invariant::WebhookKept]);
        // still in the inbox counts as kept
        l.inbox.push(BODY.into());
        assert_eq!(violated(&l), vec![]);
    }

    #[test]
    fn a_counter_that_disagrees_with_the_rows_is_caught() {
        let mut l = clean();
        l.counters[0].reported = 1;
        assert_eq!(violated(&l), vec![Invariant::CountersAgree]);
    }

    #[test]
    fn a_failed_integrity_check_is_caught() {
        let mut l = clean();
        l.integrity = Some("*** in database main ***".into());
        assert_eq!(violated(&l), vec![Invariant::StorageIntact]);
    }

    #[test]
    fn two_checks_of_one_payment_in_one_cycle_are_caught() {
        let mut l = clean();
        l.quiet_polls[0].gets_ms = vec![900, 905, 2100];
        assert_eq!(violated(&l), vec![Invariant::OneGetPerCycle]);
        l.quiet_polls[0].gets_ms = vec![];
        assert_eq!(
            violated(&l),
            vec![Invariant::OneGetPerCycle],
            "never checked"
        );
    }
}
