//! Deliberate misbehaviour: per route, a script of faults for the next requests and
//! random faults by probability, drawn from a seeded generator so a run can be repeated.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::lock::lock;

/// A fault on IVPAY's own routes (`POST /payment/create`, `GET /payment/{id}`).
///
/// `latency`, `server_error` and `unauthorized` happen *before* the request is handled:
/// after a 5xx or 401, no payment was created. `reset`, `garbage`, `truncated`,
/// `trailing_comma` and `slow_body` happen *after*: the payment exists (or was read) and only the answer
/// is spoiled, which is the ambiguous case a client must survive.
///
/// In JSON (control API) a fault is tagged by `kind`:
/// `{"kind":"latency","ms":250}`, `{"kind":"server_error","status":503}`,
/// `{"kind":"unauthorized"}`, `{"kind":"reset"}`, `{"kind":"garbage"}`,
/// `{"kind":"truncated"}`, `{"kind":"trailing_comma"}`, `{"kind":"slow_body","ms":1500}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HttpFault {
    /// Wait this long (real time), then answer normally.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// Answer this 5xx status with an error envelope, without handling the request.
    ServerError {
        /// 500..=599.
        status: u16,
    },
    /// Answer 401 `Wrong auth parameters` whatever the key.
    Unauthorized,
    /// Answer 429 with `Retry-After`, without handling the request (IVPAY documents no
    /// rate limit; a gateway in front of it may still answer one).
    RateLimited {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
    /// Break the connection before handling the request: nothing was created.
    ResetBeforeHandling,
    /// Handle the request, then break the connection instead of answering: the response
    /// body fails before its first byte, so the client sees a closed connection.
    Reset,
    /// Handle the request, then answer 200 with a body that is not JSON.
    Garbage,
    /// Handle the request, then answer 200 with the first half of the JSON body.
    Truncated,
    /// Handle the request, then answer with IVPAY's documented layout, trailing comma
    /// after the last field of `data` included (invalid JSON, as in IVPAY's docs).
    TrailingComma,
    /// Handle the request, send the status and headers at once, then hold the body back
    /// this long (real time): a slow body. A client that gives up meanwhile leaves a
    /// payment that exists.
    SlowBody {
        /// Milliseconds.
        ms: u64,
    },
}

/// A fault on an outgoing webhook.
///
/// JSON: `{"kind":"drop"}`, `{"kind":"duplicate"}`, `{"kind":"delay","ms":500}`,
/// `{"kind":"reorder"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookFault {
    /// Never send it (logged as `dropped`).
    Drop,
    /// Send it twice.
    Duplicate,
    /// Send it this much later (real time); later events may overtake it.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Hold it back until the next webhook has been sent, then send it (or after
    /// `WebhookPolicy::reorder_hold` if no other comes).
    Reorder,
}

/// A fault applied at random with a probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chance<F> {
    /// In `0.0..=1.0`. One number is drawn per request; the chances of a route are laid
    /// end to end, so they must add up to at most 1.
    pub probability: f64,
    /// What happens when drawn.
    pub fault: F,
}

/// The faults armed for one route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "F: Deserialize<'de>"))]
pub struct RouteFaults<F> {
    /// Applied to the next requests, one each, in order; while it is not empty, the random
    /// chances are not drawn. `GET /sandbox/faults` shows what is left.
    #[serde(default)]
    pub script: Vec<F>,
    /// Drawn for every request once the script is used up.
    #[serde(default)]
    pub random: Vec<Chance<F>>,
}

impl<F> Default for RouteFaults<F> {
    fn default() -> Self {
        Self {
            script: Vec::new(),
            random: Vec::new(),
        }
    }
}

impl<F> RouteFaults<F> {
    /// Faults for the next `script.len()` requests, in order.
    pub fn script(script: impl IntoIterator<Item = F>) -> Self {
        Self {
            script: script.into_iter().collect(),
            random: Vec::new(),
        }
    }

    /// One fault with a probability.
    pub fn chance(probability: f64, fault: F) -> Self {
        Self {
            script: Vec::new(),
            random: vec![Chance { probability, fault }],
        }
    }

