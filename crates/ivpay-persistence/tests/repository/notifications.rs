//! The outbox: a change's notices written with it (and only if it is written), claimed by
//! one deliverer at a time, moved on by each attempt, sent again on request, listed in the
//! delivery log; and the endpoints they go to.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ivpay_domain::{
    AccountId, ClientId, Disabled, Endpoint, EndpointId, EndpointSecrets, NewPayment, NoticeBody,
    NoticeFilter, NoticeType, Payment, PaymentStatus, Timestamp,
};
use ivpay_persistence::{Backend, SeaOrmRepository};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    AfterAttempt, AttemptOutcome, DeliveryAttempt, DeliveryState, LeaseWrite, NoticeAudience,
    NoticeBacklog, Notification, NotificationFilter, NotificationStore, PaymentStore,
    RepositoryError, Retained, RetentionStore,
};
use tokio::sync::Barrier;

use crate::support::{
    Storage, TestDb, applied_event, at, created_upstream, id, intent, move_to, shop, upstream,
};

/// A backend whose writes can be heard: the SQL adapter and the fake both take an audience.
pub(crate) trait Outbox: Storage + NotificationStore {
    /// The same storage, writing notices for whoever `audience` names.
    fn heard_by(self, audience: Arc<dyn NoticeAudience>) -> Self;
}

impl Outbox for SeaOrmRepository {
    fn heard_by(self, audience: Arc<dyn NoticeAudience>) -> Self {
        self.with_audience(audience)
    }
}

impl Outbox for InMemoryRepository {
    fn heard_by(self, audience: Arc<dyn NoticeAudience>) -> Self {
        self.with_audience(audience)
    }
}

/// Endpoints as `(client, endpoint, filter)`; each hears its client's notices of the kinds
/// its filter names (`*`: every kind).
struct Listeners(Vec<(ClientId, EndpointId, NoticeFilter)>);

impl NoticeAudience for Listeners {
    fn endpoints_for(&self, client: &ClientId, kind: NoticeType) -> Vec<EndpointId> {
        self.0
            .iter()
            .filter(|(c, _, filter)| c == client && filter.wants(kind))
            .map(|(_, e, _)| e.clone())
            .collect()
    }
}

fn listeners(list: &[(&str, &str, &str)]) -> Arc<dyn NoticeAudience> {
    Arc::new(Listeners(
        list.iter()
            .map(|(client, endpoint, filter)| {
                (
                    client.parse().expect("client"),
                    ep(endpoint),
                    filter.parse().expect("filter"),
                )
            })
            .collect(),
    ))
}

fn ep(name: &str) -> EndpointId {
    name.parse().expect("endpoint id")
}

fn other() -> ClientId {
    "other".parse().expect("client")
}

/// Payment `n` of client `other`, stored as created upstream at `created`.
async fn created_for_other(repo: &impl PaymentStore, n: u128, created: i64) -> Payment {
    let request = NewPayment::from_fields("3.00", "EUR", None, None, None).expect("valid");
    let mut p = Payment::initiate(id(n), other(), AccountId::default(), request, at(created));
    repo.insert_intent(&p, None).await.expect("intent stored");
    let read = p.version();
    p.mark_created(upstream(n, created), at(created))
        .expect("settles");
    repo.save_outcome(&p, read, None)
        .await
        .expect("outcome stored");
    p
}

