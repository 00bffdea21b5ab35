//! `just bench`: drives a release build of `ivpay-app` (embedded sandbox upstream) at a
//! fixed concurrency and prints throughput, latency percentiles and the service's peak
//! memory, on SQLite and, when a server is configured, on PostgreSQL.
//!
//! Settings (environment): `IVPAY_BENCH_SECS` per scenario (default 10),
//! `IVPAY_BENCH_CONCURRENCY` (default 32), `IVPAY_BENCH_DATABASE_URL` or
//! `IVPAY_TEST_DATABASE_URL` (a PostgreSQL admin URL; a fresh `ivpay_bench` database is
//! made there), `IVPAY_APP_BIN` (default `target/release/ivpay-app`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CLIENT_KEY: &str = "dev-client-key";
const SANDBOX_KEY: &str = "sandbox-merchant-key";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Service {
    child: Child,
    base: String,
}

impl Service {
    fn start(bin: &PathBuf, db_url: &str, port: u16) -> Service {
        let child = Command::new(bin)
            .env("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("IVPAY_DATABASE__URL", db_url)
            .env("IVPAY_DATABASE__MAX_CONNECTIONS", "16")
            .env("IVPAY_LOG__FILTER", "warn")
            .env("IVPAY_RECONCILER__ENABLED", "false")
            .env("IVPAY_IVPAY__BUDGET_PER_SECOND", "0")
            // One client drives the whole load: the per-client limit would measure itself.
            .env("IVPAY_SERVER__RATE_LIMIT_PER_SECOND", "0")
            // No ivpay.toml there: defaults and the variables above only.
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run `cargo build --release -p ivpay-app`)",
                    bin.display()
                )
            });
        Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Outcome {
    name: &'static str,
    ok: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }
}

/// Runs `request(i)` from `concurrency` workers for `secs` seconds.
async fn drive<F, Fut>(name: &'static str, concurrency: usize, secs: u64, request: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let request = request.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut ok, mut errors, mut lat) = (0usize, 0usize, Vec::new());
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    if request(i).await {
                        ok += 1
                    } else {
                        errors += 1
                    }
                    lat.push(t.elapsed().as_micros() as u64);
                }
                (ok, errors, lat)
            })
        })
        .collect();
    let mut out = Outcome {
        name,
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for w in workers {
        let (ok, errors, lat) = w.await.expect("worker");
        out.ok += ok;
        out.errors += errors;
        out.latencies_us.extend(lat);
    }
    out.elapsed = started.elapsed();
    out.latencies_us.sort_unstable();
    out
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("service at {base} did not become ready");
}

async fn bench_backend(
    label: &str,
    bin: &PathBuf,
    db_url: &str,
    concurrency: usize,
    secs: u64,
) -> (Vec<Outcome>, u64) {
    let service = Service::start(bin, db_url, free_port());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .expect("client");
    wait_ready(&http, &service.base).await;
    let base = Arc::new(service.base.clone());
    let ids = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let create = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        drive("create", concurrency, secs, move |i| {
            let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
            async move {
                let body = format!(r#"{{"amount_fiat":"{}.{:02}","currency_fiat":"USD","foreign_id":"bench-{i}"}}"#, 1 + i % 500, i % 100);
                let res = http
                    .post(format!("{base}/payment/create"))
                    .header("X-API-KEY", CLIENT_KEY)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(id) = v["data"]["payment_id"].as_str() {
                            ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id.to_owned());
                        }
                        true
                    }
                    _ => false,
                }
            }
        })
        .await
    };
    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(
        &mut *ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ));
    assert!(!ids.is_empty(), "no payment was created on {label}");

    let get = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        drive("get", concurrency, secs, move |i| {
            let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
            async move {
                let id = &ids[i % ids.len()];
                matches!(
                    http.get(format!("{base}/payment/{id}")).header("X-API-KEY", CLIENT_KEY).send().await,
                    Ok(r) if r.status().is_success()
                )
            }
        })
        .await
    };

    let webhook = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        drive("webhook", concurrency, secs, move |i| {
            let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
            async move {
                let id = &ids[i % ids.len()];
                let body = format!(
                    r#"{{"payment_id":"{id}","status":"CREATED","processed_at":1726248785}}"#
                );
                matches!(
                    http.post(format!("{base}/webhooks/ivpay"))
                        .header("X-API-KEY", SANDBOX_KEY)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await,
                    Ok(r) if r.status().is_success()
                )
            }
        })
        .await
    };
    let rss = service.peak_rss_kib();
    service.stop();
    (vec![create, get, webhook], rss)
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn report(label: &str, outcomes: &[Outcome], rss_kib: u64) {
    for o in outcomes {
        let rps = o.ok as f64 / o.elapsed.as_secs_f64();
        println!(
            "{label:<9} {:<8} {:>8} ok {:>6} err {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            o.name,
            o.ok,
            o.errors,
            rps,
            o.percentile(0.50),
            o.percentile(0.99)
        );
    }
    println!("{label:<9} peak RSS {:.1} MiB", rss_kib as f64 / 1024.0);
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secs = env_u64("IVPAY_BENCH_SECS", 10);
    let concurrency = env_u64("IVPAY_BENCH_CONCURRENCY", 32) as usize;
    let bin = PathBuf::from(
        std::env::var("IVPAY_APP_BIN").unwrap_or_else(|_| "target/release/ivpay-app".into()),
    );
    // The service runs in a scratch directory, so the path must not be relative.
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);

    let dir = std::env::temp_dir().join(format!("ivpay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let (outcomes, rss) = bench_backend("sqlite", &bin, &sqlite, concurrency, secs).await;
    report("sqlite", &outcomes, rss);
    let _ = std::fs::remove_dir_all(&dir);

    let pg = std::env::var("IVPAY_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("IVPAY_TEST_DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    match pg {
        Some(admin) => {
            let url = ivpay_persistence::testing::create_postgres_database(&admin, "ivpay_bench")
                .await
                .expect("a fresh PostgreSQL database for the benchmark");
            let (outcomes, rss) = bench_backend("postgres", &bin, &url, concurrency, secs).await;
            report("postgres", &outcomes, rss);
        }
        None => {
            println!("postgres: skipped (set IVPAY_BENCH_DATABASE_URL to a PostgreSQL admin URL)")
        }
    }
}
