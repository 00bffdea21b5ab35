//! One scenario: a sandbox in this process (so it outlives the service), one or two
//! `ivpay-app` processes on a fresh database, a seeded mixed load that records every
//! answer, the scenario's mischief (kill -9, upstream faults, clients giving up, a poison
//! row), then a settle phase and the ledger check.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ivpay_domain::PaymentStatus;
use ivpay_persistence::testing::TestDatabase;
use ivpay_sandbox::{
    FaultPlan, MerchantConfig, Sandbox, SandboxClock, SandboxConfig, SandboxServer, WebhookPolicy,
};
use serde_json::Value;

use crate::collect;
use crate::ledger::{self, AcceptedWebhook, ClientCreate, ClientRead, Ledger, QuietPolls, Report};

const MERCHANT_KEY: &str = "chaos-merchant-key";
/// The secret of the one notification endpoint, which hears every type.
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CLIENT_KEY: &str = "chaos-client-key";
/// The hand-made row of the poison scenario: its amount does not parse.
const POISON_ID: &str = "00000000-0000-4000-8000-00000000dead";

/// Where the service keeps its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// What a scenario does besides the mixed load.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) backend: Backend,
    /// Service processes on the one database (webhooks go to either).
    pub(crate) instances: usize,
    pub(crate) mischief: Mischief,
}

/// The trouble a scenario adds to the mixed load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mischief {
    /// kill -9 of a service at random instants, then a restart.
    Kill,
    /// Upstream faults at 30 % on create, get and webhooks.
    Faults,
    /// The same on get and webhooks only: every create answered.
    ReadFaults,
    /// Creates that take longer upstream than the clients wait.
    GiveUp,
    /// A row nobody can read, inserted by hand, and half the webhooks lost.
    Poison,
}

/// How long and how hard.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub(crate) seed: u64,
    pub(crate) rounds: u32,
    pub(crate) load: Duration,
    pub(crate) kills_per_round: u32,
    pub(crate) concurrency: usize,
    pub(crate) app_bin: PathBuf,
    pub(crate) settle_timeout: Duration,
}

/// One scenario's line of the table.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) iterations: u32,
    pub(crate) faults: u64,
    pub(crate) creates: u64,
    pub(crate) webhooks: u64,
    pub(crate) report: Report,
    /// Create answers by HTTP status ("none": no answer: reset, killed, gave up).
    pub(crate) answers: std::collections::BTreeMap<String, u64>,
}

/// A service process, restartable on the same port and database.
struct Instance {
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    app_bin: PathBuf,
    child: Option<Child>,
    /// Whether this process has been killed since the round began: its counters are gone.
    restarted: bool,
}

impl Instance {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.app_bin);
        cmd.arg("serve")
            .current_dir(self.log.parent().unwrap_or(Path::new(".")))
            .env_remove("IVPAY_FAULT_POINTS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(cmd.spawn()?);
        Ok(())
    }

    /// SIGKILL, as `kill -9`.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.restarted = true;
        }
    }

    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<(), String> {
    for _ in 0..300 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{base} did not become ready in 15 s"))
}