/// A deliverer's claim: what changes still owe written out first, as the deliverer does.
async fn claim(
    repo: &impl NotificationStore,
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<Notification>, RepositoryError> {
    repo.announce_pending(limit).await?;
    repo.claim_notifications(now, until, limit).await
}

/// Every notification, newest first.
async fn all(repo: &impl NotificationStore) -> Vec<Notification> {
    listed(repo, NotificationFilter::default()).await
}

/// The notifications `filter` selects, newest first, once what changes still owe is
/// written out (as the deliverer does before each claim).
async fn listed(repo: &impl NotificationStore, filter: NotificationFilter) -> Vec<Notification> {
    repo.announce_pending(1_000).await.expect("written out");
    repo.notifications(&filter, 1_000).await.expect("listed")
}

/// The notifications about payment `n`, oldest first.
async fn about(repo: &impl NotificationStore, n: u128) -> Vec<Notification> {
    let mut found = listed(
        repo,
        NotificationFilter {
            payment: Some(id(n)),
            ..NotificationFilter::default()
        },
    )
    .await;
    found.reverse();
    found
}

/// What `payment`'s notice of `kind` says, as the SQL adapter's serde_json writes it.
fn body(kind: NoticeType, payment: &Payment) -> String {
    serde_json::to_string(&NoticeBody::of(kind, payment)).expect("a body serialises")
}

fn kinds_to(notices: &[Notification], endpoint: &str) -> Vec<NoticeType> {
    notices
        .iter()
        .filter(|n| n.endpoint == ep(endpoint))
        .map(|n| n.kind)
        .collect()
}

fn attempt(n: &Notification, number: u32, when: i64, status: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt {
        notification: n.id,
        number,
        at: at(when),
        status,
        latency_ms: 42,
        excerpt: status.map(|s| format!("answered {s}")),
        error: status.is_none().then(|| "connection refused".to_owned()),
    }
}

fn outcome(
    n: &Notification,
    attempt: Option<DeliveryAttempt>,
    next: AfterAttempt,
) -> AttemptOutcome {
    AttemptOutcome {
        attempt,
        notification: n.id,
        next,
    }
}

async fn reread(repo: &impl NotificationStore, n: &Notification) -> Notification {
    repo.notification(n.id)
        .await
        .expect("read")
        .expect("still there")
}

pub(crate) async fn a_change_writes_one_notice_per_listening_endpoint_with_one_message_id(
    repo: impl Outbox,
) {
    let repo = repo.heard_by(listeners(&[
        ("shop", "ep-a", "*"),
        ("shop", "ep-b", "*"),
        ("other", "ep-c", "*"),
    ]));
    let mut p = intent(1, "10.50", 100);
    repo.insert_intent(&p, None).await.expect("stored");
    assert!(
        about(&repo, 1).await.is_empty(),
        "an intent announces nothing"
    );

    let read = p.version();
    p.mark_created(upstream(1, 110), at(110)).expect("settles");
    repo.save_outcome(&p, read, Some(at(200)))
        .await
        .expect("stored");
    let created = about(&repo, 1).await;
    assert_eq!(created.len(), 2, "{created:?}");
    let endpoints: BTreeSet<_> = created.iter().map(|n| n.endpoint.clone()).collect();
    assert_eq!(endpoints, BTreeSet::from([ep("ep-a"), ep("ep-b")]));
    assert_ne!(created[0].id, created[1].id, "one row per endpoint");
    let message = &created[0].message_id;
    let hex = message.strip_prefix("msg_").expect("msg_ prefix");
    assert!(
        hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{message}"
    );
    for n in &created {
        assert_eq!(&n.message_id, message, "one message id for every endpoint");
        assert_eq!(n.kind, NoticeType::Created);
        assert_eq!((n.client.clone(), n.payment), (shop(), id(1)));
        assert_eq!(n.sequence, p.version());
        assert_eq!(n.body, body(NoticeType::Created, &p), "the body as signed");
        assert_eq!(n.created_at, at(110));
        assert_eq!(n.state, DeliveryState::Pending);
        assert_eq!((n.attempts, n.round_attempts), (0, 0));
        assert_eq!(n.next_attempt_at, Some(at(110)), "due at once");
        assert_eq!(
            (n.last_status, &n.last_error, n.delivered_at),
            (None, &None, None)
        );
    }

    // The same value changed again: only the new change is announced, not the stored one.
    move_to(&repo, &mut p, PaymentStatus::Pending, 120).await;
    let now = about(&repo, 1).await;
    assert_eq!(now.len(), 4, "{now:?}");
    let pending: Vec<_> = now
        .iter()
        .filter(|n| n.kind == NoticeType::Pending)
        .collect();
    assert_eq!(pending.len(), 2);
    assert_ne!(
        &pending[0].message_id, message,
        "a new notice, a new message id"
    );
    assert_eq!(pending[0].message_id, pending[1].message_id);
    for n in pending {
        assert_eq!(n.sequence, p.version());
        assert_eq!(n.body, body(NoticeType::Pending, &p));
        assert_eq!(n.created_at, at(120));
    }
    assert!(
        listed(
            &repo,
            NotificationFilter {
                client: Some(other()),
                ..NotificationFilter::default()
            }
        )
        .await
        .is_empty(),
        "another client's endpoint hears nothing of shop's payments"
    );
}

/// A change that comes before the deliverer has written out what the change before it
/// owes: both are announced, each with the payment as its own change left it (a create's
/// outcome keeps its notices on the payment's row until they are written out).
pub(crate) async fn a_change_before_the_last_is_written_out_announces_both_as_they_were(
    repo: impl Outbox,
) {
    let repo = repo.heard_by(listeners(&[("shop", "ep-a", "*")]));
    // Created, then PENDING before anything was written out.
    let mut p = intent(1, "10.50", 100);
    repo.insert_intent(&p, None).await.expect("stored");
    let read = p.version();
    p.mark_created(upstream(1, 110), at(110)).expect("settles");
    repo.save_outcome(&p, read, Some(at(200)))
        .await
        .expect("stored");
    let created = p.clone();
    move_to(&repo, &mut p, PaymentStatus::Pending, 120).await;
    // An outcome after an unknown one (a link), also before anything was written out.
    let mut q = intent(2, "3.00", 100);
    repo.insert_intent(&q, None).await.expect("stored");
    q.mark_unknown("timed out".into(), at(101))
        .expect("settles");
    repo.save_outcome(&q, 1, None).await.expect("stored");
    let unknown = q.clone();
    let read = q.version();
    q.mark_created(upstream(2, 105), at(130)).expect("links");
    repo.save_outcome(&q, read, None).await.expect("stored");

    let seen = |notices: Vec<Notification>| {
        notices
            .into_iter()
            .map(|n| (n.kind, n.sequence, n.body, n.created_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seen(about(&repo, 1).await),
        [
            (
                NoticeType::Created,
                created.version(),
                body(NoticeType::Created, &created),
                at(110)
            ),
            (
                NoticeType::Pending,
                p.version(),
                body(NoticeType::Pending, &p),
                at(120)
            ),
        ]
    );
    assert_eq!(
        seen(about(&repo, 2).await),
        [
            (
                NoticeType::Unknown,
                unknown.version(),
                body(NoticeType::Unknown, &unknown),
                at(101)
            ),
            (
                NoticeType::Linked,
                q.version(),
                body(NoticeType::Linked, &q),
                at(130)
            ),
        ]
    );
    assert_eq!(
        repo.announce_pending(10).await.expect("read"),
        0,
        "nothing is owed twice"
    );
    assert_eq!(all(&repo).await.len(), 4);
}

/// The backlog counts what is owed (payments whose notices are not written out yet) and
/// what is pending (notifications waiting for an attempt); a delivered one leaves it.
pub(crate) async fn the_backlog_counts_what_is_owed_and_what_is_pending(repo: impl Outbox) {
    let repo = repo.heard_by(listeners(&[("shop", "ep-a", "*"), ("shop", "ep-b", "*")]));
    assert_eq!(
        repo.backlog().await.expect("read"),
        NoticeBacklog::default()
    );
    created_upstream(&repo, 1, 100, None).await;
    let before = repo.backlog().await.expect("read");
    assert!(
        [(1, 0), (0, 2)].contains(&(before.owed, before.pending)),
        "owed by the payment (SQL), or already two rows (the fake): {before:?}"
    );
    let claimed = claim(&repo, at(100), at(160), 10).await.expect("claimed");
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        repo.backlog().await.expect("read"),
        NoticeBacklog {
            owed: 0,
            pending: 2
        },
        "written out: two notifications, claimed but still pending"
    );
    let delivered = attempt(&claimed[0], 1, 101, Some(204));
    repo.record_attempts(
        &[outcome(
            &claimed[0],
            Some(delivered),
            AfterAttempt::Delivered,
        )],
        at(160),
    )
    .await
    .expect("recorded");
    assert_eq!(
        repo.backlog().await.expect("read"),
        NoticeBacklog {
            owed: 0,
            pending: 1
        }
    );
}

pub(crate) async fn every_settled_outcome_is_announced_to_the_endpoints_that_want_it(
    repo: impl Outbox,
) {
    let repo = repo.heard_by(listeners(&[
        ("shop", "every", "*"),
        ("shop", "gone", "payment.rejected,payment.abandoned"),
        ("shop", "ends", "payment.paid,payment.timeout"),
    ]));
    // Rejected, with a reason the body must escape as serde_json does.
    let mut rejected = intent(1, "1.00", 100);
    repo.insert_intent(&rejected, None).await.expect("stored");
    let read = rejected.version();
    rejected
        .mark_rejected("bad \"amount\" \\ é\n\t\u{1}\u{7f} ✓".into(), at(101))
        .expect("settles");
    repo.save_outcome(&rejected, read, None)
        .await
        .expect("stored");
    let notices = about(&repo, 1).await;
    assert_eq!(kinds_to(&notices, "every"), [NoticeType::Rejected]);
    assert_eq!(kinds_to(&notices, "gone"), [NoticeType::Rejected]);
    assert!(kinds_to(&notices, "ends").is_empty());
    assert!(
        notices
            .iter()
            .all(|n| n.body == body(NoticeType::Rejected, &rejected)),
        "{notices:?}"
    );

    // Unknown, then found at IVPAY: linked.
    let mut unknown = intent(2, "2.00", 100);
    repo.insert_intent(&unknown, None).await.expect("stored");
    let read = unknown.version();
    unknown
        .mark_unknown("timeout".into(), at(102))
        .expect("settles");
    repo.save_outcome(&unknown, read, None)
        .await
        .expect("stored");
    let unknown_body = body(NoticeType::Unknown, &unknown);
    let read = unknown.version();
    unknown
        .mark_created(upstream(2, 103), at(103))
        .expect("links");
    repo.save_outcome(&unknown, read, Some(at(200)))
        .await
        .expect("stored");
    let notices = about(&repo, 2).await;
    assert_eq!(
        kinds_to(&notices, "every"),
        [NoticeType::Unknown, NoticeType::Linked]
    );
    assert_eq!(notices[0].body, unknown_body);
    assert_eq!(notices[1].body, body(NoticeType::Linked, &unknown));
    assert_eq!(notices.len(), 2);

    // Abandoned.
    let mut abandoned = intent(3, "3.00", 100);
    repo.insert_intent(&abandoned, None).await.expect("stored");
    let read = abandoned.version();
    abandoned
        .mark_abandoned("not sent: HTTP 429".into(), at(104))
        .expect("settles");
    repo.save_abandoned(&abandoned, read).await.expect("stored");
    let notices = about(&repo, 3).await;
    assert_eq!(kinds_to(&notices, "every"), [NoticeType::Abandoned]);
    assert_eq!(kinds_to(&notices, "gone"), [NoticeType::Abandoned]);
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].body, body(NoticeType::Abandoned, &abandoned));

    // Created, then paid.
    let mut paid = created_upstream(&repo, 4, 100, Some(200)).await;
    move_to(&repo, &mut paid, PaymentStatus::Paid, 150).await;
    let notices = about(&repo, 4).await;
    assert_eq!(
        kinds_to(&notices, "every"),
        [NoticeType::Created, NoticeType::Paid]
    );
    assert_eq!(kinds_to(&notices, "ends"), [NoticeType::Paid]);
    assert_eq!(notices.len(), 3);
    let paid_notice = notices
        .iter()
        .find(|n| n.kind == NoticeType::Paid)
        .expect("announced");
    assert_eq!(paid_notice.body, body(NoticeType::Paid, &paid));
    assert_eq!(paid_notice.sequence, paid.version());
}

