//! Delivery on a clock the test moves, over the real storage: the attempts follow the
//! retry schedule (with its jitter bounds) and give up after its last wait; an endpoint
//! failing for longer than `disable_after` is disabled and its notices skipped; two
//! deliverers on one database never send the same attempt twice; and a change that loses
//! its compare-and-set writes no notice.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivpay_domain::{
    AccountId, InternalId, NewPayment, NoticeFilter, Payment, Timestamp, UpstreamPayment,
};
use ivpay_persistence::SeaOrmRepository;
use ivpay_ports::{
    DeliveryState, NewEndpoint, NoticeSender, NotificationFilter, NotificationStore,
    NotificationUseCases, OutboundNotice, PaymentStore, RepositoryError, SendOutcome, SendReport,
};
use ivpay_service::{Directory, ManualClock, Notifications, NotifyConfig};

use crate::support::{Backend, fresh_db};

on_both_backends!(
    attempts_follow_the_schedule_then_give_up,
    an_endpoint_failing_too_long_is_disabled_and_its_notices_skipped,
    two_deliverers_never_send_one_attempt_twice,
    a_change_that_loses_its_compare_and_set_writes_no_notice,
);

const T0: i64 = 1_800_000_000;

/// A sender that answers each notice with the next scripted status (then `otherwise`),
/// and remembers what it was asked to send.
#[derive(Clone)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<u16>>>,
    otherwise: u16,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn always(status: u16) -> Self {
        Self {
            answers: Arc::default(),
            otherwise: status,
            sent: Arc::default(),
        }
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().expect("sent").clone()
    }
}

#[async_trait::async_trait]
impl NoticeSender for Scripted {
    async fn send(&self, notice: &OutboundNotice) -> SendReport {
        let id = notice
            .headers
            .iter()
            .find(|(name, _)| *name == "webhook-id")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.sent.lock().expect("sent").push(id);
        // Long enough for two deliverers' passes to overlap.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let status = self
            .answers
            .lock()
            .expect("answers")
            .pop_front()
            .unwrap_or(self.otherwise);
        SendReport {
            outcome: SendOutcome::Answered {
                status,
                excerpt: String::new(),
            },
            latency: Duration::from_millis(20),
        }
    }
}

type Deliverer = Notifications<SeaOrmRepository, Scripted, ManualClock>;

struct Rig {
    repo: SeaOrmRepository,
    clock: ManualClock,
    directory: Arc<Directory>,
    _db: ivpay_persistence::testing::TestDatabase,
}

async fn rig(backend: Backend) -> Option<Rig> {
    let db = fresh_db(backend).await?;
    let conn = ivpay_persistence::connect(db.url(), &Default::default())
        .await
        .expect("connects");
    ivpay_persistence::migrate_up(&conn)
        .await
        .expect("migrates");
    let directory = Arc::new(Directory::new());
    let repo = SeaOrmRepository::new(&conn).with_audience(directory.clone());
    Some(Rig {
        repo,
        clock: ManualClock::new(Timestamp::from_unix_seconds(T0)),
        directory,
        _db: db,
    })
}

impl Rig {
    fn deliverer(&self, sender: Scripted, config: NotifyConfig) -> Deliverer {
        Notifications::new(
            Arc::new(self.repo.clone()),
            sender,
            Arc::new(self.clock.clone()),
            self.directory.clone(),
            config,
        )
    }

    /// Adds an endpoint of `shop` hearing every type.
    async fn endpoint(&self, d: &Deliverer) -> ivpay_domain::EndpointId {
        d.add_endpoint(NewEndpoint {
            id: None,
            client: "shop".parse().expect("client"),
            url: "https://shop.example/hook".parse().expect("url"),
            filter: NoticeFilter::all(),
            description: None,
            secret: None,
        })
        .await
        .expect("added")
        .endpoint
        .id
    }

    /// A payment of `shop` created at IVPAY, its outcome stored: one `payment.created`.
    async fn created_payment(&self, n: u128) -> Payment {
        let now = self.clock_now();
        let mut p = Payment::initiate(
            InternalId::from_uuid(uuid::Uuid::from_u128(n)),
            "shop".parse().expect("client"),
            AccountId::default(),
            NewPayment::from_fields("10.00", "USD", None, None, None).expect("valid"),
            now,
        );
        self.repo.insert_intent(&p, None).await.expect("intent");
        let version = p.version();
        p.mark_created(
            UpstreamPayment {
                payment_id: format!("up{n}").parse().expect("id"),
                payment_url: format!("https://pay.example/up{n}").parse().expect("url"),
                created_at: now,
            },
            now,
        )
        .expect("settles");
        self.repo
            .save_outcome(&p, version, None)
            .await
            .expect("outcome");
        p
    }