/// What the load recorded, shared by the workers.
#[derive(Default)]
struct Record {
    creates: Vec<ClientCreate>,
    reads: Vec<ClientRead>,
    /// IVPAY ids answered to clients: what reads ask for.
    answered: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The 30 % fault plan: every kind the sandbox can inject, on each route; without
/// `creates`, on reads and webhooks only.
fn fault_plan(seed: u64, creates: bool) -> FaultPlan {
    let mut plan = serde_json::json!({
        "seed": seed,
        "create": {"random": [
            {"probability": 0.03, "fault": {"kind": "latency", "ms": 2600}},
            {"probability": 0.03, "fault": {"kind": "slow_body", "ms": 2600}},
            {"probability": 0.04, "fault": {"kind": "server_error", "status": 503}},
            {"probability": 0.03, "fault": {"kind": "rate_limited", "retry_after_secs": 1}},
            {"probability": 0.03, "fault": {"kind": "reset_before_handling"}},
            {"probability": 0.04, "fault": {"kind": "reset"}},
            {"probability": 0.03, "fault": {"kind": "garbage"}},
            {"probability": 0.04, "fault": {"kind": "truncated"}},
            {"probability": 0.03, "fault": {"kind": "slow_body", "ms": 400}},
            {"probability": 0.03, "fault": {"kind": "trailing_comma"}}
        ]},
        "get": {"random": [
            {"probability": 0.06, "fault": {"kind": "server_error", "status": 500}},
            {"probability": 0.02, "fault": {"kind": "rate_limited", "retry_after_secs": 1}},
            {"probability": 0.02, "fault": {"kind": "reset_before_handling"}},
            {"probability": 0.04, "fault": {"kind": "reset"}},
            {"probability": 0.06, "fault": {"kind": "garbage"}},
            {"probability": 0.05, "fault": {"kind": "latency", "ms": 2600}},
            {"probability": 0.05, "fault": {"kind": "truncated"}}
        ]},
        "webhook": {"random": [
            {"probability": 0.08, "fault": {"kind": "drop"}},
            {"probability": 0.08, "fault": {"kind": "duplicate"}},
            {"probability": 0.07, "fault": {"kind": "reorder"}},
            {"probability": 0.07, "fault": {"kind": "delay", "ms": 400}}
        ]}
    });
    if !creates {
        plan["create"] = serde_json::json!({});
    }
    serde_json::from_value(plan).unwrap_or_default()
}

/// Creates that outlive the clients: half of them take 1.5 s upstream, clients wait 0.4 s.
/// A `latency` comes before IVPAY handles the create (the service's hang-up cancels it
/// there too); a `slow_body` after (the payment exists when the client has gone).
fn give_up_plan(seed: u64) -> FaultPlan {
    let plan = serde_json::json!({
        "seed": seed,
        "create": {"random": [
            {"probability": 0.25, "fault": {"kind": "latency", "ms": 1500}},
            {"probability": 0.25, "fault": {"kind": "slow_body", "ms": 1500}}
        ]}
    });
    serde_json::from_value(plan).unwrap_or_default()
}

/// Half the webhooks lost: the reconciler has to do the work past the poison row.
fn lost_webhooks_plan(seed: u64) -> FaultPlan {
    let plan = serde_json::json!({
        "seed": seed,
        "webhook": {"random": [{"probability": 0.5, "fault": {"kind": "drop"}}]}
    });
    serde_json::from_value(plan).unwrap_or_default()
}

/// Runs every round of `scenario` and checks each.
pub(crate) async fn run(scenario: &Scenario, params: &Params) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    for round in 0..params.rounds {
        let seed = params
            .seed
            .wrapping_add(u64::from(round).wrapping_mul(0x9e37_79b9));
        let (ledger, stats) = round_once(scenario, params, seed).await?;
        let report = ledger::check(&ledger);
        outcome.iterations += 1;
        outcome.faults += stats.faults;
        outcome.creates += ledger.creates.len() as u64;
        outcome.webhooks += ledger.webhooks.len() as u64;
        for c in &ledger.creates {
            let status = c
                .status
                .map_or_else(|| "none".to_owned(), |s| s.to_string());
            *outcome.answers.entry(status).or_default() += 1;
        }
        outcome.report.checked += report.checked;
        outcome.report.orphans.extend(report.orphans);
        for v in report.violations {
            let mut v = v;
            v.detail = format!("[round {round}, seed {seed}] {}", v.detail);
            outcome.report.violations.push(v);
        }
    }
    Ok(outcome)
}

#[derive(Default)]
struct Stats {
    faults: u64,
}