pub(crate) async fn a_lost_compare_and_set_writes_no_notice(repo: impl Outbox) {
    let repo = repo.heard_by(listeners(&[("shop", "ep", "*")]));

    // A status update.
    created_upstream(&repo, 1, 100, Some(100)).await;
    let mut winner = repo.get(id(1)).await.expect("read").expect("stored");
    let mut loser = winner.clone();
    move_to(&repo, &mut winner, PaymentStatus::Pending, 110).await;
    let read = loser.version();
    let event = applied_event(&loser, PaymentStatus::Paid, "late".into());
    loser.apply_status(PaymentStatus::Paid, None, at(111));
    let err = repo
        .update_status(&loser, read, &event)
        .await
        .expect_err("lost");
    assert!(
        matches!(err, RepositoryError::VersionConflict { .. }),
        "{err:?}"
    );
    let kinds: Vec<_> = about(&repo, 1).await.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeType::Created, NoticeType::Pending]);

    // An outcome.
    let p = intent(2, "1.00", 100);
    repo.insert_intent(&p, None).await.expect("stored");
    let (mut first, mut second) = (p.clone(), p.clone());
    first
        .mark_created(upstream(2, 101), at(101))
        .expect("settles");
    repo.save_outcome(&first, 1, None).await.expect("stored");
    second
        .mark_rejected("refused".into(), at(102))
        .expect("settles");
    let err = repo.save_outcome(&second, 1, None).await.expect_err("lost");
    assert!(
        matches!(err, RepositoryError::VersionConflict { .. }),
        "{err:?}"
    );
    let kinds: Vec<_> = about(&repo, 2).await.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeType::Created]);

    // An abandon.
    let p = intent(3, "1.00", 100);
    repo.insert_intent(&p, None).await.expect("stored");
    let (mut first, mut second) = (p.clone(), p);
    first
        .mark_unknown("reset".into(), at(101))
        .expect("settles");
    repo.save_outcome(&first, 1, None).await.expect("stored");
    second
        .mark_abandoned("operator".into(), at(102))
        .expect("settles");
    let err = repo.save_abandoned(&second, 1).await.expect_err("lost");
    assert!(
        matches!(err, RepositoryError::VersionConflict { .. }),
        "{err:?}"
    );
    let kinds: Vec<_> = about(&repo, 3).await.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeType::Unknown]);
    assert_eq!(all(&repo).await.len(), 4, "nothing else was written");
}

