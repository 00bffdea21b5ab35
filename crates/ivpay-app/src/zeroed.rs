//! Every counter the service keeps, registered at 0 when the metrics recorder starts, so
//! `/metrics` shows each one (with each label value it can take) from the first scrape:
//! an alert on `increase(...)` or on a ratio can tell "none yet" from "missing".
//! `crates/ivpay-app/tests/metrics.rs` holds this list to the `counter!` calls in the code.

/// A counter's name and its labels, each with the values it takes (every combination is
/// registered; no label: one series).
pub type Counter = (
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
);

/// Counters left out, with why: their series are not known in advance.
pub const NOT_ZEROED: &[(&str, &str)] = &[(
    "ivpay_http_requests_total",
    "one series per route and status actually answered",
)];

/// The counters, each label value that can be known in advance.
pub const COUNTERS: &[Counter] = &[
    (
        "ivpay_create_outcomes_total",
        &[("outcome", &["created", "rejected", "unknown", "abandoned"])],
    ),
    (
        "ivpay_creates_total",
        &[(
            "outcome",
            &[
                "created",
                "replayed",
                "idempotency_mismatch",
                "in_flight",
                "rejected",
                "upstream_unauthorized",
                "upstream_unavailable",
                "unknown",
                "not_recorded",
                "storage_error",
                "invariant",
            ],
        )],
    ),
    (
        "ivpay_contract_drift_fields_total",
        &[("source", &["create", "get", "webhook"])],
    ),
    (
        "ivpay_contract_drift_total",
        &[
            ("kind", &["status"]),
            ("source", &["webhook", "poll", "api"]),
        ],
    ),
    (
        "ivpay_final_conflicts_total",
        &[("source", &["webhook", "poll", "api"])],
    ),
    (
        "ivpay_forbidden_total",
        &[("scope", &["create", "read", "admin"])],
    ),
    (
        "ivpay_inbox_webhooks_total",
        &[(
            "outcome",
            &[
                "processed",
                "deferred",
                "unconfirmed",
                "lease_lost",
                "failed",
                "unmatched",
                "over_budget",
            ],
        )],
    ),
    ("ivpay_inbox_errors_total", &[]),
    (
        "ivpay_notifications_total",
        &[(
            "outcome",
            &["delivered", "retry", "failed", "skipped", "lease_lost"],
        )],
    ),
    (
        "ivpay_notify_endpoints_disabled_total",
        &[("reason", &["gone", "failing"])],
    ),
    ("ivpay_notify_errors_total", &[]),
    ("ivpay_notify_busy_pauses_total", &[]),
    (
        "ivpay_quarantined_rows_total",
        &[("table", &["payments", "webhook_inbox"])],
    ),
    ("ivpay_rate_limited_total", &[]),
    (
        "ivpay_reconciler_checks_total",
        &[(
            "outcome",
            &[
                "applied",
                "failed",
                "finalized",
                "lease_lost",
                "handed_back",
            ],
        )],
    ),
    ("ivpay_reconciler_errors_total", &[]),
    ("ivpay_reconciler_recovered_total", &[]),
    ("ivpay_refresh_skipped_total", &[]),
    ("ivpay_retention_errors_total", &[]),
    (
        "ivpay_retention_purged_total",
        &[("table", &["payment_events", "notifications"])],
    ),
    ("ivpay_unknown_abandoned_total", &[]),
    ("ivpay_unknown_fields_total", &[("source", &["create"])]),
    (
        "ivpay_unknown_links_total",
        &[("outcome", &["linked", "operator", "ambiguous"])],
    ),
    ("ivpay_unknown_webhooks_expired_total", &[]),
    (
        "ivpay_upstream_calls_total",
        &[
            ("op", &["create", "get"]),
            (
                "outcome",
                &[
                    "ok",
                    "unauthorized",
                    "rejected",
                    "not_found",
                    "unavailable",
                    "protocol",
                ],
            ),
        ],
    ),
    (
        "ivpay_webhook_replays_total",
        &[("outcome", &["queued", "duplicate"])],
    ),
    (
        "ivpay_webhook_truth_total",
        &[("verdict", &["timely", "late", "lost", "disagreeing"])],
    ),
    (
        "ivpay_webhook_truth_total",
        &[("verdict", &["timely", "late", "lost", "disagreeing"])],
    ),
    (
        "ivpay_webhooks_total",
        &[(
            "outcome",
            &[
                "queued",
                "applied",
                "duplicate",
                "refused_conflicting_final",
                "refused_already_final",
                "refused_backwards",
                "unrecognized_status",
                "unknown_payment",
                "unconfirmed",
                "malformed",
                "storage_error",
                "unauthorized",
            ],
        )],
    ),
];

/// Every series of a counter: each combination of its labels' values.
pub fn series(
    labels: &[(&'static str, &'static [&'static str])],
) -> Vec<Vec<(&'static str, &'static str)>> {
    let mut all = vec![Vec::new()];
    for (key, values) in labels {
        all = all
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push((*key, *v));
                    next
                })
            })
            .collect();
    }
    all
}

/// The gauges, registered at 0 too (the reconciler and `/readyz` keep them current).
pub const GAUGES: &[Counter] = &[
    ("ivpay_unknown_payments", &[]),
    ("ivpay_quarantined_rows", &[]),
    (
        "ivpay_open_payments",
        &[("age", &["under_an_hour", "under_a_day", "older"])],
    ),
    ("ivpay_notify_backlog", &[("kind", &["owed", "pending"])]),
];

/// Sets the notification backlog's gauges.
pub(crate) fn set_backlog(backlog: &ivpay_ports::NoticeBacklog) {
    metrics::gauge!("ivpay_notify_backlog", "kind" => "owed").set(backlog.owed as f64);
    metrics::gauge!("ivpay_notify_backlog", "kind" => "pending").set(backlog.pending as f64);
}

/// Sets the gauges from a health report.
pub(crate) fn set_health(health: &ivpay_ports::Health) {
    metrics::gauge!("ivpay_unknown_payments").set(health.unknown_payments as f64);
    metrics::gauge!("ivpay_quarantined_rows").set(health.quarantined_rows as f64);
    let open = health.open_payments;
    for (age, n) in [
        ("under_an_hour", open.under_an_hour),
        ("under_a_day", open.under_a_day),
        ("older", open.older),
    ] {
        metrics::gauge!("ivpay_open_payments", "age" => age).set(n as f64);
    }
}

/// Registers every series of [`COUNTERS`] and every gauge at 0 (a no-op for one already
/// counting).
pub(crate) fn register() {
    for (name, labels) in GAUGES {
        for series in series(labels) {
            let labels: Vec<metrics::Label> = series
                .into_iter()
                .map(|(k, v)| metrics::Label::new(k, v))
                .collect();
            metrics::gauge!(*name, labels).set(0.0);
        }
    }
    for (name, labels) in COUNTERS {
        for series in series(labels) {
            let labels: Vec<metrics::Label> = series
                .into_iter()
                .map(|(k, v)| metrics::Label::new(k, v))
                .collect();
            metrics::counter!(*name, labels).increment(0);
        }
    }
}