    fn is_empty(&self) -> bool {
        self.script.is_empty() && self.random.is_empty()
    }

    fn validate(&self, route: &'static str) -> Result<(), ConfigError> {
        let total: f64 = self.random.iter().map(|c| c.probability).sum();
        let each_ok = self
            .random
            .iter()
            .all(|c| (0.0..=1.0).contains(&c.probability));
        if each_ok && total <= 1.0 + 1e-9 {
            Ok(())
        } else {
            Err(ConfigError::Probability { route, total })
        }
    }
}

/// Every fault armed in a sandbox, with the seed of its generator.
///
/// ```
/// use ivpay_sandbox::{FaultPlan, HttpFault, RouteFaults, WebhookFault};
///
/// let plan = FaultPlan {
///     seed: 7,
///     create: RouteFaults::script([HttpFault::ServerError { status: 503 }, HttpFault::Reset]),
///     get: RouteFaults::chance(0.1, HttpFault::Latency { ms: 200 }),
///     webhook: RouteFaults::chance(0.5, WebhookFault::Duplicate),
/// };
/// let json = serde_json::to_string(&plan)?;
/// assert!(json.contains(r#"{"kind":"server_error","status":503}"#));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Seed of the generators the random chances are drawn from (one per route, derived
    /// from this). Installing a plan reseeds, so the same plan and the same sequence of
    /// requests on a route give the same faults on that route, whatever the other routes
    /// see.
    #[serde(default)]
    pub seed: u64,
    /// Faults on `POST /payment/create`.
    #[serde(default)]
    pub create: RouteFaults<HttpFault>,
    /// Faults on `GET /payment/{payment_id}`.
    #[serde(default)]
    pub get: RouteFaults<HttpFault>,
    /// Faults on outgoing webhooks (each event, redeliveries included).
    #[serde(default)]
    pub webhook: RouteFaults<WebhookFault>,
}

impl FaultPlan {
    /// Checks probabilities and statuses.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Probability`] when a route's chances are out of range or add up to
    /// more than 1; [`ConfigError::ServerErrorStatus`] for a `server_error` outside 5xx.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.create.validate("create")?;
        self.get.validate("get")?;
        self.webhook.validate("webhook")?;
        let statuses = self
            .create
            .script
            .iter()
            .chain(self.get.script.iter())
            .chain(self.create.random.iter().map(|c| &c.fault))
            .chain(self.get.random.iter().map(|c| &c.fault));
        for fault in statuses {
            if let HttpFault::ServerError { status } = fault
                && !(500..=599).contains(status)
            {
                return Err(ConfigError::ServerErrorStatus(*status));
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.create.is_empty() && self.get.is_empty() && self.webhook.is_empty()
    }
}

/// The routes faults apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpRoute {
    Create,
    Get,
}

/// The live plan: scripts being used up, and the generator.
pub(crate) struct FaultInjector {
    /// False while no fault is armed: the hot path then skips the lock.
    armed: AtomicBool,
    state: Mutex<LiveFaults>,
    /// Faults applied so far, per route, whatever the plans installed since.
    injected: [AtomicU64; 3],
}

/// How many faults the sandbox has applied since it started, per route: a chaos run
/// reports what it injected. Installing or clearing a plan keeps the counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Faults applied to `POST /payment/create`.
    pub create: u64,
    /// Faults applied to `GET /payment/{payment_id}`.
    pub get: u64,
    /// Faults applied to outgoing webhook events.
    pub webhook: u64,
}

struct LiveFaults {
    seed: u64,
    create: LiveRoute<HttpFault>,
    get: LiveRoute<HttpFault>,
    webhook: LiveRoute<WebhookFault>,
}

/// One route's faults, with its own generator: how often one route is called does not
/// change what another draws.
struct LiveRoute<F> {
    script: VecDeque<F>,
    random: Vec<Chance<F>>,
    rng: fastrand::Rng,
}