/// Nobody listening costs nothing: the statements are those of a store without an
/// audience. Listeners cost one INSERT for every endpoint of a change (on PostgreSQL, a
/// create's outcome and its notices are one statement).
pub(crate) async fn notices_cost_one_insert_and_nothing_when_nobody_listens(t: TestDb) {
    let mut db = t.db.clone();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    db.observe_statements(move |sql| record.lock().expect("not poisoned").push(sql.to_owned()));
    let verbs = || {
        std::mem::take(&mut *seen.lock().expect("not poisoned"))
            .iter()
            .map(|sql| {
                sql.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
            })
            .collect::<Vec<_>>()
    };
    // Listens to another client, and to payment.paid only.
    let deaf = SeaOrmRepository::new(&db).with_audience(listeners(&[
        ("other", "theirs", "*"),
        ("shop", "paid-only", "payment.paid"),
    ]));
    let mut p = intent(1, "1.00", 100);
    deaf.insert_intent(&p, None).await.expect("stored");
    verbs();
    let read = p.version();
    p.mark_created(upstream(1, 101), at(101)).expect("settles");
    deaf.save_outcome(&p, read, Some(at(200)))
        .await
        .expect("stored");
    assert_eq!(verbs(), ["UPDATE"], "one statement, no transaction");
    move_to(&deaf, &mut p, PaymentStatus::Pending, 102).await;
    assert_eq!(
        verbs(),
        ["BEGIN", "UPDATE", "INSERT"],
        "the update and its event"
    );
    assert!(all(&deaf).await.is_empty());
    verbs();

    let heard = SeaOrmRepository::new(&db)
        .with_audience(listeners(&[("shop", "ep-a", "*"), ("shop", "ep-b", "*")]));
    let mut p = intent(2, "1.00", 100);
    heard.insert_intent(&p, None).await.expect("stored");
    verbs();
    let read = p.version();
    p.mark_created(upstream(2, 101), at(101)).expect("settles");
    heard
        .save_outcome(&p, read, Some(at(200)))
        .await
        .expect("stored");
    assert_eq!(
        verbs(),
        ["UPDATE"],
        "the outcome and what it owes: one statement, no notification row yet"
    );
    assert_eq!(heard.announce_pending(10).await.expect("written out"), 1);
    let expected: &[&str] = match t.db.backend() {
        Backend::Postgres => &["SELECT", "WITH"],
        Backend::Sqlite => &["SELECT", "BEGIN", "UPDATE", "INSERT"],
    };
    assert_eq!(
        verbs(),
        expected,
        "written out: the clearing and both endpoints' rows in one statement (one piece)"
    );
    assert_eq!(heard.announce_pending(10).await.expect("nothing owed"), 0);
    verbs();
    move_to(&heard, &mut p, PaymentStatus::Pending, 102).await;
    assert_eq!(
        verbs(),
        ["BEGIN", "UPDATE", "INSERT", "INSERT"],
        "the update, its event, its notices"
    );
    assert_eq!(about(&heard, 2).await.len(), 4);
}

/// A payment stored before payments had owners belongs to no client: nobody hears of it.
pub(crate) async fn a_payment_without_an_owner_announces_nothing(t: TestDb) {
    let repo = t.repo.clone().heard_by(listeners(&[("shop", "ep", "*")]));
    repo.insert_intent(&intent(1, "1.00", 100), None)
        .await
        .expect("stored");
    t.execute_raw(&format!(
        "UPDATE payments SET owner_client = NULL WHERE id = '{}'",
        id(1)
    ))
    .await;
    let mut p = repo.get(id(1)).await.expect("read").expect("stored");
    assert_eq!(p.owner(), None);
    let read = p.version();
    p.mark_created(upstream(1, 101), at(101)).expect("settles");
    repo.save_outcome(&p, read, None).await.expect("stored");
    assert!(all(&repo).await.is_empty());
}

pub(crate) async fn concurrent_deliverers_lease_each_notification_once(repo: impl Outbox) {
    const DUE: u128 = 30;
    let repo = repo.heard_by(listeners(&[("shop", "ep", "*")]));
    for n in 0..DUE {
        created_upstream(&repo, n + 1, 100 + n as i64, None).await;
    }
    // Not due yet.
    created_upstream(&repo, 1_000, 5_000, None).await;

    let first = claim(&repo, at(1_000), at(1_060), 3)
        .await
        .expect("claimed");
    let payments: Vec<_> = first.iter().map(|n| n.payment).collect();
    assert_eq!(payments, [id(1), id(2), id(3)], "oldest due first");

    let claimers = 4;
    let barrier = Arc::new(Barrier::new(claimers));
    let mut tasks = Vec::new();
    for _ in 0..claimers {
        let repo = repo.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            loop {
                let batch = claim(&repo, at(1_000), at(1_060), 3)
                    .await
                    .expect("claimed");
                if batch.is_empty() {
                    break;
                }
                assert!(batch.len() <= 3);
                mine.extend(batch.into_iter().map(|n| n.payment));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut claimed = payments;
    for task in tasks {
        claimed.extend(task.await.expect("claimer finished"));
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), unique.len(), "no notification claimed twice");
    assert_eq!(
        unique,
        (1..=DUE).map(id).collect(),
        "every due one, nothing else"
    );

    assert!(
        claim(&repo, at(1_059), at(1_119), 100)
            .await
            .expect("claimed")
            .is_empty(),
        "leased until 1060"
    );
    let again = claim(&repo, at(1_060), at(1_120), 100)
        .await
        .expect("claimed");
    assert_eq!(
        again.len(),
        DUE as usize,
        "claimable again once the lease ends"
    );
    assert!(
        again
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id)),
        "oldest first"
    );
}