    fn clock_now(&self) -> Timestamp {
        ivpay_ports::Clock::now(&self.clock)
    }

    /// The delivery log, once what changes owe is written out (as a deliverer's pass
    /// does first).
    async fn log(&self) -> Vec<ivpay_ports::Notification> {
        self.repo.announce_pending(100).await.expect("written out");
        self.repo
            .notifications(&NotificationFilter::default(), 100)
            .await
            .expect("log")
    }
}

async fn attempts_follow_the_schedule_then_give_up(backend: Backend) {
    let Some(rig) = rig(backend).await else {
        return;
    };
    let sender = Scripted::always(500);
    let config = NotifyConfig::default();
    let d = rig.deliverer(sender.clone(), config.clone());
    rig.endpoint(&d).await;
    rig.created_payment(1).await;

    let first = d.deliver_due().await.expect("a pass");
    assert_eq!((first.claimed, first.retried), (1, 1), "{first:?}");
    for (round, wait) in config.schedule.iter().enumerate() {
        let n = rig.log().await.remove(0);
        let next = n.next_attempt_at.expect("pending, with a next attempt");
        let waited = next.since(rig.clock_now()).as_secs_f64();
        let wanted = wait.as_secs_f64();
        assert!(
            waited >= (wanted * 0.9).floor() && waited <= (wanted * 1.1).ceil(),
            "round {round}: next attempt in {waited} s for a wait of {wanted} s"
        );
        // Nothing is due a second early.
        rig.clock
            .advance(next.since(rig.clock_now()) - Duration::from_secs(1));
        assert_eq!(d.deliver_due().await.expect("a pass").claimed, 0);
        rig.clock.advance(Duration::from_secs(1));
        let pass = d.deliver_due().await.expect("a pass");
        assert_eq!(pass.claimed, 1, "round {round}: {pass:?}");
    }
    let n = rig.log().await.remove(0);
    assert_eq!(n.state, DeliveryState::Failed, "{n:?}");
    assert_eq!(n.attempts as usize, config.schedule.len() + 1);
    assert_eq!(n.next_attempt_at, None);
    let attempts = rig.repo.attempts(n.id).await.expect("attempts");
    assert_eq!(attempts.len(), config.schedule.len() + 1);
    assert!(attempts.iter().all(|a| a.status == Some(500)));
    let spread = attempts.last().expect("last").at.since(attempts[0].at);
    let days = spread.as_secs_f64() / 86_400.0;
    assert!(
        (2.6..3.6).contains(&days),
        "about three days of attempts: {days}"
    );
    assert_eq!(
        sender.sent().len(),
        attempts.len(),
        "one send per recorded attempt"
    );
}

async fn an_endpoint_failing_too_long_is_disabled_and_its_notices_skipped(backend: Backend) {
    let Some(rig) = rig(backend).await else {
        return;
    };
    let sender = Scripted::always(503);
    let config = NotifyConfig {
        schedule: vec![Duration::from_secs(3600); 5],
        jitter_percent: 0,
        disable_after: Duration::from_secs(2 * 3600),
        ..NotifyConfig::default()
    };
    let d = rig.deliverer(sender.clone(), config);
    let endpoint = rig.endpoint(&d).await;
    rig.created_payment(1).await;
    d.deliver_due().await.expect("first attempt");
    let shown = d.endpoint(endpoint.clone()).await.expect("endpoint");
    assert_eq!(
        shown.failing_since,
        Some(rig.clock_now()),
        "the streak starts"
    );
    rig.clock.advance(Duration::from_secs(3600));
    let pass = d.deliver_due().await.expect("second attempt");
    assert_eq!(
        pass.endpoints_disabled, 0,
        "one hour of failing is not enough"
    );
    rig.clock.advance(Duration::from_secs(3600));
    let pass = d.deliver_due().await.expect("third attempt");
    assert_eq!(pass.endpoints_disabled, 1, "two hours is: {pass:?}");
    let shown = d.endpoint(endpoint.clone()).await.expect("endpoint");
    assert_eq!(
        shown.disabled.as_ref().map(|x| x.reason.as_str()),
        Some("failing")
    );
    // What is written for it now is skipped, not sent; the streak is over.
    rig.created_payment(2).await;
    rig.clock.advance(Duration::from_secs(3600));
    let sent_before = sender.sent().len();
    let pass = d.deliver_due().await.expect("a pass");
    assert_eq!(pass.skipped, 2, "both notices: {pass:?}");
    assert_eq!(
        sender.sent().len(),
        sent_before,
        "nothing sent to a disabled endpoint"
    );
    assert!(
        rig.log()
            .await
            .iter()
            .all(|n| n.state == DeliveryState::Skipped)
    );
    // Enabled again and recovered, both go out.
    d.set_enabled(endpoint.clone(), true)
        .await
        .expect("enabled");
    let resent = d
        .recover(endpoint, Timestamp::from_unix_seconds(T0))
        .await
        .expect("recovered");
    assert_eq!(resent, 2);
    sender.answers.lock().expect("answers").extend([204, 204]);
    let pass = d.deliver_due().await.expect("a pass");
    assert_eq!(pass.delivered, 2, "{pass:?}");
}