impl<F: Clone> LiveRoute<F> {
    fn from_plan(route: RouteFaults<F>, seed: u64, stream: u64) -> Self {
        Self {
            script: route.script.into(),
            random: route.random,
            // Distinct, fixed streams per route from one seed.
            rng: fastrand::Rng::with_seed(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }

    fn to_plan(&self) -> RouteFaults<F> {
        RouteFaults {
            script: self.script.iter().cloned().collect(),
            random: self.random.clone(),
        }
    }

    fn next(&mut self) -> Option<F> {
        if let Some(fault) = self.script.pop_front() {
            return Some(fault);
        }
        if self.random.is_empty() {
            return None;
        }
        let draw = self.rng.f64();
        let mut edge = 0.0;
        for chance in &self.random {
            edge += chance.probability;
            if draw < edge {
                return Some(chance.fault.clone());
            }
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.script.is_empty() && self.random.is_empty()
    }
}

impl LiveFaults {
    fn from_plan(plan: FaultPlan) -> Self {
        Self {
            seed: plan.seed,
            create: LiveRoute::from_plan(plan.create, plan.seed, 1),
            get: LiveRoute::from_plan(plan.get, plan.seed, 2),
            webhook: LiveRoute::from_plan(plan.webhook, plan.seed, 3),
        }
    }

    fn is_empty(&self) -> bool {
        self.create.is_empty() && self.get.is_empty() && self.webhook.is_empty()
    }
}

impl FaultInjector {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        Self {
            armed: AtomicBool::new(!plan.is_empty()),
            state: Mutex::new(LiveFaults::from_plan(plan)),
            injected: Default::default(),
        }
    }

    /// Replaces the plan and reseeds.
    pub(crate) fn install(&self, plan: FaultPlan) {
        let mut state = lock(&self.state);
        self.armed.store(!plan.is_empty(), Ordering::Release);
        *state = LiveFaults::from_plan(plan);
    }

    /// The plan as it stands (scripts show what is left).
    pub(crate) fn plan(&self) -> FaultPlan {
        let state = lock(&self.state);
        FaultPlan {
            seed: state.seed,
            create: state.create.to_plan(),
            get: state.get.to_plan(),
            webhook: state.webhook.to_plan(),
        }
    }

    pub(crate) fn next_http(&self, route: HttpRoute) -> Option<HttpFault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut state = lock(&self.state);
        let (fault, slot) = match route {
            HttpRoute::Create => (state.create.next(), 0),
            HttpRoute::Get => (state.get.next(), 1),
        };
        self.disarm_if_spent(&state);
        self.count(fault.is_some(), slot);
        fault
    }

    pub(crate) fn next_webhook(&self) -> Option<WebhookFault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut state = lock(&self.state);
        let fault = state.webhook.next();
        self.disarm_if_spent(&state);
        self.count(fault.is_some(), 2);
        fault
    }

