//! `just bench`: ivpay against a baseline doing the same job with the least code, side by
//! side on this machine, in one run so the machine's noise cancels in the ratios.
//!
//! Three processes besides this one, which only generates load: `bench-upstream` (IVPAY,
//! answering at once), `bench-baseline` (raw sqlx, no layers) and the release `ivpay-app`
//! (reconciler off, rate limits and the upstream budget off, one client key). For each
//! backend and each server it runs `create`, `read` (`GET /payment/{id}` by our id) and
//! `webhook` (a PAID notice: ivpay keeps it in its inbox and confirms it with IVPAY, the
//! baseline inserts one row) at a fixed concurrency, and prints req/s, p50, p99, CPU per
//! request (the server's user + system time from `/proc`, over the run), peak RSS, the
//! time from start to ready, and the ratios ivpay / baseline.
//!
//! Settings (environment): `IVPAY_BENCH_SECS` per run (default 10),
//! `IVPAY_BENCH_CONCURRENCY` (default 32), `IVPAY_BENCH_DATABASE_URL` or
//! `IVPAY_TEST_DATABASE_URL` (a PostgreSQL admin URL; fresh databases are made there),
//! `IVPAY_BENCH_BIN_DIR` (default `target/release`: where `ivpay-app`, `bench-baseline`
//! and `bench-upstream` are), `IVPAY_BENCH_BACKENDS` (`sqlite,postgres` by default: to
//! profile one, say `sqlite`), `IVPAY_BENCH_ONLY=notify` (only ivpay's create runs without
//! and with a notification endpoint), `IVPAY_BENCH_NOTIFY_PAIRS=N` (that pair of runs N
//! times, 3 by default, each on fresh databases, with the median of their ratios; the full
//! run ends with them too).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CLIENT_KEY: &str = "bench-client-key";
const IVPAY_KEY: &str = "bench-ivpay-key";
/// Linux's clock ticks per second in `/proc/<pid>/stat` (`getconf CLK_TCK`).
const TICKS_PER_SECOND: u64 = 100;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server under test, as a child process.
struct Server {
    child: Child,
    base: String,
    ready_after: Duration,
}

impl Server {
    /// Starts `command` and waits for `/readyz`: at `base`, or, without one, where the
    /// program says it listens ([`announced`]).
    async fn start(mut command: Command, base: Option<String>, http: &reqwest::Client) -> Server {
        let started = Instant::now();
        command
            .current_dir(std::env::temp_dir())
            .stdout(if base.is_none() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e} (run `just bench`)"));
        let base = match base {
            Some(base) => base,
            None => announced(&mut child),
        };
        for _ in 0..2000 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                return Server {
                    child,
                    base,
                    ready_after: started.elapsed(),
                };
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{base} did not become ready");
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.child.id())).unwrap_or_default()
    }

    /// User plus system CPU time so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        cpu_ticks_of(self.child.id())
    }

    fn peak_rss_kib(&self) -> u64 {
        self.proc_file("status")
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

/// User plus system CPU time of process `pid` so far, in clock ticks.
fn cpu_ticks_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; fields are counted after its `)`.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the `)`.
    field(11) + field(12)
}

/// The fake IVPAY's process (also the notification receiver), whose CPU each run counts.
static UPSTREAM_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

fn upstream_cpu_ticks() -> u64 {
    UPSTREAM_PID.get().map_or(0, |pid| cpu_ticks_of(*pid))
}

/// The base URL a program started with piped output announces on its first line,
/// `listening <addr>`.
fn announced(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("announces");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening <addr>");
    format!("http://{addr}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One run of one path against one server.
struct Run {
    ok: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    cpu_ticks: u64,
    /// The fake IVPAY's (and receiver's) over the same run.
    upstream_cpu_ticks: u64,
}

impl Run {
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }

    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.per_request_us(self.cpu_ticks)
    }

    fn upstream_cpu_us_per_request(&self) -> f64 {
        self.per_request_us(self.upstream_cpu_ticks)
    }

    /// `ticks` of CPU time spread over the run's successful requests, in µs each.
    fn per_request_us(&self, ticks: u64) -> f64 {
        if self.ok == 0 {
            return 0.0;
        }
        (ticks * 1_000_000 / TICKS_PER_SECOND) as f64 / self.ok as f64
    }
}

