//! `chaos`: the harness of issue #11. Drives the real `ivpay-app` binary against an
//! in-process IVPAY sandbox under mixed load and mischief (kill -9, upstream faults,
//! clients that give up, two instances on one PostgreSQL, a poison row), then joins what
//! the clients were answered, what the sandbox created and delivered, and the database,
//! and reports every broken promise. See `docs/reliability.md`.
//!
//! ```text
//! chaos [--mode short|long] [--scenarios all|NAME,NAME...] [--seed N] [--app-bin PATH] [--list]
//! ```
//!
//! The seed (`--seed`, else `IVPAY_CHAOS_SEED`, else the clock) is printed first; the
//! service binary is `--app-bin`, else `IVPAY_APP_BIN`, else `$CARGO_TARGET_DIR/debug/ivpay-app`
//! (`target/debug/ivpay-app`). `IVPAY_CHAOS_KEEP_LOGS=1` keeps the services' logs.
//!
//! PostgreSQL scenarios use `IVPAY_TEST_DATABASE_URL` (an admin URL; a fresh database per
//! round, prefix `ivpay_chaos`). The exit status is 1 on any violation.

mod collect;
mod ledger;
mod scenario;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use scenario::{Backend, Mischief, Params, Scenario};

const fn scenario(
    name: &'static str,
    backend: Backend,
    instances: usize,
    mischief: Mischief,
) -> Scenario {
    Scenario {
        name,
        backend,
        instances,
        mischief,
    }
}

/// Every scenario, in the order they run.
const SCENARIOS: [Scenario; 10] = [
    scenario("kill-sqlite", Backend::Sqlite, 1, Mischief::Kill),
    scenario("kill-postgres", Backend::Postgres, 1, Mischief::Kill),
    scenario("faults-sqlite", Backend::Sqlite, 1, Mischief::Faults),
    scenario("faults-postgres", Backend::Postgres, 1, Mischief::Faults),
    scenario(
        "read-faults-sqlite",
        Backend::Sqlite,
        1,
        Mischief::ReadFaults,
    ),
    scenario("give-up-sqlite", Backend::Sqlite, 1, Mischief::GiveUp),
    scenario("give-up-postgres", Backend::Postgres, 1, Mischief::GiveUp),
    scenario(
        "two-instances-postgres",
        Backend::Postgres,
        2,
        Mischief::ReadFaults,
    ),
    scenario("poison-sqlite", Backend::Sqlite, 1, Mischief::Poison),
    scenario("poison-postgres", Backend::Postgres, 1, Mischief::Poison),
];

struct Args {
    long: bool,
    scenarios: Vec<Scenario>,
    seed: u64,
    app_bin: PathBuf,
    list: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        long: false,
        scenarios: SCENARIOS.to_vec(),
        // IVPAY_CHAOS_SEED replays a run (`IVPAY_CHAOS_SEED=42 just chaos`); else the clock
        seed: std::env::var("IVPAY_CHAOS_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs())
            }),
        app_bin: std::env::var_os("IVPAY_APP_BIN").map_or_else(
            || {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map_or_else(|| PathBuf::from("target"), PathBuf::from);
                target.join("debug").join("ivpay-app")
            },
            PathBuf::from,
        ),
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--mode" => {
                args.long = match value()?.as_str() {
                    "short" => false,
                    "long" => true,
                    other => return Err(format!("--mode: short or long, not {other}")),
                }
            }
            "--scenarios" => {
                let names = value()?;
                if names != "all" {
                    args.scenarios = names
                        .split(',')
                        .map(|n| {
                            SCENARIOS
                                .iter()
                                .find(|s| s.name == n.trim())
                                .copied()
                                .ok_or(format!("--scenarios: no scenario {n} (see --list)"))
                        })
                        .collect::<Result<_, _>>()?;
                }
            }
            "--seed" => {
                args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?;
            }
            "--app-bin" => args.app_bin = PathBuf::from(value()?),
            "--list" => args.list = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