async fn two_deliverers_never_send_one_attempt_twice(backend: Backend) {
    let Some(rig) = rig(backend).await else {
        return;
    };
    let sender = Scripted::always(204);
    let config = NotifyConfig {
        batch: 7,
        ..NotifyConfig::default()
    };
    let a = rig.deliverer(sender.clone(), config.clone());
    let b = rig.deliverer(sender.clone(), config);
    rig.endpoint(&a).await;
    for n in 1..=40 {
        rig.created_payment(n).await;
    }
    let mut delivered = 0;
    while delivered < 40 {
        let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
        let (ra, rb) = (ra.expect("a"), rb.expect("b"));
        assert_eq!(ra.lease_lost + rb.lease_lost, 0);
        delivered += ra.delivered + rb.delivered;
        assert!(ra.claimed + rb.claimed > 0, "progress");
    }
    let sent = sender.sent();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &sent {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 40, "every notice sent");
    assert!(seen.values().all(|n| *n == 1), "none twice: {seen:?}");
    assert!(
        rig.log()
            .await
            .iter()
            .all(|n| n.state == DeliveryState::Delivered && n.attempts == 1)
    );
}

async fn a_change_that_loses_its_compare_and_set_writes_no_notice(backend: Backend) {
    let Some(rig) = rig(backend).await else {
        return;
    };
    let d = rig.deliverer(Scripted::always(204), NotifyConfig::default());
    rig.endpoint(&d).await;
    let p = rig.created_payment(1).await;
    assert_eq!(rig.log().await.len(), 1, "payment.created");
    // Two writers read version 2; the second loses and must announce nothing.
    let now = rig.clock_now();
    let mut first = p.clone();
    let mut second = Payment::restore(p.to_record()).expect("restores");
    first.apply_status(ivpay_domain::PaymentStatus::Pending, None, now);
    second.apply_status(ivpay_domain::PaymentStatus::Paid, None, now);
    let event = |to: ivpay_domain::PaymentStatus| ivpay_domain::PaymentEvent {
        payment: Some(p.id()),
        payment_id: "up1".parse().expect("id"),
        source: ivpay_domain::UpdateSource::Poll,
        from: Some(ivpay_domain::PaymentStatus::Created),
        to: ivpay_domain::ReportedStatus::Known(to),
        outcome: ivpay_domain::EventOutcome::Applied,
        evidence: None,
        received_at: now,
    };
    rig.repo
        .update_status(
            &first,
            p.version(),
            &event(ivpay_domain::PaymentStatus::Pending),
        )
        .await
        .expect("the first writer wins");
    let lost = rig
        .repo
        .update_status(
            &second,
            p.version(),
            &event(ivpay_domain::PaymentStatus::Paid),
        )
        .await;
    assert!(
        matches!(lost, Err(RepositoryError::VersionConflict { .. })),
        "{lost:?}"
    );
    let kinds: Vec<&str> = rig
        .log()
        .await
        .iter()
        .map(|n| n.kind.as_str())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(kinds, ["payment.created", "payment.pending"]);

    // The same for a create's outcome (on PostgreSQL one statement, not a transaction):
    // two answers for one intent, the second stored from a stale version.
    let intent = Payment::initiate(
        InternalId::from_uuid(uuid::Uuid::from_u128(2)),
        "shop".parse().expect("client"),
        AccountId::default(),
        NewPayment::from_fields("1.00", "USD", None, None, None).expect("valid"),
        now,
    );
    rig.repo.insert_intent(&intent, None).await.expect("intent");
    let (mut created, mut rejected) = (intent.clone(), intent.clone());
    created
        .mark_created(
            UpstreamPayment {
                payment_id: "up2".parse().expect("id"),
                payment_url: "https://pay.example/up2".parse().expect("url"),
                created_at: now,
            },
            now,
        )
        .expect("settles");
    rejected.mark_rejected("400".into(), now).expect("settles");
    rig.repo
        .save_outcome(&created, intent.version(), None)
        .await
        .expect("the first answer is stored");
    let lost = rig
        .repo
        .save_outcome(&rejected, intent.version(), None)
        .await;
    assert!(
        matches!(lost, Err(RepositoryError::VersionConflict { .. })),
        "{lost:?}"
    );
    let second: Vec<&str> = rig
        .log()
        .await
        .iter()
        .filter(|n| n.payment == intent.id())
        .map(|n| n.kind.as_str())
        .collect();
    assert_eq!(second, ["payment.created"]);
}