pub(crate) async fn a_deliverer_that_lost_its_lease_records_nothing(repo: impl Outbox) {
    let repo = repo.heard_by(listeners(&[("shop", "ep", "*")]));
    created_upstream(&repo, 1, 100, None).await;
    created_upstream(&repo, 2, 101, None).await;
    let slow = claim(&repo, at(101), at(161), 10).await.expect("claimed");
    assert_eq!(slow.len(), 2);
    let (one, two) = (&slow[0], &slow[1]);
    // The slow deliverer's lease ends; another takes the first over.
    let fresh = claim(&repo, at(161), at(221), 1).await.expect("claimed");
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].id, one.id);

    let writes = repo
        .record_attempts(
            &[
                outcome(
                    one,
                    Some(attempt(one, 1, 150, Some(200))),
                    AfterAttempt::Delivered,
                ),
                outcome(
                    two,
                    Some(attempt(two, 1, 150, Some(200))),
                    AfterAttempt::Delivered,
                ),
            ],
            at(161),
        )
        .await
        .expect("recorded");
    assert_eq!(
        writes,
        [LeaseWrite::LeaseLost, LeaseWrite::Written],
        "the second was claimed by nobody else"
    );
    assert!(repo.attempts(one.id).await.expect("read").is_empty());
    let kept = reread(&repo, one).await;
    assert_eq!(
        (kept.state, kept.attempts, kept.delivered_at),
        (DeliveryState::Pending, 0, None),
        "the lost write moved nothing"
    );
    assert_eq!(reread(&repo, two).await.state, DeliveryState::Delivered);
    assert_eq!(repo.attempts(two.id).await.expect("read").len(), 1);

    let mine = attempt(one, 1, 170, Some(204));
    assert_eq!(
        repo.record_attempts(
            &[outcome(one, Some(mine.clone()), AfterAttempt::Delivered)],
            at(221)
        )
        .await
        .expect("recorded"),
        [LeaseWrite::Written]
    );
    assert_eq!(repo.attempts(one.id).await.expect("read"), [mine]);
    assert_eq!(
        repo.record_attempts(&[outcome(one, None, AfterAttempt::Skip)], at(221))
            .await
            .expect("answered"),
        [LeaseWrite::LeaseLost],
        "a record ends the claim"
    );
}

pub(crate) async fn each_attempt_moves_its_notification_to_what_comes_next(repo: impl Outbox) {
    let repo = repo.heard_by(listeners(&[
        ("shop", "retry", "*"),
        ("shop", "delivered", "*"),
        ("shop", "failed", "*"),
        ("shop", "skipped", "*"),
    ]));
    created_upstream(&repo, 1, 100, None).await;
    let claimed = claim(&repo, at(100), at(160), 10).await.expect("claimed");
    let by: HashMap<String, Notification> = claimed
        .into_iter()
        .map(|n| (n.endpoint.to_string(), n))
        .collect();
    assert_eq!(by.len(), 4);
    let (retry, delivered, failed, skipped) = (
        &by["retry"],
        &by["delivered"],
        &by["failed"],
        &by["skipped"],
    );
    let first = attempt(retry, 1, 100, Some(503));
    let writes = repo
        .record_attempts(
            &[
                outcome(retry, Some(first.clone()), AfterAttempt::RetryAt(at(130))),
                outcome(
                    delivered,
                    Some(attempt(delivered, 1, 101, Some(200))),
                    AfterAttempt::Delivered,
                ),
                outcome(
                    failed,
                    Some(attempt(failed, 1, 102, None)),
                    AfterAttempt::GiveUp,
                ),
                outcome(skipped, None, AfterAttempt::Skip),
            ],
            at(160),
        )
        .await
        .expect("recorded");
    assert_eq!(writes, [LeaseWrite::Written; 4]);

    let r = reread(&repo, retry).await;
    assert_eq!(r.state, DeliveryState::Pending);
    assert_eq!(r.next_attempt_at, Some(at(130)));
    assert_eq!((r.attempts, r.round_attempts), (1, 1));
    assert_eq!((r.last_status, r.last_error.as_deref()), (Some(503), None));
    assert_eq!(r.delivered_at, None);

    let d = reread(&repo, delivered).await;
    assert_eq!(d.state, DeliveryState::Delivered);
    assert_eq!((d.next_attempt_at, d.delivered_at), (None, Some(at(101))));
    assert_eq!((d.attempts, d.last_status), (1, Some(200)));

    let f = reread(&repo, failed).await;
    assert_eq!(f.state, DeliveryState::Failed);
    assert_eq!(f.next_attempt_at, None);
    assert_eq!((f.attempts, f.round_attempts), (1, 1));
    assert_eq!(
        (f.last_status, f.last_error.as_deref()),
        (None, Some("connection refused"))
    );

    let s = reread(&repo, skipped).await;
    assert_eq!(s.state, DeliveryState::Skipped);
    assert_eq!(s.next_attempt_at, None);
    assert_eq!((s.attempts, s.round_attempts), (0, 0), "nothing was sent");
    assert!(repo.attempts(skipped.id).await.expect("read").is_empty());

    assert_eq!(
        repo.attempts(retry.id).await.expect("read"),
        std::slice::from_ref(&first)
    );
    assert!(
        claim(&repo, at(129), at(189), 10)
            .await
            .expect("claimed")
            .is_empty(),
        "the retry is not due yet; the others are done"
    );
    let due = claim(&repo, at(130), at(190), 10).await.expect("claimed");
    assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), [retry.id]);
    let second = attempt(retry, 2, 130, Some(200));
    assert_eq!(
        repo.record_attempts(
            &[outcome(
                retry,
                Some(second.clone()),
                AfterAttempt::Delivered
            )],
            at(190)
        )
        .await
        .expect("recorded"),
        [LeaseWrite::Written]
    );
    let r = reread(&repo, retry).await;
    assert_eq!(r.state, DeliveryState::Delivered);
    assert_eq!((r.attempts, r.round_attempts), (2, 2));
    assert_eq!((r.last_status, r.delivered_at), (Some(200), Some(at(130))));
    assert_eq!(
        repo.attempts(retry.id).await.expect("read"),
        [first, second]
    );
    assert!(
        claim(&repo, at(100_000), at(100_060), 10)
            .await
            .expect("claimed")
            .is_empty()
    );
}