#[allow(clippy::print_stdout, reason = "the table is the program's output")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for s in &SCENARIOS {
            println!("{}", s.name);
        }
        return ExitCode::SUCCESS;
    }
    if !args.app_bin.is_file() {
        eprintln!(
            "chaos: no service binary at {} (cargo build -p ivpay-app, or --app-bin)",
            args.app_bin.display()
        );
        return ExitCode::from(2);
    }
    // Services start from scratch folders: a relative path would not reach the binary.
    if let Ok(absolute) = std::path::absolute(&args.app_bin) {
        args.app_bin = absolute;
    }
    let params = if args.long {
        Params {
            seed: args.seed,
            rounds: 3,
            load: Duration::from_secs(15),
            kills_per_round: 8,
            concurrency: 8,
            app_bin: args.app_bin.clone(),
            settle_timeout: Duration::from_secs(60),
        }
    } else {
        Params {
            seed: args.seed,
            rounds: 1,
            load: Duration::from_secs(6),
            kills_per_round: 3,
            concurrency: 4,
            app_bin: args.app_bin.clone(),
            settle_timeout: Duration::from_secs(30),
        }
    };
    let names: Vec<&str> = args.scenarios.iter().map(|s| s.name).collect();
    println!(
        "chaos: seed {} mode {} (rerun: chaos --seed {} --mode {} --scenarios {})",
        args.seed,
        if args.long { "long" } else { "short" },
        args.seed,
        if args.long { "long" } else { "short" },
        names.join(","),
    );
    let postgres = std::env::var("IVPAY_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let required = std::env::var("IVPAY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");

    let mut rows = Vec::new();
    let mut failed = false;
    for s in &args.scenarios {
        if s.backend == Backend::Postgres && !postgres {
            println!("SKIPPED {}: IVPAY_TEST_DATABASE_URL is not set", s.name);
            failed |= required;
            continue;
        }
        let began = Instant::now();
        eprintln!("chaos: running {}", s.name);
        match scenario::run(s, &params).await {
            Ok(outcome) => {
                failed |= !outcome.report.violations.is_empty();
                rows.push((s.name, outcome, began.elapsed()));
            }
            Err(e) => {
                println!("ERROR {}: {e}", s.name);
                failed = true;
            }
        }
    }

    println!();
    println!(
        "{:<24} {:>10} {:>7} {:>8} {:>9} {:>11} {:>8} {:>10} {:>6}",
        "scenario",
        "iterations",
        "faults",
        "creates",
        "webhooks",
        "invariants",
        "orphans",
        "violations",
        "secs"
    );
    for (name, o, took) in &rows {
        println!(
            "{:<24} {:>10} {:>7} {:>8} {:>9} {:>11} {:>8} {:>10} {:>6}",
            name,
            o.iterations,
            o.faults,
            o.creates,
            o.webhooks,
            o.report.checked,
            o.report.orphans.len(),
            o.report.violations.len(),
            took.as_secs()
        );
    }
    println!();
    for (name, o, _) in &rows {
        let answers: Vec<String> = o.answers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("{name}: create answers {{{}}}", answers.join(", "));
    }
    for (name, o, _) in &rows {
        if o.report.violations.is_empty() {
            continue;
        }
        println!();
        println!("{name}: {} violations", o.report.violations.len());
        let mut by_kind: std::collections::BTreeMap<_, Vec<_>> = Default::default();
        for v in &o.report.violations {
            by_kind.entry(v.invariant).or_default().push(v);
        }
        for (kind, vs) in by_kind {
            println!("  {kind}: {}", vs.len());
            for v in vs.iter().take(5) {
                println!("    {}", v.detail);
            }
        }
    }
    if failed {
        println!("\nchaos: FAILED (seed {})", args.seed);
        ExitCode::FAILURE
    } else {
        println!("\nchaos: every invariant held (seed {})", args.seed);
        ExitCode::SUCCESS
    }
}
