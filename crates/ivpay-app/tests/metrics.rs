//! Every counter is on `/metrics` from the first scrape, at 0, with each label value it can
//! take (so an alert tells "none yet" from "missing"), and the list of them is the list
//! the code counts.

use std::collections::BTreeSet;
use std::path::Path;

use ivpay_app::{App, COUNTERS, NOT_ZEROED, Settings, series};

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
    let _ = stop.send(());
    running.await.expect("task").expect("clean stop");
}