    fn count(&self, applied: bool, slot: usize) {
        if applied {
            self.injected[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Faults applied so far.
    pub(crate) fn injected(&self) -> FaultCounts {
        let [create, get, webhook] = &self.injected;
        FaultCounts {
            create: create.load(Ordering::Relaxed),
            get: get.load(Ordering::Relaxed),
            webhook: webhook.load(Ordering::Relaxed),
        }
    }

    fn disarm_if_spent(&self, state: &LiveFaults) {
        if state.is_empty() {
            self.armed.store(false, Ordering::Release);
        }
    }
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("plan", &self.plan())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(injector: &FaultInjector, n: usize) -> Vec<Option<HttpFault>> {
        (0..n).map(|_| injector.next_http(HttpRoute::Get)).collect()
    }

    #[test]
    fn a_script_is_applied_in_order_then_stops() {
        let injector = FaultInjector::new(FaultPlan {
            create: RouteFaults::script([HttpFault::Reset, HttpFault::Garbage]),
            ..FaultPlan::default()
        });
        assert_eq!(
            injector.next_http(HttpRoute::Create),
            Some(HttpFault::Reset)
        );
        assert_eq!(injector.next_http(HttpRoute::Get), None);
        assert_eq!(
            injector.next_http(HttpRoute::Create),
            Some(HttpFault::Garbage)
        );
        assert_eq!(injector.next_http(HttpRoute::Create), None);
        assert!(!injector.armed.load(Ordering::Acquire));
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let plan = FaultPlan {
            seed: 42,
            get: RouteFaults::chance(0.3, HttpFault::Unauthorized),
            ..FaultPlan::default()
        };
        let a = draws(&FaultInjector::new(plan.clone()), 200);
        let b = draws(&FaultInjector::new(plan.clone()), 200);
        assert_eq!(a, b);
        let hits = a.iter().filter(|f| f.is_some()).count();
        assert!((30..=90).contains(&hits), "{hits} of 200 at p=0.3");
        let other = draws(&FaultInjector::new(FaultPlan { seed: 43, ..plan }), 200);
        assert_ne!(a, other);
    }

    #[test]
    fn traffic_on_one_route_does_not_change_another_routes_draws() {
        let plan = FaultPlan {
            seed: 3,
            get: RouteFaults::chance(0.5, HttpFault::Garbage),
            webhook: RouteFaults::chance(0.5, WebhookFault::Drop),
            ..FaultPlan::default()
        };
        let quiet = FaultInjector::new(plan.clone());
        let busy = FaultInjector::new(plan);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..50 {
            a.push(quiet.next_http(HttpRoute::Get));
            let _ = busy.next_webhook();
            let _ = busy.next_webhook();
            b.push(busy.next_http(HttpRoute::Get));
        }
        assert_eq!(a, b);
    }

    #[test]
    fn installing_a_plan_reseeds() {
        let plan = FaultPlan {
            seed: 9,
            get: RouteFaults::chance(0.5, HttpFault::Garbage),
            ..FaultPlan::default()
        };
        let injector = FaultInjector::new(plan.clone());
        let first = draws(&injector, 50);
        injector.install(plan);
        assert_eq!(draws(&injector, 50), first);
    }

    #[test]
    fn probability_one_always_fires_and_zero_never() {
        let injector = FaultInjector::new(FaultPlan {
            create: RouteFaults::chance(1.0, HttpFault::Reset),
            get: RouteFaults::chance(0.0, HttpFault::Reset),
            ..FaultPlan::default()
        });
        for _ in 0..100 {
            assert_eq!(
                injector.next_http(HttpRoute::Create),
                Some(HttpFault::Reset)
            );
            assert_eq!(injector.next_http(HttpRoute::Get), None);
        }
    }

    #[test]
    fn refuses_probabilities_adding_up_past_one() {
        let plan = FaultPlan {
            webhook: RouteFaults {
                script: vec![],
                random: vec![
                    Chance {
                        probability: 0.7,
                        fault: WebhookFault::Drop,
                    },
                    Chance {
                        probability: 0.7,
                        fault: WebhookFault::Duplicate,
                    },
                ],
            },
            ..FaultPlan::default()
        };
        assert!(matches!(
            plan.validate(),
            Err(ConfigError::Probability {
                route: "webhook",
                ..
            })
        ));
    }

    #[test]
    fn refuses_a_server_error_that_is_not_5xx() {
        let plan = FaultPlan {
            create: RouteFaults::script([HttpFault::ServerError { status: 404 }]),
            ..FaultPlan::default()
        };
        assert_eq!(plan.validate(), Err(ConfigError::ServerErrorStatus(404)));
    }

    #[test]
    fn faults_read_from_json_by_kind() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"seed":1,"create":{"script":[{"kind":"trailing_comma"},{"kind":"latency","ms":5}]},
                "webhook":{"random":[{"probability":0.25,"fault":{"kind":"delay","ms":10}}]}}"#,
        )
        .expect("valid plan");
        assert_eq!(
            plan.create.script,
            vec![HttpFault::TrailingComma, HttpFault::Latency { ms: 5 }]
        );
        assert_eq!(plan.webhook.random[0].fault, WebhookFault::Delay { ms: 10 });
        assert!(plan.get.script.is_empty());
    }
}