/// Runs `request(i)` from `concurrency` workers for `secs` seconds against `server`.
async fn drive<F, Fut>(server: &Server, concurrency: usize, secs: u64, request: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(AtomicUsize::new(0));
    let cpu_before = server.cpu_ticks();
    let upstream_before = upstream_cpu_ticks();
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
                        ok += 1;
                    } else {
                        errors += 1;
                    }
                    lat.push(t.elapsed().as_micros() as u64);
                }
                (ok, errors, lat)
            })
        })
        .collect();
    let mut run = Run {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        cpu_ticks: 0,
        upstream_cpu_ticks: 0,
    };
    for w in workers {
        let (ok, errors, lat) = w.await.expect("worker");
        run.ok += ok;
        run.errors += errors;
        run.latencies_us.extend(lat);
    }
    run.elapsed = started.elapsed();
    run.cpu_ticks = server.cpu_ticks().saturating_sub(cpu_before);
    run.upstream_cpu_ticks = upstream_cpu_ticks().saturating_sub(upstream_before);
    run.latencies_us.sort_unstable();
    run
}

/// What one server did on one backend.
struct Measured {
    runs: Vec<(&'static str, Run)>,
    peak_rss_kib: u64,
    ready_after: Duration,
    /// With a notification endpoint: what the receiver took of the create run's notices.
    notices: Option<Notices>,
}

/// What the receiver took of one create run's notices (one per payment created).
struct Notices {
    /// Payments created, so notices owed.
    owed: u64,
    /// Taken by the end of the run.
    during: u64,
    /// From the end of the run until every notice was taken; `None` if they were not all
    /// taken within [`CATCH_UP_LIMIT`].
    caught_up_after: Option<Duration>,
    /// Taken when the bench stopped waiting.
    taken: u64,
}

/// Where the notify run's notices are taken (the fake upstream's `/hook`), unless its
/// delivery is turned off (`IVPAY_BENCH_NOTIFY__ENABLED=false`): then none are awaited.
fn receiver(upstream: &str) -> Option<&str> {
    let off = std::env::var("IVPAY_BENCH_NOTIFY__ENABLED").is_ok_and(|v| v == "false");
    (!off).then_some(upstream)
}

/// How long the bench waits after a run for the notices still to be delivered.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// How many notices the fake receiver has taken so far (`GET /hook`).
async fn hooks_taken(http: &reqwest::Client, upstream: &str) -> u64 {
    let answer = http.get(format!("{upstream}/hook")).send().await;
    match answer {
        Ok(r) => r
            .text()
            .await
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// Waits until the receiver has taken `owed` notices more than `before`, or for
/// [`CATCH_UP_LIMIT`].
async fn catch_up(http: &reqwest::Client, upstream: &str, before: u64, owed: u64) -> Notices {
    let ended = Instant::now();
    let during = hooks_taken(http, upstream).await.saturating_sub(before);
    let mut taken = during;
    while taken < owed && ended.elapsed() < CATCH_UP_LIMIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        taken = hooks_taken(http, upstream).await.saturating_sub(before);
    }
    Notices {
        owed,
        during,
        caught_up_after: (taken >= owed).then(|| ended.elapsed()),
        taken,
    }
}

async fn measure(
    server: Server,
    http: &reqwest::Client,
    concurrency: usize,
    secs: u64,
    create_only: bool,
    receiver: Option<&str>,
) -> Measured {
    let base = Arc::new(server.base.clone());
    let hooks_before = match receiver {
        Some(upstream) => hooks_taken(http, upstream).await,
        None => 0,
    };
    let ids = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let create = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        drive(&server, concurrency, secs, move |i| {
            let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
            async move {
                let body = format!(
                    r#"{{"amount_fiat":"{}.{:02}","currency_fiat":"USD","foreign_id":"bench-{i}"}}"#,
                    1 + i % 500,
                    i % 100
                );
                let res = http
                    .post(format!("{base}/payment/create"))
                    .header("X-API-KEY", CLIENT_KEY)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let Ok(r) = res else { return false };
                if !r.status().is_success() {
                    return false;
                }
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let (Some(ours), Some(theirs)) =
                    (v["data"]["id"].as_str(), v["data"]["payment_id"].as_str())
                else {
                    return false;
                };
                ids.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((ours.to_owned(), theirs.to_owned()));
                true
            }
        })
        .await
    };
    let ids: Arc<Vec<(String, String)>> = Arc::new(std::mem::take(
        &mut *ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ));
    assert!(!ids.is_empty(), "no payment was created at {base}");
    let notices = match receiver {
        Some(upstream) => Some(catch_up(http, upstream, hooks_before, create.ok as u64).await),
        None => None,
    };
    if create_only {
        let measured = Measured {
            runs: vec![("create", create)],
            peak_rss_kib: server.peak_rss_kib(),
            ready_after: server.ready_after,
            notices,
        };
        server.stop();
        return measured;
    }
    let read = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        drive(&server, concurrency, secs, move |i| {
            let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
            async move {
                let (ours, _) = &ids[i % ids.len()];
                matches!(
                    http.get(format!("{base}/payment/{ours}")).header("X-API-KEY", CLIENT_KEY).send().await,
                    Ok(r) if r.status().is_success()
                )
            }
        })
        .await
    };
    let webhook = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        drive(&server, concurrency, secs, move |i| {
            let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
            async move {
                let (_, theirs) = &ids[i % ids.len()];
                let body = format!(
                    r#"{{"payment_id":"{theirs}","status":"PAID","processed_at":1726248785}}"#
                );
                matches!(
                    http.post(format!("{base}/webhooks/ivpay"))
                        .header("X-API-KEY", IVPAY_KEY)
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
    let measured = Measured {
        runs: vec![("create", create), ("read", read), ("webhook", webhook)],
        peak_rss_kib: server.peak_rss_kib(),
        ready_after: server.ready_after,
        notices,
    };
    server.stop();
    measured
}

fn ivpay_command(bin_dir: &Path, db_url: &str, upstream: &str, port: u16) -> Command {
    let mut c = Command::new(bin_dir.join("ivpay-app"));
    c.arg("serve")
        .env_clear()
        .env("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("IVPAY_DATABASE__URL", db_url)
        .env("IVPAY_LOG__FILTER", "warn")
        .env("IVPAY_RECONCILER__ENABLED", "false")
        .env("IVPAY_IVPAY__API_KEY", IVPAY_KEY)
        .env("IVPAY_IVPAY__BASE_URL", upstream)
        .env("IVPAY_IVPAY__ALLOW_HTTP", "true")
        .env("IVPAY_CLIENTS__BENCH", CLIENT_KEY)
        // One client drives the whole load: its own limits would measure themselves.
        .env("IVPAY_SERVER__RATE_LIMIT_PER_SECOND", "0")
        .env("IVPAY_IVPAY__BUDGET_PER_SECOND", "0");
    // Settings to try on ivpay, passed through (`IVPAY_BENCH_APP__DATABASE__MAX_CONNECTIONS=4`
    // runs it with `IVPAY_DATABASE__MAX_CONNECTIONS=4`).
    for (name, value) in std::env::vars() {
        if let Some(setting) = name.strip_prefix("IVPAY_BENCH_APP__") {
            c.env(format!("IVPAY_{setting}"), value);
        }
    }
    c
}

/// The notification endpoint the `notify` run configures: the fake upstream's `/hook`.
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// As [`ivpay_command`], with one endpoint of the client hearing every notice.
fn ivpay_notify_command(bin_dir: &Path, db_url: &str, upstream: &str, port: u16) -> Command {
    let mut c = ivpay_command(bin_dir, db_url, upstream, port);
    c.env("IVPAY_NOTIFY__ENDPOINTS__BENCH__CLIENT", "bench")
        .env(
            "IVPAY_NOTIFY__ENDPOINTS__BENCH__URL",
            format!("{upstream}/hook"),
        )
        .env("IVPAY_NOTIFY__ENDPOINTS__BENCH__SECRET", HOOK_SECRET)
        .env("IVPAY_NOTIFY__ALLOW_PRIVATE_TARGETS", "true");
    // Delivery settings to try, passed through (`IVPAY_BENCH_NOTIFY__BATCH=256`, ...).
    for (name, value) in std::env::vars() {
        if let Some(setting) = name.strip_prefix("IVPAY_BENCH_NOTIFY__") {
            c.env(format!("IVPAY_NOTIFY__{setting}"), value);
        }
    }
    c
}

fn baseline_command(bin_dir: &Path, db_url: &str, upstream: &str) -> Command {
    let mut c = Command::new(bin_dir.join("bench-baseline"));
    c.env_clear()
        .env("BASELINE_DATABASE_URL", db_url)
        .env("BASELINE_UPSTREAM", upstream);
    c
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn report(backend: &str, baseline: &Measured, ivpay: &Measured) {
    for ((path, b), (_, i)) in baseline.runs.iter().zip(&ivpay.runs) {
        for (who, r) in [("baseline", b), ("ivpay", i)] {
            println!(
                "| {backend} | {path} | {who} | {:.0} | {:.2} | {:.2} | {:.0} | {} |",
                r.rps(),
                r.percentile_ms(0.50),
                r.percentile_ms(0.99),
                r.cpu_us_per_request(),
                r.errors,
            );
        }
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        println!(
            "| {backend} | {path} | **ivpay / baseline** | **{:.2}** | | **{:.2}** | **{:.2}** | |",
            ratio(i.rps(), b.rps()),
            ratio(i.percentile_ms(0.99), b.percentile_ms(0.99)),
            ratio(i.cpu_us_per_request(), b.cpu_us_per_request()),
        );
    }
}

/// Create with one notification endpoint against create without; answers the ratio of
/// their rates.
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn notify_report(backend: &str, plain: &Measured, notify: &Measured) -> Option<f64> {
    let (Some((_, p)), Some((_, n))) = (plain.runs.first(), notify.runs.first()) else {
        return None;
    };
    let ratio = if p.rps() > 0.0 {
        n.rps() / p.rps()
    } else {
        0.0
    };
    println!(
        "{backend}: create with one notification endpoint {:.0} req/s, CPU {:.0} µs/req, p99 {:.2} ms; \
         without {:.0} req/s, CPU {:.0} µs/req: ratio **{:.2}**; the fake IVPAY and receiver's CPU \
         {:.0} µs/create with, {:.0} without",
        n.rps(),
        n.cpu_us_per_request(),
        n.percentile_ms(0.99),
        p.rps(),
        p.cpu_us_per_request(),
        ratio,
        n.upstream_cpu_us_per_request(),
        p.upstream_cpu_us_per_request(),
    );
    if let Some(x) = &notify.notices {
        match x.caught_up_after {
            Some(after) => println!(
                "{backend}: notices taken by the receiver: {} of {} during the run, all within {:.1} s after it",
                x.during,
                x.owed,
                after.as_secs_f64(),
            ),
            None => println!(
                "{backend}: notices taken by the receiver: {} of {} during the run, only {} within {} s after it",
                x.during,
                x.owed,
                x.taken,
                CATCH_UP_LIMIT.as_secs(),
            ),
        }
    }
    Some(ratio)
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn summary(backend: &str, baseline: &Measured, ivpay: &Measured) {
    println!(
        "{backend}: peak RSS ivpay {:.1} MiB, baseline {:.1} MiB; start to ready ivpay {} ms, baseline {} ms",
        ivpay.peak_rss_kib as f64 / 1024.0,
        baseline.peak_rss_kib as f64 / 1024.0,
        ivpay.ready_after.as_millis(),
        baseline.ready_after.as_millis(),
    );
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn header() {
    println!("| backend | path | server | req/s | p50 ms | p99 ms | CPU µs/req | errors |");
    println!("|---|---|---|---|---|---|---|---|");
}

/// What every run shares.
struct Bench<'a> {
    bin_dir: &'a Path,
    upstream: &'a str,
    http: &'a reqwest::Client,
    concurrency: usize,
    secs: u64,
}

impl Bench<'_> {
    /// `pairs` create runs of ivpay without a notification endpoint, each followed at once
    /// by one with an endpoint, each run on a fresh database (the first pair on `ivpay_db`
    /// itself if `first_on_given`), reporting each pair and the median of their ratios.
    async fn notify_pairs(
        &self,
        backend: &str,
        ivpay_db: &str,
        pg: Option<&str>,
        pairs: u64,
        first_on_given: bool,
    ) {
        let mut ratios = Vec::new();
        for pair in 0..pairs {
            let ivpay_db = if pair == 0 && first_on_given {
                ivpay_db.to_owned()
            } else {
                fresh_database(backend, ivpay_db, pg, pair + 1).await
            };
            let port = free_port();
            let plain = Server::start(
                ivpay_command(self.bin_dir, &ivpay_db, self.upstream, port),
                Some(format!("http://127.0.0.1:{port}")),
                self.http,
            )
            .await;
            let plain = measure(plain, self.http, self.concurrency, self.secs, true, None).await;
            let notify = self.notify_run(backend, &ivpay_db, pg).await;
            ratios.extend(notify_report(backend, &plain, &notify));
        }
        median_report(backend, &mut ratios);
    }

    /// The create run of ivpay with one notification endpoint, on a database of its own,
    /// counting what the receiver takes.
    async fn notify_run(&self, backend: &str, ivpay_db: &str, pg: Option<&str>) -> Measured {
        let notify_db = notify_database(backend, ivpay_db, pg).await;
        let port = free_port();
        let server = Server::start(
            ivpay_notify_command(self.bin_dir, &notify_db, self.upstream, port),
            Some(format!("http://127.0.0.1:{port}")),
            self.http,
        )
        .await;
        let receiver = receiver(self.upstream);
        measure(
            server,
            self.http,
            self.concurrency,
            self.secs,
            true,
            receiver,
        )
        .await
    }
}

/// A fresh database beside `ivpay_db` for the run with a notification endpoint.
async fn notify_database(backend: &str, ivpay_db: &str, pg: Option<&str>) -> String {
    match (backend, pg) {
        ("postgres", Some(admin)) => {
            ivpay_persistence::testing::create_postgres_database(admin, "ivpay_bench_notify")
                .await
                .expect("a fresh PostgreSQL database for the benchmark")
        }
        _ => ivpay_db.replace(".db", "-notify.db"),
    }
}

/// A fresh database in place of `ivpay_db` for the `pair`th pair of runs.
async fn fresh_database(backend: &str, ivpay_db: &str, pg: Option<&str>, pair: u64) -> String {
    match (backend, pg) {
        ("postgres", Some(admin)) => {
            ivpay_persistence::testing::create_postgres_database(admin, "ivpay_bench")
                .await
                .expect("a fresh PostgreSQL database for the benchmark")
        }
        _ => ivpay_db.replace("ivpay.db", &format!("ivpay-{pair}.db")),
    }
}

/// The median of several pairs' ratios, with their spread.
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn median_report(backend: &str, ratios: &mut [f64]) {
    if ratios.len() < 2 {
        return;
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    let median = if ratios.len().is_multiple_of(2) {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    } else {
        ratios[mid]
    };
    println!(
        "{backend}: median ratio over {} pairs **{median:.2}** (from {:.2} to {:.2})",
        ratios.len(),
        ratios[0],
        ratios[ratios.len() - 1],
    );
}

#[tokio::main]
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secs = env_u64("IVPAY_BENCH_SECS", 10);
    let concurrency = env_u64("IVPAY_BENCH_CONCURRENCY", 32) as usize;
    let bin_dir = PathBuf::from(
        std::env::var("IVPAY_BENCH_BIN_DIR").unwrap_or_else(|_| "target/release".into()),
    );
    let bin_dir = std::fs::canonicalize(&bin_dir).unwrap_or(bin_dir);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .expect("client");
    let mut upstream_cmd = Command::new(bin_dir.join("bench-upstream"));
    upstream_cmd.env_clear();
    let upstream = {
        let mut child = upstream_cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("bench-upstream starts (run `just bench`)");
        let base = announced(&mut child);
        let _ = UPSTREAM_PID.set(child.id());
        (child, base)
    };
    println!(
        "just bench: {secs} s per run, concurrency {concurrency}, {} cores\n",
        std::thread::available_parallelism().map_or(0, usize::from)
    );

    let wanted = std::env::var("IVPAY_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    let mut backends = Vec::new();
    let dir = std::env::temp_dir().join(format!("ivpay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    backends.push((
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.join("baseline.db").display()),
        format!("sqlite://{}?mode=rwc", dir.join("ivpay.db").display()),
    ));
    let pg = std::env::var("IVPAY_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("IVPAY_TEST_DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    if let Some(admin) = &pg {
        let fresh = |name: &'static str| {
            let admin = admin.clone();
            async move {
                ivpay_persistence::testing::create_postgres_database(&admin, name)
                    .await
                    .expect("a fresh PostgreSQL database for the benchmark")
            }
        };
        backends.push((
            "postgres",
            fresh("ivpay_bench_baseline").await,
            fresh("ivpay_bench").await,
        ));
    }
    backends.retain(|(name, _, _)| wanted.contains(name));
    let notify_pairs = env_u64("IVPAY_BENCH_NOTIFY_PAIRS", 3).max(1);
    let bench = Bench {
        bin_dir: &bin_dir,
        upstream: &upstream.1,
        http: &http,
        concurrency,
        secs,
    };
    // `IVPAY_BENCH_ONLY=notify`: only the create runs of ivpay without and with a
    // notification endpoint (a quicker loop while working on notifications).
    if std::env::var("IVPAY_BENCH_ONLY").is_ok_and(|v| v == "notify") {
        for (backend, _, ivpay_db) in &backends {
            bench
                .notify_pairs(backend, ivpay_db, pg.as_deref(), notify_pairs, true)
                .await;
        }
        let (mut child, _) = upstream;
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut results = Vec::new();
    for (backend, baseline_db, ivpay_db) in &backends {
        let baseline = Server::start(
            baseline_command(&bin_dir, baseline_db, &upstream.1),
            None,
            &http,
        )
        .await;
        let baseline = measure(baseline, &http, concurrency, secs, false, None).await;
        let port = free_port();
        let ivpay = Server::start(
            ivpay_command(&bin_dir, ivpay_db, &upstream.1, port),
            Some(format!("http://127.0.0.1:{port}")),
            &http,
        )
        .await;
        let ivpay = measure(ivpay, &http, concurrency, secs, false, None).await;
        results.push((*backend, baseline, ivpay));
    }
    header();
    for (backend, baseline, ivpay) in &results {
        report(backend, baseline, ivpay);
    }
    println!();
    for (backend, baseline, ivpay) in &results {
        summary(backend, baseline, ivpay);
    }
    // Creates without and with one notification endpoint, side by side in pairs on fresh
    // databases (a pair's ratio moves by about 0.1, so the median of several is reported).
    for (backend, _, ivpay_db) in &backends {
        bench
            .notify_pairs(backend, ivpay_db, pg.as_deref(), notify_pairs, false)
            .await;
    }
    if pg.is_none() {
        println!("postgres: skipped (set IVPAY_BENCH_DATABASE_URL to a PostgreSQL admin URL)");
    }
    let (mut child, _) = upstream;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
