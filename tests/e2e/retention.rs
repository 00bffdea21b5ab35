//! Retention over the real storage: old events and finished notifications go, in batches,
//! oldest first; payments, pending notifications and recent rows stay.

use std::sync::Arc;
use std::time::Duration;

use ivpay_domain::{
    AccountId, EventOutcome, InternalId, NewPayment, NoticeFilter, Payment, PaymentEvent,
    PaymentStatus, ReportedStatus, Timestamp, UpdateSource, UpstreamPayment,
};
use ivpay_persistence::SeaOrmRepository;
use ivpay_ports::{
    DeliveryState, NewEndpoint, NotificationFilter, NotificationStore, NotificationUseCases,
    PaymentStore, Retained, RetentionStore,
};
use ivpay_service::{Directory, ManualClock, Notifications, NotifyConfig};

use crate::support::{Backend, fresh_db};

on_both_backends!(old_rows_go_in_batches_and_everything_else_stays);

const DAY: i64 = 24 * 3600;
const T0: i64 = 1_800_000_000;

/// A sender that takes every notice.
#[derive(Clone)]
struct Accepting;

#[async_trait::async_trait]
impl ivpay_ports::NoticeSender for Accepting {
    async fn send(&self, _: &ivpay_ports::OutboundNotice) -> ivpay_ports::SendReport {
        ivpay_ports::SendReport {
            outcome: ivpay_ports::SendOutcome::Answered {
                status: 204,
                excerpt: String::new(),
            },
            latency: Duration::from_millis(1),
        }
    }
}

async fn old_rows_go_in_batches_and_everything_else_stays(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let conn = ivpay_persistence::connect(db.url(), &Default::default())
        .await
        .expect("connects");
    ivpay_persistence::migrate_up(&conn)
        .await
        .expect("migrates");
    let directory = Arc::new(Directory::new());
    let repo = SeaOrmRepository::new(&conn).with_audience(directory.clone());
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let notify = Notifications::new(
        Arc::new(repo.clone()),
        Accepting,
        Arc::new(clock.clone()),
        directory,
        NotifyConfig::default(),
    );
    notify
        .add_endpoint(NewEndpoint {
            id: None,
            client: "shop".parse().expect("client"),
            url: "https://shop.example/hook".parse().expect("url"),
            filter: NoticeFilter::all(),
            description: None,
            secret: None,
        })
        .await
        .expect("endpoint");

    // Five payments a day apart, each created (a notice) with one event; the last
    // notice is left pending (never delivered).
    for n in 0..5u8 {
        let at = Timestamp::from_unix_seconds(T0 + i64::from(n) * DAY);
        let mut p = Payment::initiate(
            InternalId::from_uuid(uuid::Uuid::from_u128(u128::from(n) + 1)),
            "shop".parse().expect("client"),
            AccountId::default(),
            NewPayment::from_fields("1.00", "USD", None, None, None).expect("valid"),
            at,
        );
        repo.insert_intent(&p, None).await.expect("intent");
        let version = p.version();
        p.mark_created(
            UpstreamPayment {
                payment_id: format!("up{n}").parse().expect("id"),
                payment_url: format!("https://pay.example/up{n}").parse().expect("url"),
                created_at: at,
            },
            at,
        )
        .expect("settles");
        repo.save_outcome(&p, version, None).await.expect("outcome");
        repo.record_event(&PaymentEvent {
            payment: Some(p.id()),
            payment_id: format!("up{n}").parse().expect("id"),
            source: UpdateSource::Poll,
            from: Some(PaymentStatus::Created),
            to: ReportedStatus::Known(PaymentStatus::Created),
            outcome: EventOutcome::Applied,
            evidence: None,
            received_at: at,
        })
        .await
        .expect("event");
        if n < 4 {
            clock.advance(Duration::from_secs(u64::try_from(DAY).expect("positive")));
            let pass = notify.deliver_due().await.expect("a pass");
            assert_eq!(pass.delivered, 1);
        }
    }

    // Everything before day 3.5: the events of days 0 to 3; of the notifications the
    // delivered ones of days 0 to 3 (day 4's is pending). Batches of two, oldest first.
    let cut = Timestamp::from_unix_seconds(T0 + 3 * DAY + DAY / 2);
    assert_eq!(
        repo.purge(Retained::Notifications, cut, 2)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        repo.purge(Retained::Notifications, cut, 2)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        repo.purge(Retained::Notifications, cut, 2)
            .await
            .expect("purge"),
        0
    );
    // Day 4's notice is still owed on its payment's row: written out, it is pending.
    repo.announce_pending(100).await.expect("written out");
    let left = repo
        .notifications(&NotificationFilter::default(), 100)
        .await
        .expect("log");
    assert_eq!(left.len(), 1, "the pending one of day 4: {left:?}");
    assert_eq!(left[0].state, DeliveryState::Pending);
    let payment = |n: u8| InternalId::from_uuid(uuid::Uuid::from_u128(u128::from(n) + 1));
    assert_eq!(
        repo.purge(Retained::Events, cut, 10).await.expect("purge"),
        4
    );
    for n in 0..5u8 {
        let events = repo.events(payment(n)).await.expect("events");
        assert_eq!(events.len(), usize::from(n >= 4), "payment {n}: {events:?}");
        assert!(
            repo.get(payment(n)).await.expect("read").is_some(),
            "payments are kept"
        );
    }
}
