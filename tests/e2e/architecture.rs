//! The dependency rule, checked against `cargo metadata` rather than trusted.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Crates that do IO or bring a runtime; the domain must reach none of them.
const IO_CRATES: [&str; 6] = ["tokio", "reqwest", "sea-orm", "sqlx", "axum", "hyper"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package name of every node, and the normal (non-dev, non-build) dependencies of each.
fn normal_graph(meta: &Value) -> (HashMap<String, String>, HashMap<String, Vec<String>>) {
    let names: HashMap<String, String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                p["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    let edges = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve graph")
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .expect("dep kinds")
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().expect("pkg").to_owned())
                .collect();
            (n["id"].as_str().expect("id").to_owned(), deps)
        })
        .collect();
    (names, edges)
}

fn reachable(meta: &Value, root: &str) -> BTreeSet<String> {
    let (names, edges) = normal_graph(meta);
    let start = names
        .iter()
        .find(|(_, name)| name.as_str() == root)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("{root} is a workspace member"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in edges.get(&id).into_iter().flatten() {
            if seen.insert(names[dep].clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn the_domain_reaches_no_io_crate() {
    let deps = reachable(&metadata(), "ivpay-domain");
    let bad: Vec<_> = IO_CRATES.iter().filter(|c| deps.contains(**c)).collect();
    assert!(
        bad.is_empty(),
        "ivpay-domain reaches {bad:?} through {deps:?}"
    );
    assert!(
        deps.contains("rust_decimal"),
        "the graph was read: {deps:?}"
    );
}

/// Every library crate: what the composition root and the embedding examples may use.
const LIBRARIES: &[&str] = &[
    "ivpay-domain",
    "ivpay-ports",
    "ivpay-service",
    "ivpay-http-adapter",
    "ivpay-persistence",
    "ivpay-api",
    "ivpay-sandbox",
    "ivpay-json",
    "ivpay-signing",
];

/// Which of our crates each crate may depend on (normal dependencies): inward only, and
/// adapters side by side on the ports, never on each other or on the service.
const ALLOWED: [(&str, &[&str]); 11] = [
    ("ivpay-domain", &[]),
    ("ivpay-json", &[]),
    // Standard Webhooks signatures: pure, for the service and for merchants' receivers.
    ("ivpay-signing", &[]),
    ("ivpay-ports", &["ivpay-domain"]),
    (
        "ivpay-service",
        &["ivpay-domain", "ivpay-ports", "ivpay-signing"],
    ),
    (
        "ivpay-http-adapter",
        &["ivpay-domain", "ivpay-ports", "ivpay-json"],
    ),
    ("ivpay-persistence", &["ivpay-domain", "ivpay-ports"]),
    ("ivpay-api", &["ivpay-domain", "ivpay-ports", "ivpay-json"]),
    ("ivpay-sandbox", &["ivpay-domain"]),
    // The embedding examples: the library crates' public API, never the binary's crate.
    ("ivpay-examples", LIBRARIES),
    ("ivpay-app", LIBRARIES),
];

#[test]
fn every_crate_depends_only_on_crates_further_in() {
    let meta = metadata();
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["source"].is_null())
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .filter(|name| name.starts_with("ivpay-") && name != "ivpay-tests")
        .collect();
    let listed: BTreeSet<String> = ALLOWED.iter().map(|(c, _)| (*c).to_owned()).collect();
    assert_eq!(members, listed, "every crate has a row in ALLOWED");
    for (krate, allowed) in ALLOWED {
        let ours: BTreeSet<String> = reachable(&meta, krate)
            .into_iter()
            .filter(|dep| members.contains(dep))
            .collect();
        let extra: Vec<_> = ours
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "{krate} reaches {extra:?}");
    }
    assert!(
        reachable(&meta, "ivpay-app").contains("ivpay-persistence"),
        "the graph was read"
    );
}

#[test]
fn ports_and_service_reach_no_adapter_technology() {
    let meta = metadata();
    for inner in ["ivpay-ports", "ivpay-service"] {
        let deps = reachable(&meta, inner);
        for forbidden in ["reqwest", "sea-orm", "axum"] {
            assert!(!deps.contains(forbidden), "{inner} reaches {forbidden}");
        }
    }
}

/// The modules of one crate that a source file names through `crate::module::...`: its
/// imports of its own crate, by the top-level module they land in.
fn modules_named(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].starts_with("::") {
            found.insert(name);
        }
    }
    found
}

/// Every source file of `src`, with the top-level module it belongs to.
fn modules_of(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let top = path
                    .strip_prefix(src)
                    .expect("under src")
                    .components()
                    .next()
                    .expect("a component")
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned();
                out.push((top, path));
            }
        }
    }
    out
}

/// A circle among `edges`, if there is one.
fn find_circle(edges: &HashMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &HashMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            return Some(path[start..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let crates = workspace_root().join("crates");
    let mut modules_seen = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/ exists") {
        let src = entry.expect("dir entry").path().join("src");
        let mut edges: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (module, file) in modules_of(&src) {
            if module == "lib" || module == "main" {
                continue;
            }
            modules_seen += 1;
            let text = std::fs::read_to_string(&file).expect("readable source");
            let named: BTreeSet<String> = modules_named(&text)
                .into_iter()
                .filter(|m| *m != module)
                .collect();
            edges.entry(module).or_default().extend(named);
        }
        assert_eq!(
            find_circle(&edges),
            None,
            "modules of {} import each other in a circle",
            src.display()
        );
    }
    assert!(modules_seen > 50, "only {modules_seen} modules read");
}

#[test]
fn the_circle_finder_finds_circles() {
    let edges: HashMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let circle = find_circle(&edges).expect("a circle");
    assert_eq!(circle.len(), 3, "{circle:?}");
    assert_eq!(
        modules_named("use crate::state::AppState; crate::error::ApiError; crate::Thing"),
        ["error", "state"].into_iter().map(str::to_owned).collect()
    );
}

#[test]
fn every_crate_opens_with_a_crate_doc() {
    let crates = workspace_root().join("crates");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/ exists") {
        let dir = entry.expect("dir entry").path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let file = if lib.exists() { lib } else { main };
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{} has no lib.rs or main.rs: {e}", dir.display()));
        assert!(
            text.trim_start().starts_with("//!"),
            "{} does not open with a //! doc",
            file.display()
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} crates found");
}