async fn round_once(
    scenario: &Scenario,
    params: &Params,
    seed: u64,
) -> Result<(Ledger, Stats), String> {
    let mut stats = Stats::default();
    let database = match scenario.backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres("ivpay_chaos", scenario.name)
            .await
            .ok_or("PostgreSQL scenario without IVPAY_TEST_DATABASE_URL")?,
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut config = SandboxConfig {
        clock: SandboxClock::manual(i64::try_from(now).unwrap_or(0)),
        webhooks: WebhookPolicy {
            attempts: 3,
            retry_interval: Duration::from_millis(300),
            timeout: Duration::from_secs(3),
            reorder_hold: Duration::from_millis(500),
            workers: 4,
        },
        ..SandboxConfig::default()
    };
    config.merchants = vec![MerchantConfig::new(MERCHANT_KEY)];
    let sandbox: SandboxServer = Sandbox::spawn(config).await.map_err(|e| e.to_string())?;

    let receiver = Receiver::start(seed).await?;
    let mut instances = Vec::new();
    for i in 0..scenario.instances {
        let port = free_port().map_err(|e| e.to_string())?;
        let env: Vec<(String, String)> = [
            ("IVPAY_SERVER__BIND", format!("127.0.0.1:{port}")),
            ("IVPAY_SERVER__RATE_LIMIT_PER_SECOND", "0".into()),
            // The harness sends webhooks faster than a merchant's budget toward IVPAY
            // allows; the budget's own behaviour is tested on its own.
            ("IVPAY_IVPAY__BUDGET_PER_SECOND", "0".into()),
            ("IVPAY_DATABASE__URL", database.url().to_owned()),
            ("IVPAY_IVPAY__API_KEY", MERCHANT_KEY.into()),
            ("IVPAY_IVPAY__BASE_URL", sandbox.base_url().to_owned()),
            ("IVPAY_IVPAY__ALLOW_HTTP", "true".into()),
            ("IVPAY_IVPAY__CONNECT_TIMEOUT_SECS", "1".into()),
            ("IVPAY_IVPAY__REQUEST_TIMEOUT_SECS", "2".into()),
            ("IVPAY_CLIENTS__SHOP", CLIENT_KEY.into()),
            ("IVPAY_RECONCILER__INTERVAL_SECS", "1".into()),
            ("IVPAY_RECONCILER__FIRST_CHECK_SECS", "1".into()),
            ("IVPAY_RECONCILER__MAX_DELAY_SECS", "2".into()),
            ("IVPAY_RECONCILER__STALE_INTENT_SECS", "8".into()),
            ("IVPAY_RECONCILER__INBOX_LEASE_SECS", "3".into()),
            ("IVPAY_IDEMPOTENCY__WAIT_SECS", "3".into()),
            ("IVPAY_LOG__FILTER", "warn".into()),
            // One endpoint hearing everything, a receiver of the harness that fails a
            // share of the attempts; retries a second apart so the settle phase sees them
            // through.
            ("IVPAY_NOTIFY__ENDPOINTS__CHAOS__CLIENT", "shop".into()),
            ("IVPAY_NOTIFY__ENDPOINTS__CHAOS__URL", receiver.url.clone()),
            ("IVPAY_NOTIFY__ENDPOINTS__CHAOS__SECRET", HOOK_SECRET.into()),
            ("IVPAY_NOTIFY__ALLOW_PRIVATE_TARGETS", "true".into()),
            ("IVPAY_NOTIFY__INTERVAL_MILLIS", "100".into()),
            ("IVPAY_NOTIFY__TIMEOUT_SECS", "2".into()),
            (
                "IVPAY_NOTIFY__RETRY_SCHEDULE_SECS",
                "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut instance = Instance {
            port,
            env,
            log: dir.path().join(format!("service-{i}.log")),
            app_bin: params.app_bin.clone(),
            child: None,
            restarted: false,
        };
        instance.spawn().map_err(|e| {
            format!(
                "cannot start {}: {e} (build it: cargo build -p ivpay-app)",
                params.app_bin.display()
            )
        })?;
        instances.push(instance);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    for instance in &instances {
        wait_ready(&http, &instance.base()).await?;
    }
    let bases: Vec<String> = instances.iter().map(Instance::base).collect();
    let webhook_url = |i: usize| format!("{}/webhooks/ivpay", bases[i % bases.len()]);
    sandbox
        .set_merchant(MerchantConfig::new(MERCHANT_KEY).with_webhook(webhook_url(0)))
        .map_err(|e| e.to_string())?;

    let db = collect::connect(database.url())
        .await
        .map_err(|e| e.to_string())?;
    let skip = if scenario.mischief == Mischief::Poison {
        let now = now.to_string();
        collect::execute(
            &db,
            &format!(
                "INSERT INTO payments (id, ivpay_payment_id, foreign_id, amount, currency, \
                 create_outcome, status, created_at, updated_at, version, next_check_at, \
                 check_attempts) VALUES ('{POISON_ID}', 'deadbeefdeadbeefdeadbeefdeadbeef', \
                 'poison', 'not money', 'USD', 'created', 'CREATED', {now}, {now}, 1, 0, 0)"
            ),
        )
        .await
        .map_err(|e| format!("poison row: {e}"))?;
        vec![POISON_ID.to_owned()]
    } else {
        Vec::new()
    };

    let plan = match scenario.mischief {
        Mischief::Faults => Some(fault_plan(seed, true)),
        Mischief::ReadFaults => Some(fault_plan(seed, false)),
        Mischief::GiveUp => Some(give_up_plan(seed)),
        Mischief::Poison => Some(lost_webhooks_plan(seed)),
        Mischief::Kill => None,
    };
    if let Some(plan) = plan {
        sandbox.set_faults(plan).map_err(|e| e.to_string())?;
    }

    // the load
    let record = Arc::new(Mutex::new(Record::default()));
    let clock = Arc::new(Instant::now());
    let serial = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + params.load;
    let mut workers = Vec::new();
    for w in 0..params.concurrency {
        let worker = Worker {
            rng: fastrand::Rng::with_seed(seed ^ (w as u64 + 1).wrapping_mul(0x2545_f491)),
            http: http.clone(),
            bases: bases.clone(),
            record: record.clone(),
            sandbox: (*sandbox).clone(),
            started: clock.clone(),
            serial: serial.clone(),
            give_up: scenario.mischief == Mischief::GiveUp,
            webhook_urls: (0..bases.len()).map(webhook_url).collect(),
        };
        workers.push(tokio::spawn(worker.run(deadline)));
    }

    // the kills
    if scenario.mischief == Mischief::Kill {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x6b69_6c6c);
        let mut at: Vec<u64> = (0..params.kills_per_round)
            .map(|_| rng.u64(300..params.load.as_millis().max(400) as u64))
            .collect();
        at.sort_unstable();
        let began = Instant::now();
        for ms in at {
            let when = began + Duration::from_millis(ms);
            tokio::time::sleep_until(when.into()).await;
            let victim = rng.usize(..instances.len());
            instances[victim].kill9();
            stats.faults += 1;
            tokio::time::sleep(Duration::from_millis(rng.u64(50..400))).await;
            instances[victim].spawn().map_err(|e| e.to_string())?;
            wait_ready(&http, &instances[victim].base()).await?;
        }
    }
    for w in workers {
        w.await.map_err(|e| e.to_string())?;
    }

    // settle: faults off, every instance up, every upstream payment final, then wait
    sandbox
        .set_faults(FaultPlan::default())
        .map_err(|e| e.to_string())?;
    for instance in &mut instances {
        if !instance.alive() {
            instance.spawn().map_err(|e| e.to_string())?;
            wait_ready(&http, &instance.base()).await?;
        }
    }

    sandbox.advance_clock(Duration::from_secs(3600));
    let settle_deadline = Instant::now() + params.settle_timeout;
    let mut last_deliveries = usize::MAX;
    loop {
        let deliveries = sandbox.deliveries().len();
        let backlog = collect::backlog(&db, &skip)
            .await
            .map_err(|e| e.to_string())?;
        let caught_up = backlog == 0 && deliveries == last_deliveries;
        if caught_up || Instant::now() > settle_deadline {
            break;
        }
        last_deliveries = deliveries;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    // Once everything is final the reconcilers are idle: only then can a few new
    // payments show how often each is checked.
    let quiet_polls = if instances.len() > 1 {
        quiet_phase(&sandbox, &http, &bases, &record).await?
    } else {
        Vec::new()
    };
    // The quiet phase's own notices, too.
    let notify_deadline = Instant::now() + Duration::from_secs(15);
    while collect::backlog(&db, &skip)
        .await
        .map_err(|e| e.to_string())?
        > 0
        && Instant::now() < notify_deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // collect
    let mut ledger = Ledger::default();
    {
        let mut record = lock(&record);
        ledger.creates = std::mem::take(&mut record.creates);
        ledger.reads = std::mem::take(&mut record.reads);
    }
    ledger.quiet_polls = quiet_polls;
    collect::upstream(&sandbox, &mut ledger);
    let injected = sandbox.faults_injected();
    stats.faults += injected.create + injected.get + injected.webhook;
    for d in sandbox.deliveries() {
        if d.outcome.is_delivered() {
            ledger.webhooks.push(AcceptedWebhook {
                payment_id: d.payment_id,
                body: d.body,
            });
        }
    }
    collect::database(&db, &mut ledger, &skip)
        .await
        .map_err(|e| e.to_string())?;
    ledger.received = receiver.received();
    ledger.notify = true;
    let unknown = collect::unknown_rows(&db)
        .await
        .map_err(|e| e.to_string())?;
    let mut created_metric = 0u64;
    let mut metrics_whole = true;
    for instance in &instances {
        let ready: Value = http
            .get(format!("{}/readyz", instance.base()))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let reported = ready["data"]["unknown_payments"]
            .as_u64()
            .or_else(|| ready["unknown_payments"].as_u64())
            .unwrap_or(u64::MAX);
        ledger.counters.push(collect::counter(
            &format!("{}/readyz unknown_payments", instance.base()),
            reported,
            unknown,
        ));
        metrics_whole &= !instance.restarted;
        let text = http
            .get(format!("{}/metrics", instance.base()))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        // A row is created by its own create (counted when stored, whether or not the
        // client was still there) or linked later, by a webhook or an operator.
        created_metric += metric(&text, "ivpay_create_outcomes_total{", "outcome=\"created\"")
            + metric(&text, "ivpay_unknown_links_total{", "outcome=\"linked\"")
            + metric(&text, "ivpay_unknown_links_total{", "outcome=\"operator\"");
    }
    // A process killed took its counters with it: compare only unbroken runs.
    if metrics_whole {
        let created_rows = ledger
            .rows
            .iter()
            .filter(|r| r.outcome == "created")
            .count();
        ledger.counters.push(collect::counter(
            "ivpay_create_outcomes_total{outcome=\"created\"} + ivpay_unknown_links_total{linked, operator} (all instances)",
            created_metric,
            created_rows as u64,
        ));
    }
    for instance in &mut instances {
        instance.stop();
    }
    drop(db);
    if std::env::var_os("IVPAY_CHAOS_KEEP_LOGS").is_some() {
        let kept = dir.keep();
        eprintln!("chaos: service logs kept in {}", kept.display());
    }
    if scenario.backend == Backend::Postgres {
        database.drop_database().await;
    }
    Ok((ledger, stats))
}

/// The endpoint of the harness: checks each notice's signature, keeps what it got, and
/// answers 500 to a seeded share of them (so retries happen under the kills and faults).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<ledger::ReceivedNotice>>>,
}

impl Receiver {
    async fn start(seed: u64) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/hook",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let got: Arc<Mutex<Vec<ledger::ReceivedNotice>>> = Arc::default();
        let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed ^ 0x686f_6f6b)));
        let secret = ivpay_signing::SigningSecret::parse(HOOK_SECRET).map_err(|e| e.to_string())?;
        let state = (got.clone(), rng, Arc::new(secret));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, got })
    }

    fn received(&self) -> Vec<ledger::ReceivedNotice> {
        lock(&self.got).clone()
    }
}