pub(crate) async fn redelivery_and_recovery_send_again_in_a_new_round(repo: impl Outbox) {
    let repo = repo.heard_by(listeners(&[("shop", "ep-x", "*"), ("shop", "ep-y", "*")]));
    for n in 1..=4u128 {
        created_upstream(&repo, n, 100 * n as i64, None).await;
    }
    let claimed = claim(&repo, at(400), at(460), 100).await.expect("claimed");
    assert_eq!(claimed.len(), 8);
    let find = |endpoint: &str, n: u128| {
        claimed
            .iter()
            .find(|c| c.endpoint == ep(endpoint) && c.payment == id(n))
            .expect("claimed")
            .clone()
    };
    let (x1, x2, x3, x4) = (
        find("ep-x", 1),
        find("ep-x", 2),
        find("ep-x", 3),
        find("ep-x", 4),
    );
    let mut outcomes = vec![
        outcome(
            &x1,
            Some(attempt(&x1, 1, 400, Some(500))),
            AfterAttempt::GiveUp,
        ),
        outcome(
            &x2,
            Some(attempt(&x2, 1, 400, Some(500))),
            AfterAttempt::GiveUp,
        ),
        outcome(&x3, None, AfterAttempt::Skip),
        outcome(
            &x4,
            Some(attempt(&x4, 1, 400, Some(200))),
            AfterAttempt::Delivered,
        ),
    ];
    for n in 1..=4 {
        let y = find("ep-y", n);
        outcomes.push(outcome(
            &y,
            Some(attempt(&y, 1, 400, None)),
            AfterAttempt::GiveUp,
        ));
    }
    let writes = repo
        .record_attempts(&outcomes, at(460))
        .await
        .expect("recorded");
    assert!(
        writes.iter().all(|w| *w == LeaseWrite::Written),
        "{writes:?}"
    );

    // ep-x's failed and skipped notices written at 200 or later: x2 and x3.
    assert_eq!(
        repo.recover(&ep("ep-x"), at(200), at(500))
            .await
            .expect("recovered"),
        2
    );
    let r2 = reread(&repo, &x2).await;
    assert_eq!(r2.state, DeliveryState::Pending);
    assert_eq!(r2.next_attempt_at, Some(at(500)));
    assert_eq!((r2.attempts, r2.round_attempts), (1, 0), "a new round");
    let r3 = reread(&repo, &x3).await;
    assert_eq!(
        (r3.state, r3.next_attempt_at),
        (DeliveryState::Pending, Some(at(500)))
    );
    assert_eq!(
        reread(&repo, &x1).await.state,
        DeliveryState::Failed,
        "too old"
    );
    assert_eq!(reread(&repo, &x4).await.state, DeliveryState::Delivered);
    for n in 1..=4 {
        assert_eq!(
            reread(&repo, &find("ep-y", n)).await.state,
            DeliveryState::Failed,
            "another endpoint's"
        );
    }

    repo.redeliver(x4.id, at(600)).await.expect("redelivered");
    let r4 = reread(&repo, &x4).await;
    assert_eq!(
        (r4.state, r4.next_attempt_at),
        (DeliveryState::Pending, Some(at(600)))
    );
    assert_eq!((r4.attempts, r4.round_attempts), (1, 0));
    let y1 = find("ep-y", 1);
    repo.redeliver(y1.id, at(600)).await.expect("redelivered");
    let missing = id(999);
    let err = repo
        .redeliver(missing, at(600))
        .await
        .expect_err("no such notification");
    assert!(
        matches!(err, RepositoryError::NotFound(i) if i == missing),
        "{err:?}"
    );

    let due = claim(&repo, at(600), at(660), 100).await.expect("claimed");
    let mut expected = [&x2, &x3, &x4, &y1];
    expected.sort_by_key(|n| (n.created_at, n.id));
    assert_eq!(
        due.iter().map(|n| n.id).collect::<Vec<_>>(),
        expected.iter().map(|n| n.id).collect::<Vec<_>>()
    );
}

pub(crate) async fn the_delivery_log_lists_newest_first_by_filter_and_page(repo: impl Outbox) {
    let repo = repo.heard_by(listeners(&[
        ("shop", "ep-a", "*"),
        ("shop", "ep-b", "payment.created"),
        ("other", "ep-c", "*"),
    ]));
    let mut p1 = created_upstream(&repo, 1, 100, None).await;
    // The same second: the id breaks the tie.
    created_upstream(&repo, 2, 100, None).await;
    created_for_other(&repo, 3, 150).await;
    move_to(&repo, &mut p1, PaymentStatus::Pending, 200).await;

    let everything = all(&repo).await;
    assert_eq!(everything.len(), 6);
    assert!(
        everything
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
        "newest first"
    );
    let count = |filter: NotificationFilter| {
        let repo = repo.clone();
        async move { listed(&repo, filter).await.len() }
    };
    assert_eq!(
        count(NotificationFilter {
            client: Some(shop()),
            ..NotificationFilter::default()
        })
        .await,
        5
    );
    let theirs = listed(
        &repo,
        NotificationFilter {
            client: Some(other()),
            ..NotificationFilter::default()
        },
    )
    .await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        (theirs[0].endpoint.clone(), theirs[0].payment),
        (ep("ep-c"), id(3))
    );
    let b = listed(
        &repo,
        NotificationFilter {
            endpoint: Some(ep("ep-b")),
            ..NotificationFilter::default()
        },
    )
    .await;
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|n| n.kind == NoticeType::Created));
    assert_eq!(
        count(NotificationFilter {
            payment: Some(id(1)),
            ..NotificationFilter::default()
        })
        .await,
        3
    );

    // Deliver the newest one.
    let newest = everything[0].clone();
    let claimed = claim(&repo, at(200), at(260), 100).await.expect("claimed");
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|n| {
            let next = if n.id == newest.id {
                AfterAttempt::Delivered
            } else {
                AfterAttempt::RetryAt(at(300))
            };
            outcome(n, Some(attempt(n, 1, 200, Some(200))), next)
        })
        .collect();
    repo.record_attempts(&outcomes, at(260))
        .await
        .expect("recorded");
    let delivered = listed(
        &repo,
        NotificationFilter {
            state: Some(DeliveryState::Delivered),
            ..NotificationFilter::default()
        },
    )
    .await;
    assert_eq!(
        delivered.iter().map(|n| n.id).collect::<Vec<_>>(),
        [newest.id]
    );
    assert_eq!(
        count(NotificationFilter {
            state: Some(DeliveryState::Pending),
            client: Some(shop()),
            ..NotificationFilter::default()
        })
        .await,
        4,
        "filters combine"
    );

    // Pages of two, each strictly older than the last row of the one before.
    let everything = all(&repo).await;
    for filter in [
        NotificationFilter::default(),
        NotificationFilter {
            endpoint: Some(ep("ep-a")),
            ..NotificationFilter::default()
        },
    ] {
        let whole = listed(&repo, filter.clone()).await;
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = repo
                .notifications(
                    &NotificationFilter {
                        before,
                        ..filter.clone()
                    },
                    2,
                )
                .await
                .expect("listed");
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            paged.extend(page);
        }
        assert_eq!(paged, whole, "{filter:?}");
    }
    assert_eq!(everything.len(), 6);
    assert!(
        repo.notifications(&NotificationFilter::default(), 0)
            .await
            .expect("listed")
            .is_empty()
    );
    assert!(
        repo.notifications(
            &NotificationFilter {
                before: Some(id(999)),
                ..NotificationFilter::default()
            },
            10
        )
        .await
        .expect("listed")
        .is_empty(),
        "a cursor that names nothing pages nothing"
    );
}

