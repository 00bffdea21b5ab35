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

#[test]
fn ports_and_service_reach_no_adapter() {
    let meta = metadata();
    for inner in ["ivpay-ports", "ivpay-service"] {
        let deps = reachable(&meta, inner);
        for forbidden in [
            "ivpay-http-adapter",
            "ivpay-persistence",
            "ivpay-api",
            "ivpay-sandbox",
            "ivpay-app",
            "reqwest",
            "sea-orm",
            "axum",
        ] {
            assert!(!deps.contains(forbidden), "{inner} reaches {forbidden}");
        }
    }
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