type HookState = (
    Arc<Mutex<Vec<ledger::ReceivedNotice>>>,
    Arc<Mutex<fastrand::Rng>>,
    Arc<ivpay_signing::SigningSecret>,
);

async fn hook(
    axum::extract::State((got, rng, secret)): axum::extract::State<HookState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let notice: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let signed = ivpay_signing::verify_now(std::slice::from_ref(&secret), &headers, &body).is_ok();
    let taken = lock(&rng).u8(..100) >= 15;
    lock(&got).push(ledger::ReceivedNotice {
        message_id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        kind: notice["type"].as_str().unwrap_or_default().to_owned(),
        payment: notice["data"]["id"].as_str().unwrap_or_default().to_owned(),
        signed,
        taken,
    });
    if taken {
        axum::http::StatusCode::NO_CONTENT
    } else {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Payments created in the quiet phase.
const QUIET_PAYMENTS: usize = 8;
/// How long the reconcilers of every instance poll them alone: a few cycles (checks from
/// 1 s, at most 2 s apart).
const QUIET_FOR: Duration = Duration::from_secs(5);

/// With several instances, after the settle phase (every earlier payment final, the
/// reconcilers idle), a phase where only their reconcilers ask IVPAY about payments:
/// webhooks off, no client load, a few payments created (half through each instance) and
/// left open (they stay CREATED, as at IVPAY). Every `GET` IVPAY answers for them then comes from a
/// reconciliation check, so two within one cycle mean two instances checked the same
/// payment. Returns each payment's `GET`s, in milliseconds since the phase began.
async fn quiet_phase(
    sandbox: &Sandbox,
    http: &reqwest::Client,
    bases: &[String],
    record: &Mutex<Record>,
) -> Result<Vec<QuietPolls>, String> {
    sandbox
        .set_merchant(MerchantConfig::new(MERCHANT_KEY))
        .map_err(|e| e.to_string())?;
    let began = Instant::now();
    let mut created = Vec::new();
    for i in 0..QUIET_PAYMENTS {
        let foreign = format!("quiet-{i}");
        let body =
            format!(r#"{{"amount_fiat":"7.00","currency_fiat":"USD","foreign_id":"{foreign}"}}"#);
        let response = http
            .post(format!("{}/payment/create", bases[i % bases.len()]))
            .header("X-API-KEY", CLIENT_KEY)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("quiet create: {e}"))?;
        let status = response.status().as_u16();
        let json: Value = response.json().await.map_err(|e| e.to_string())?;
        let entry = ClientCreate {
            key: None,
            foreign_id: Some(foreign),
            status: Some(status),
            internal_id: json["data"]["id"].as_str().map(str::to_owned),
            payment_id: json["data"]["payment_id"].as_str().map(str::to_owned),
        };
        if let Some(pid) = &entry.payment_id {
            created.push(pid.clone());
        }
        lock(record).creates.push(entry);
    }
    tokio::time::sleep(QUIET_FOR).await;
    let reads = sandbox.reads();
    Ok(created
        .into_iter()
        .map(|payment_id| QuietPolls {
            gets_ms: reads
                .iter()
                .filter(|r| r.payment_id == payment_id && r.at >= began)
                .map(|r| r.at.duration_since(began).as_millis() as u64)
                .collect(),
            payment_id,
        })
        .collect())
}

/// The value of one Prometheus counter line with `label`, 0 when absent.
fn metric(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// One client of the mixed load.
struct Worker {
    rng: fastrand::Rng,
    http: reqwest::Client,
    bases: Vec<String>,
    record: Arc<Mutex<Record>>,
    sandbox: Sandbox,
    started: Arc<Instant>,
    serial: Arc<AtomicU64>,
    give_up: bool,
    webhook_urls: Vec<String>,
}

impl Worker {
    fn base(&mut self) -> String {
        self.bases[self.rng.usize(..self.bases.len())].clone()
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    async fn run(mut self, deadline: Instant) {
        while Instant::now() < deadline {
            match self.rng.u32(0..100) {
                0..40 => self.keyed_create().await,
                40..55 => self.keyless_create().await,
                55..75 => self.move_upstream(),
                75..90 => self.read().await,
                _ => self.redeliver(),
            }
            tokio::time::sleep(Duration::from_millis(self.rng.u64(5..40))).await;
        }
    }

    /// A create with an Idempotency-Key, retried with that key (up to 4 attempts) until a
    /// definite answer.
    async fn keyed_create(&mut self) {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let key = format!("key-{n}-{}", self.rng.u32(..));
        let foreign = format!("order-{n}-{}", self.rng.u32(..));
        let body = order(&mut self.rng, Some(&foreign));
        let impatient = self.give_up && self.rng.bool();
        for _ in 0..4 {
            let answer = self.create(Some(&key), &foreign, &body, impatient).await;
            let again = matches!(answer, None | Some(409 | 503 | 500));
            if !again {
                break;
            }
            tokio::time::sleep(Duration::from_millis(self.rng.u64(100..600))).await;
        }
    }

    /// A create without a key: one attempt; half of them without a foreign_id (then our
    /// own id travels upstream).
    async fn keyless_create(&mut self) {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let foreign = format!("loose-{n}-{}", self.rng.u32(..));
        let with_foreign = self.rng.bool();
        let body = order(&mut self.rng, with_foreign.then_some(foreign.as_str()));
        let impatient = self.give_up && self.rng.bool();
        self.create(None, &foreign, &body, impatient).await;
    }

    async fn create(
        &mut self,
        key: Option<&str>,
        foreign: &str,
        body: &str,
        impatient: bool,
    ) -> Option<u16> {
        let base = self.base();
        let mut request = self
            .http
            .post(format!("{base}/payment/create"))
            .header("X-API-KEY", CLIENT_KEY)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if impatient {
            request = request.timeout(Duration::from_millis(400));
        }
        let mut entry = ClientCreate {
            key: key.map(str::to_owned),
            foreign_id: body.contains("foreign_id").then(|| foreign.to_owned()),
            ..ClientCreate::default()
        };
        if let Ok(response) = request.send().await {
            let status = response.status().as_u16();
            if let Ok(json) = response.json::<Value>().await {
                entry.status = Some(status);
                entry.payment_id = json["data"]["payment_id"].as_str().map(str::to_owned);
                entry.internal_id = json["data"]["id"]
                    .as_str()
                    .or_else(|| json["id"].as_str())
                    .map(str::to_owned);
            }
        }
        let status = entry.status;
        let mut record = lock(&self.record);
        if let (Some(200..300), Some(pid)) = (entry.status, entry.payment_id.clone()) {
            record.answered.push(pid);
        }
        record.creates.push(entry);
        status
    }

    /// The customer at IVPAY: picks a coin, pays, or gives up; the sandbox sends the
    /// webhook (to either instance).
    fn move_upstream(&mut self) {
        let payments = self.sandbox.payments();
        let open: Vec<_> = payments
            .iter()
            .filter(|p| !ledger::is_final(p.status.as_str()))
            .collect();
        if open.is_empty() {
            return;
        }
        let p = open[self.rng.usize(..open.len())];
        let to = match (p.status, self.rng.u32(0..10)) {
            (_, 0) => PaymentStatus::Timeout,
            (PaymentStatus::Created, 1..6) => PaymentStatus::Pending,
            _ => PaymentStatus::Paid,
        };
        self.point_webhooks();
        let _ = self.sandbox.set_status(&p.payment_id, to, false);
    }

    /// IVPAY sends the same notice again.
    fn redeliver(&mut self) {
        let payments = self.sandbox.payments();
        if payments.is_empty() {
            return;
        }
        let p = &payments[self.rng.usize(..payments.len())];
        self.point_webhooks();
        let _ = self.sandbox.redeliver(&p.payment_id);
    }

    /// With two instances, webhooks go to one or the other.
    fn point_webhooks(&mut self) {
        if self.webhook_urls.len() > 1 {
            let url = self.webhook_urls[self.rng.usize(..self.webhook_urls.len())].clone();
            let _ = self
                .sandbox
                .set_merchant(MerchantConfig::new(MERCHANT_KEY).with_webhook(url));
        }
    }

    async fn read(&mut self) {
        let pid = {
            let record = lock(&self.record);
            if record.answered.is_empty() {
                return;
            }
            record.answered[self.rng.usize(..record.answered.len())].clone()
        };
        let base = self.base();
        let sent = self.micros();
        let Ok(response) = self
            .http
            .get(format!("{base}/payment/{pid}"))
            .header("X-API-KEY", CLIENT_KEY)
            .send()
            .await
        else {
            return;
        };
        if !response.status().is_success() {
            return;
        }
        let Ok(json) = response.json::<Value>().await else {
            return;
        };
        let answered = self.micros();
        if let Some(status) = json["data"]["status"].as_str() {
            lock(&self.record).reads.push(ClientRead {
                payment_id: pid,
                status: status.to_owned(),
                sent,
                answered,
            });
        }
    }
}

fn order(rng: &mut fastrand::Rng, foreign: Option<&str>) -> String {
    let amount = format!("{}.{:02}", rng.u32(1..500), rng.u32(0..100));
    match foreign {
        Some(f) => {
            format!(r#"{{"amount_fiat":"{amount}","currency_fiat":"USD","foreign_id":"{f}"}}"#)
        }
        None => format!(r#"{{"amount_fiat":"{amount}","currency_fiat":"USD"}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn sums_one_labelled_counter_of_a_prometheus_page() {
        let page = "# TYPE ivpay_creates_total counter\n\
                    ivpay_creates_total{outcome=\"created\"} 7\n\
                    ivpay_creates_total{outcome=\"unknown\"} 2\n\
                    ivpay_creates_total_other{outcome=\"created\"} 100\n";
        assert_eq!(
            metric(page, "ivpay_creates_total{", "outcome=\"created\""),
            7
        );
        assert_eq!(
            metric(page, "ivpay_creates_total{", "outcome=\"rejected\""),
            0
        );
    }
}