fn endpoint(name: &str, client: ClientId, created: i64) -> Endpoint {
    Endpoint {
        id: ep(name),
        client,
        url: format!("https://hooks.example/{name}?token=t")
            .parse()
            .expect("url"),
        secrets: EndpointSecrets::new(vec![
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            "whsec_c2VjcmV0c2VjcmV0c2VjcmV0".to_owned(),
        ]),
        filter: NoticeFilter::all(),
        description: Some("orders service".to_owned()),
        disabled: None,
        failing_since: None,
        created_at: at(created),
        updated_at: at(created),
    }
}

pub(crate) async fn endpoints_are_saved_replaced_disabled_and_marked_failing(repo: impl Outbox) {
    let a = endpoint("ep-a", shop(), 100);
    let b = endpoint("ep-b", shop(), 50);
    let mut c = endpoint("ep-c", other(), 75);
    c.disabled = Some(Disabled {
        reason: "operator".to_owned(),
        at: at(80),
    });
    c.failing_since = Some(at(70));
    c.description = None;
    for e in [&a, &b, &c] {
        repo.save_endpoint(e).await.expect("saved");
    }
    assert_eq!(repo.endpoint(&a.id).await.expect("read"), Some(a.clone()));
    assert_eq!(repo.endpoint(&c.id).await.expect("read"), Some(c.clone()));
    assert_eq!(repo.endpoint(&ep("nobody")).await.expect("read"), None);
    assert_eq!(
        repo.endpoints(None).await.expect("read"),
        [b.clone(), c.clone(), a.clone()],
        "oldest first"
    );
    assert_eq!(
        repo.endpoints(Some(shop())).await.expect("read"),
        [b.clone(), a.clone()]
    );

    // Replaced by id: a new URL, rotated secrets, another filter.
    let mut a2 = a.clone();
    a2.url = "https://hooks.example/v2".parse().expect("url");
    a2.secrets = EndpointSecrets::new(vec![
        "whsec_bmV3bmV3bmV3bmV3bmV3".to_owned(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
    ]);
    a2.filter = "payment.paid,payment.timeout".parse().expect("filter");
    a2.description = None;
    a2.updated_at = at(300);
    repo.save_endpoint(&a2).await.expect("saved");
    assert_eq!(repo.endpoint(&a.id).await.expect("read"), Some(a2.clone()));
    assert_eq!(repo.endpoints(None).await.expect("read").len(), 3);

    let failing = || async {
        repo.endpoint(&a.id)
            .await
            .expect("read")
            .expect("saved")
            .failing_since
    };
    repo.set_endpoint_failing(&a.id, Some(at(400)))
        .await
        .expect("noted");
    assert_eq!(failing().await, Some(at(400)));
    repo.set_endpoint_failing(&a.id, Some(at(500)))
        .await
        .expect("noted");
    assert_eq!(failing().await, Some(at(400)), "the streak's start is kept");
    repo.set_endpoint_failing(&a.id, None).await.expect("noted");
    assert_eq!(failing().await, None, "it answered");
    repo.set_endpoint_failing(&a.id, Some(at(600)))
        .await
        .expect("noted");
    assert_eq!(failing().await, Some(at(600)), "a new streak");
    repo.set_endpoint_failing(&ep("nobody"), Some(at(600)))
        .await
        .expect("a missing endpoint is left alone");

    let gone = Disabled {
        reason: "gone".to_owned(),
        at: at(700),
    };
    assert!(repo.disable_endpoint(&a.id, &gone).await.expect("disabled"));
    let disabled = repo.endpoint(&a.id).await.expect("read").expect("saved");
    assert_eq!(disabled.disabled, Some(gone.clone()));
    assert!(!disabled.is_enabled());
    let operator = Disabled {
        reason: "operator".to_owned(),
        at: at(800),
    };
    assert!(
        !repo
            .disable_endpoint(&a.id, &operator)
            .await
            .expect("answered"),
        "already disabled"
    );
    assert_eq!(
        repo.endpoint(&a.id)
            .await
            .expect("read")
            .expect("saved")
            .disabled,
        Some(gone),
        "the first reason stays"
    );
    assert!(
        !repo
            .disable_endpoint(&ep("nobody"), &operator)
            .await
            .expect("answered")
    );
    assert_eq!(
        repo.endpoint(&b.id).await.expect("read"),
        Some(b),
        "the others untouched"
    );
}

pub(crate) async fn unreadable_notifications_and_endpoints_are_reported_corrupt(t: TestDb) {
    let repo = t.repo.clone().heard_by(listeners(&[("shop", "ep", "*")]));
    created_upstream(&repo, 1, 100, None).await;
    let notice = all(&repo).await.remove(0);
    t.execute_raw(&format!(
        "UPDATE notifications SET event_type = 'payment.exploded' WHERE id = '{}'",
        notice.id
    ))
    .await;
    let err = repo.notification(notice.id).await.expect_err("unreadable");
    assert!(
        matches!(&err, RepositoryError::Corrupt(why) if why.contains("payment.exploded")),
        "{err:?}"
    );
    let err = repo
        .notifications(&NotificationFilter::default(), 10)
        .await
        .expect_err("a page with an unreadable row");
    assert!(matches!(err, RepositoryError::Corrupt(_)), "{err:?}");

    repo.save_endpoint(&endpoint("ep", shop(), 100))
        .await
        .expect("saved");
    t.execute_raw("UPDATE notify_endpoints SET filter = 'payment.exploded' WHERE id = 'ep'")
        .await;
    let err = repo.endpoint(&ep("ep")).await.expect_err("unreadable");
    assert!(matches!(err, RepositoryError::Corrupt(_)), "{err:?}");
    let err = repo.endpoints(None).await.expect_err("unreadable");
    assert!(matches!(err, RepositoryError::Corrupt(_)), "{err:?}");
}

/// With keys set, endpoint secrets are sealed at rest: the row holds no secret, reads give
/// it back, the start-up step seals rows written in clear or under an older key, and a
/// sealed row does not open without its key.
pub(crate) async fn endpoint_secrets_are_sealed_at_rest_and_sealed_anew_under_a_new_key(t: TestDb) {
    use ivpay_persistence::{SealReport, SecretsKeys};
    const OLD: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const NEW: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let keys = |texts: &[&str]| SecretsKeys::from_base64(texts).expect("keys");
    let stored = || async {
        t.query_texts("SELECT secrets FROM notify_endpoints ORDER BY id")
            .await
            .into_iter()
            .map(|s| s.expect("secrets"))
            .collect::<Vec<_>>()
    };
    // One endpoint written in clear (before keys were set), one sealed under the old key.
    let clear = t.repo.clone();
    let old = t.repo.clone().with_secrets_keys(keys(&[OLD]));
    let (a, b) = (endpoint("a", shop(), 100), endpoint("b", shop(), 100));
    clear.save_endpoint(&a).await.expect("saved");
    old.save_endpoint(&b).await.expect("saved");
    let rows = stored().await;
    assert!(rows[0].contains("whsec_MfKQ9r8"), "in clear: {}", rows[0]);
    assert!(
        rows[1].starts_with("sealed:v1:") && !rows[1].contains("whsec_"),
        "{}",
        rows[1]
    );
    assert_eq!(old.endpoint(&b.id).await.expect("read"), Some(b.clone()));

    // Without a key a sealed row does not read: it says so, naming the endpoint.
    let err = clear.endpoints(None).await.expect_err("sealed, no key");
    assert!(
        matches!(&err, RepositoryError::Corrupt(why) if why.contains(" b: ") && why.contains("no key")),
        "{err:?}"
    );
    let err = clear
        .seal_endpoint_secrets()
        .await
        .expect_err("sealed, no key");
    assert!(matches!(err, RepositoryError::Corrupt(_)), "{err:?}");

    // The new key put first: both rows sealed under it, then nothing left to do.
    let rotated = t.repo.clone().with_secrets_keys(keys(&[NEW, OLD]));
    assert_eq!(
        rotated.seal_endpoint_secrets().await.expect("sealed"),
        SealReport { sealed: 2, kept: 0 }
    );
    assert_eq!(
        rotated.seal_endpoint_secrets().await.expect("sealed"),
        SealReport { sealed: 0, kept: 2 }
    );
    let rows = stored().await;
    assert!(
        rows.iter()
            .all(|r| r.starts_with("sealed:v1:") && !r.contains("whsec_"))
    );
    // The old key gone, everything still reads.
    let new_only = t.repo.clone().with_secrets_keys(keys(&[NEW]));
    assert_eq!(new_only.endpoints(None).await.expect("read"), vec![a, b]);
}

/// Retention deletes what is old and settled, oldest first, at most a batch at a time:
/// notifications that are no longer pending (with their attempts) and events, never a
/// pending notification.
pub(crate) async fn retention_purges_old_settled_rows_in_batches(
    repo: impl Outbox + RetentionStore,
) {
    let repo = repo.heard_by(listeners(&[("shop", "ep", "*")]));
    for n in 1..=3u128 {
        created_upstream(&repo, n, 100 * n as i64, None).await;
    }
    let claimed = claim(&repo, at(400), at(460), 100).await.expect("claimed");
    assert_eq!(claimed.len(), 3);
    let of = |n: u128| {
        claimed
            .iter()
            .find(|c| c.payment == id(n))
            .expect("claimed")
            .clone()
    };
    let (first, second, third) = (of(1), of(2), of(3));
    let outcomes = vec![
        outcome(
            &first,
            Some(attempt(&first, 1, 400, Some(200))),
            AfterAttempt::Delivered,
        ),
        outcome(
            &second,
            Some(attempt(&second, 1, 400, Some(500))),
            AfterAttempt::GiveUp,
        ),
        outcome(
            &third,
            Some(attempt(&third, 1, 400, Some(500))),
            AfterAttempt::RetryAt(at(900)),
        ),
    ];
    repo.record_attempts(&outcomes, at(460))
        .await
        .expect("recorded");

    let cut = at(10_000);
    assert_eq!(
        repo.purge(Retained::Notifications, cut, 1)
            .await
            .expect("purged"),
        1,
        "one batch of one"
    );
    assert!(
        repo.notification(first.id).await.expect("read").is_none(),
        "the oldest first"
    );
    assert!(
        repo.attempts(first.id).await.expect("read").is_empty(),
        "with its attempts"
    );
    assert_eq!(
        repo.purge(Retained::Notifications, cut, 10)
            .await
            .expect("purged"),
        1,
        "the failed one; the pending one stays"
    );
    assert_eq!(
        repo.purge(Retained::Notifications, cut, 10)
            .await
            .expect("purged"),
        0
    );
    assert!(repo.notification(third.id).await.expect("read").is_some());
    assert_eq!(repo.attempts(third.id).await.expect("read").len(), 1);

    // Events: only those received before the cut, in the order they were recorded.
    for (n, received) in [(1u128, 100), (2, 200), (3, 300)] {
        let p = repo.get(id(n)).await.expect("read").expect("stored");
        let mut event = applied_event(&p, PaymentStatus::Pending, "{}".into());
        event.received_at = at(received);
        repo.record_event(&event).await.expect("recorded");
    }
    assert_eq!(
        repo.purge(Retained::Events, at(250), 1)
            .await
            .expect("purged"),
        1
    );
    assert_eq!(
        repo.purge(Retained::Events, at(250), 10)
            .await
            .expect("purged"),
        1
    );
    assert_eq!(
        repo.purge(Retained::Events, at(250), 10)
            .await
            .expect("purged"),
        0
    );
    assert!(repo.events(id(1)).await.expect("read").is_empty());
    assert!(repo.events(id(2)).await.expect("read").is_empty());
    assert_eq!(
        repo.events(id(3)).await.expect("read").len(),
        1,
        "newer than the cut"
    );
}
