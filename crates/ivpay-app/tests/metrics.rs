//! Every counter is on `/metrics` from the first scrape, at 0, with each label value it can
//! take (so an alert tells "none yet" from "missing"), and the list of them is the list
//! the code counts.

use std::collections::BTreeSet;
use std::path::Path;

use ivpay_app::{App, COUNTERS, GAUGES, NOT_ZEROED, Settings, series};

/// `(name, label, value)` of every `counter!("ivpay_...")` in the crates' sources, with
/// the label's value when it is written out (`"outcome" => "linked"`).
fn counted_in_code() -> BTreeSet<(String, Option<(String, String)>)> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = BTreeSet::new();
    let mut stack = vec![crates];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with("tests") && !path.ends_with("target") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            for (at, _) in text.match_indices("counter!(\"ivpay_") {
                let call: String = text[at + "counter!(\"".len()..]
                    .chars()
                    .take_while(|c| *c != ')')
                    .collect();
                let mut parts = call.split('"');
                let name = parts.next().unwrap_or_default().to_owned();
                let rest: Vec<&str> = parts.collect();
                // `, "label" => "value"` or `, "label" => expression`
                let label = match rest.as_slice() {
                    [_, label, arrow, value, ..] if arrow.trim() == "=>" => {
                        Some(((*label).to_owned(), (*value).to_owned()))
                    }
                    _ => None,
                };
                found.insert((name, label));
            }
        }
    }
    found
}

#[test]
fn every_counter_the_code_counts_is_listed_with_its_written_out_labels() {
    let counted = counted_in_code();
    assert!(
        counted.len() > 20,
        "the scan found the counters: {counted:?}"
    );
    let listed: BTreeSet<&str> = COUNTERS.iter().map(|(name, ..)| *name).collect();
    let left_out: BTreeSet<&str> = NOT_ZEROED.iter().map(|(name, _)| *name).collect();
    for (name, label) in &counted {
        if left_out.contains(name.as_str()) {
            continue;
        }
        assert!(
            listed.contains(name.as_str()),
            "{name} is counted but not listed"
        );
        if let Some((key, value)) = label {
            let (_, labels) = COUNTERS.iter().find(|(n, ..)| n == name).expect("listed");
            let values = labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("{name} has no label {key}"));
            assert!(
                values.contains(&value.as_str()),
                "{name}{{{key}=\"{value}\"}} not listed"
            );
        }
    }
    let counted_names: BTreeSet<&str> = counted.iter().map(|(n, _)| n.as_str()).collect();
    for name in listed {
        assert!(
            counted_names.contains(name),
            "{name} is listed but nothing counts it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_counter_is_exported_at_zero_from_the_first_scrape() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().expect("address");
    settings.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ivpay.db").display()
    )
    .parse()
    .expect("a database URL");
    settings.reconciler.enabled = false;
    let app = App::build(settings).await.expect("starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    let mut checked = 0;
    for (name, labels) in COUNTERS {
        for one in series(labels) {
            let line = if one.is_empty() {
                format!("{name} 0")
            } else {
                let inner: Vec<String> = one.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                format!("{name}{{{}}} 0", inner.join(","))
            };
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} series");
    for (name, labels) in GAUGES {
        for one in series(labels) {
            let line = if one.is_empty() {
                format!("{name} 0")
            } else {
                let inner: Vec<String> = one.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                format!("{name}{{{}}} 0", inner.join(","))
            };
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
    let _ = stop.send(());
    running.await.expect("task").expect("clean stop");
}

/// The metrics the service exports: the counters, the gauges set by `/readyz`, and the
/// histograms with their Prometheus series.
fn exported() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = COUNTERS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .chain(NOT_ZEROED.iter().map(|(n, _)| (*n).to_owned()))
        .collect();
    names.extend(GAUGES.iter().map(|(g, _)| (*g).to_owned()));
    for histogram in ["ivpay_http_request_seconds", "ivpay_upstream_call_seconds"] {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{histogram}{suffix}"));
        }
    }
    names
}

/// Every `ivpay_...` metric an expression names, with the `label="value"` matchers that
/// follow it in braces.
fn named_in(expr: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ivpay_") {
        let tail = &rest[at..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let after = &tail[name.len()..];
        let mut matchers = Vec::new();
        if let Some(inner) = after.strip_prefix('{').and_then(|a| a.split_once('}')) {
            for m in inner.0.split(',') {
                if let Some((k, v)) = m.split_once('=') {
                    // Exact matchers only; `=~` and `!=` name patterns, not values.
                    if !k.ends_with('!') && !v.starts_with('~') {
                        matchers.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
                    }
                }
            }
        }
        found.push((name.clone(), matchers));
        rest = &tail[name.len()..];
    }
    found
}

/// Each matcher names a label the counter has, with a value it takes.
fn check_names(source: &str, expr: &str) -> usize {
    let exported = exported();
    let mut checked = 0;
    for (name, matchers) in named_in(expr) {
        assert!(
            exported.contains(&name),
            "{source}: {name} is not exported ({expr})"
        );
        checked += 1;
        let Some((_, labels)) = COUNTERS.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        for (key, value) in matchers {
            let values = labels
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("{source}: {name} has no label {key}"));
            assert!(
                values.contains(&value.as_str()),
                "{source}: {name}{{{key}=\"{value}\"}} never counted"
            );
        }
    }
    checked
}

fn monitoring(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/monitoring")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_dashboard_parses_and_names_only_exported_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&monitoring("ivpay-dashboard.json")).expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut checked = 0;
    for panel in panels {
        let title = panel["title"].as_str().expect("a panel title");
        assert!(
            panel["gridPos"]["w"].is_u64() && panel["type"].is_string(),
            "{title}"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} shows something");
        for t in targets {
            let expr = t["expr"].as_str().expect("a PromQL expression");
            checked += check_names(title, expr);
        }
    }
    assert!(checked >= 15, "{checked} metric references");
}

/// The rules file, read as Prometheus reads it: groups of rules, each alert with an
/// expression (on one line, or a `|` block), labels and annotations.
#[test]
fn the_alert_rules_parse_and_name_only_exported_metrics() {
    let text = monitoring("ivpay-alerts.yml");
    assert!(text.lines().any(|l| l.trim() == "groups:"), "a rules file");
    let lines: Vec<&str> = text.lines().collect();
    let mut alerts = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(name) = line.strip_prefix("- alert: ") {
            let mut expr = String::new();
            let mut severity = None;
            let mut runbook = false;
            i += 1;
            while i < lines.len() && !lines[i].trim().starts_with("- alert: ") {
                let l = lines[i].trim();
                if let Some(e) = l.strip_prefix("expr: ") {
                    if e == "|" {
                        let indent = lines[i].len() - lines[i].trim_start().len();
                        i += 1;
                        while i < lines.len()
                            && lines[i].len() - lines[i].trim_start().len() > indent
                        {
                            expr.push_str(lines[i].trim());
                            expr.push(' ');
                            i += 1;
                        }
                        continue;
                    }
                    expr = e.to_owned();
                }
                if let Some(s) = l.strip_prefix("severity: ") {
                    severity = Some(s.to_owned());
                }
                runbook |= l.starts_with("runbook: ");
                i += 1;
            }
            assert!(!expr.is_empty(), "{name} has an expression");
            assert!(
                matches!(severity.as_deref(), Some("warning" | "critical")),
                "{name} has a severity"
            );
            assert!(runbook, "{name} says what to do");
            alerts.push((name.to_owned(), expr));
            continue;
        }
        i += 1;
    }
    assert!(alerts.len() >= 10, "{} alerts", alerts.len());
    for (name, expr) in &alerts {
        assert!(check_names(name, expr) >= 1, "{name} names a metric");
    }
    // The four signals are each covered.
    let all: String = alerts.iter().map(|(_, e)| e.as_str()).collect();
    for needed in [
        "ivpay_unknown_payments",
        "ivpay_webhook_truth_total{verdict=\"lost\"}",
        "ivpay_reconciler_errors_total",
        "ivpay_notifications_total{outcome=\"failed\"}",
    ] {
        assert!(all.contains(needed), "an alert on {needed}");
    }
}
