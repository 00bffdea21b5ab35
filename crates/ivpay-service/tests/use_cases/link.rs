//! Unknown → resolved: a webhook for an upstream id no row holds is matched by foreign id
//! to the one *unknown* or *initiated* row that sent it, kept in the inbox while there is
//! none (or several), and dropped after the keep time.

use std::sync::Arc;
use std::time::Duration;

use ivpay_domain::{
    CreateOutcome, EventOutcome, ForeignId, InternalId, NewPayment, Payment, PaymentStatus,
    Timestamp, UpstreamPayment,
};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    AdminError, CreateError, CreateRequest, GatewayError, MockPaymentGateway, PaymentGateway,
    PaymentStore, PaymentUseCases, RemotePayment,
};
use ivpay_service::{ManualClock, PaymentService, ServiceConfig};
use tokio::sync::Notify;

use crate::support::*;

fn remote_with(id: &str, status: &str, foreign_id: &str) -> RemotePayment {
    RemotePayment {
        foreign_id: Some(foreign_id.parse().expect("valid foreign id")),
        ..remote(id, status)
    }
}

fn gateway_answering(answer: RemotePayment) -> MockPaymentGateway {
    let mut g = MockPaymentGateway::new();
    g.expect_get().returning(move |_| Ok(answer.clone()));
    g
}

fn with_clock<G: PaymentGateway>(
    gateway: G,
) -> (
    PaymentService<InMemoryRepository, G, ManualClock>,
    InMemoryRepository,
    ManualClock,
) {
    let repo = InMemoryRepository::new();
    let clk = clock();
    let svc = PaymentService::new(repo.clone(), gateway, clk.clone(), ServiceConfig::default());
    (svc, repo, clk)
}

/// An *unknown* row, as a create that timed out leaves it.
async fn unknown_row(repo: &InMemoryRepository, n: u128, foreign_id: Option<&str>) -> Payment {
    let request =
        NewPayment::from_fields("10", "USD", foreign_id, None, None).expect("valid request");
    let mut p = Payment::initiate(
        InternalId::from_uuid(uuid::Uuid::from_u128(n)),
        "shop".parse().expect("client"),
        ivpay_domain::AccountId::default(),
        request,
        Timestamp::from_unix_seconds(T0),
    );
    repo.insert_intent(&p, None).await.expect("intent");
    let version = p.version();
    p.mark_unknown("timed out".into(), Timestamp::from_unix_seconds(T0))
        .expect("initiated settles");
    repo.save_outcome(&p, version, None).await.expect("unknown");
    p
}

#[tokio::test]
async fn a_webhook_links_the_one_unknown_row_that_sent_its_foreign_id() {
    let (svc, repo, _) = with_clock(gateway_answering(remote_with("p30", "PAID", "order-30")));
    let row = unknown_row(&repo, 30, Some("order-30")).await;
    // Another row with another foreign id is not a candidate.
    let other = unknown_row(&repo, 31, Some("order-31")).await;
    svc.receive_webhook(hint("p30", Some("PAID"), r#"{"payment_id":"p30"}"#))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.processed, report.linked), (1, 1), "{report:?}");
    assert!(repo.inbox().is_empty());
    let linked = stored(&repo, row.id()).await;
    assert_eq!(linked.outcome(), &CreateOutcome::Created);
    assert_eq!(linked.payment_id().map(|p| p.as_str()), Some("p30"));
    assert_eq!(
        linked.upstream().map(|u| u.payment_url.as_str()),
        Some("https://pay.ivpay.io/payment/p30"),
        "the payment page from the default template"
    );
    assert_eq!(
        linked.status(),
        PaymentStatus::Paid,
        "then the status applied"
    );
    let untouched = stored(&repo, other.id()).await;
    assert!(matches!(untouched.outcome(), CreateOutcome::Unknown { .. }));
}

#[tokio::test]
async fn a_row_without_a_client_foreign_id_is_matched_by_our_own_id() {
    let row_id = InternalId::from_uuid(uuid::Uuid::from_u128(40));
    let (svc, repo, _) = with_clock(gateway_answering(remote_with(
        "p40",
        "CREATED",
        &row_id.to_string(),
    )));
    let row = unknown_row(&repo, 40, None).await;
    assert_eq!(row.upstream_foreign_id().as_str(), row_id.to_string());
    svc.receive_webhook(hint("p40", Some("CREATED"), "{}"))
        .await
        .expect("kept");
    assert_eq!(svc.confirm_webhooks().await.expect("pass").linked, 1);
    let linked = stored(&repo, row.id()).await;
    assert_eq!(linked.payment_id().map(|p| p.as_str()), Some("p40"));
}

#[tokio::test]
async fn two_candidates_link_neither_and_are_counted_as_ambiguous() {
    let (svc, repo, _) = with_clock(gateway_answering(remote_with("p50", "PAID", "order-50")));
    let a = unknown_row(&repo, 50, Some("order-50")).await;
    let b = unknown_row(&repo, 51, Some("order-50")).await;
    svc.receive_webhook(hint("p50", Some("PAID"), "{}"))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!(
        (
            report.processed,
            report.unmatched,
            report.ambiguous,
            report.linked
        ),
        (0, 1, 1, 0),
        "{report:?}"
    );
    assert_eq!(repo.inbox().len(), 1, "kept for an operator's link");
    for p in [a, b] {
        let row_now = stored(&repo, p.id()).await;
        assert!(matches!(row_now.outcome(), CreateOutcome::Unknown { .. }));
        assert_eq!(row_now.payment_id(), None);
    }
    assert!(repo.all_events().is_empty(), "nothing recorded yet");
}

#[tokio::test]
async fn a_webhook_before_its_row_is_known_waits_in_the_inbox_and_then_applies() {
    let mut g = gateway_creating("p60", 1);
    // IVPAY's GET answers with a foreign id no row sent: nothing to link.
    g.expect_get()
        .returning(|_| Ok(remote_with("p60", "PENDING", "elsewhere")));
    let (svc, repo, clk) = with_clock(g);
    svc.receive_webhook(hint("p60", Some("PENDING"), r#"{"payment_id":"p60"}"#))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.processed, report.unmatched), (0, 1), "{report:?}");
    let kept = repo.inbox();
    assert_eq!(kept.len(), 1, "not deleted: its row may still come");
    assert_eq!(kept[0].attempts, 1);
    assert!(repo.all_events().is_empty());

    // Our create's save lands after the webhook arrived.
    let p = created(&svc, &repo).await;
    assert_eq!(p.payment_id().map(|i| i.as_str()), Some("p60"));
    clk.advance(Duration::from_secs(600));
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.processed, report.linked), (1, 0), "{report:?}");
    assert!(repo.inbox().is_empty());
    let row_now = stored(&repo, p.id()).await;
    assert_eq!(row_now.status(), PaymentStatus::Pending);
}

#[tokio::test]
async fn an_unmatched_webhook_expires_after_the_keep_time_and_is_recorded() {
    let (svc, repo, clk) = with_clock(gateway_answering(remote_with("p70", "PAID", "nobody")));
    let keep = svc.config().unknown_webhook_keep;
    svc.receive_webhook(hint("p70", Some("PAID"), r#"{"payment_id":"p70"}"#))
        .await
        .expect("kept");
    assert_eq!(svc.confirm_webhooks().await.expect("pass").unmatched, 1);
    clk.advance(keep - Duration::from_secs(1));
    // Due again well before the keep time ends; still unmatched, still kept.
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.unmatched, report.expired), (1, 0), "{report:?}");
    assert_eq!(repo.inbox().len(), 1);

    clk.advance(Duration::from_secs(3 * 3600));
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!(
        (report.processed, report.expired, report.unmatched),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(
        repo.inbox().is_empty(),
        "removed once the keep time is over"
    );
    let events = repo.all_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, EventOutcome::UnknownPayment);
    let evidence = events[0].evidence.as_ref().expect("kept");
    assert_eq!(evidence.webhook(), Some(r#"{"payment_id":"p70"}"#));
    assert!(evidence.confirmation().is_some(), "IVPAY's answer kept");
}

/// IVPAY whose create parks until released, while its GET already knows the payment (an
/// early CREATED webhook racing our save).
struct SlowCreate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
    answer: Result<UpstreamPayment, GatewayError>,
}

#[async_trait::async_trait]
impl PaymentGateway for SlowCreate {
    async fn create(&self, request: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        assert_eq!(
            request.foreign_id,
            ForeignId::try_from("order-80".to_owned()).expect("id")
        );
        self.entered.notify_one();
        self.release.notified().await;
        self.answer.clone()
    }

    async fn get(
        &self,
        payment_id: &ivpay_domain::PaymentId,
    ) -> Result<RemotePayment, GatewayError> {
        Ok(remote_with(payment_id.as_str(), "CREATED", "order-80"))
    }
}

async fn race_create_with_webhook(
    answer: Result<UpstreamPayment, GatewayError>,
) -> (
    Result<ivpay_ports::CreateReply, CreateError>,
    InMemoryRepository,
) {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let gateway = SlowCreate {
        entered: entered.clone(),
        release: release.clone(),
        answer,
    };
    let repo = InMemoryRepository::new();
    let svc = Arc::new(PaymentService::new(
        repo.clone(),
        gateway,
        clock(),
        ServiceConfig::default(),
    ));
    let creating = {
        let svc = svc.clone();
        tokio::spawn(async move {
            let request =
                NewPayment::from_fields("10", "USD", Some("order-80"), None, None).expect("valid");
            svc.create(client(), key("k80"), request).await
        })
    };
    // Wait on the gateway's own signal: the intent is committed, the create is in flight.
    entered.notified().await;
    svc.receive_webhook(hint("p80", Some("CREATED"), "{}"))
        .await
        .expect("kept");
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!(report.linked, 1, "the initiated row is linked: {report:?}");
    release.notify_one();
    let reply = creating.await.expect("create task");
    (reply, repo)
}

#[tokio::test]
async fn a_create_whose_row_a_webhook_linked_first_still_succeeds() {
    let (reply, repo) = race_create_with_webhook(Ok(upstream("p80"))).await;
    let reply = reply.expect("the link to the same payment is success");
    assert_eq!(reply.payment.payment_id().map(|p| p.as_str()), Some("p80"));
    let row = stored(&repo, reply.payment.id()).await;
    assert_eq!(row.outcome(), &CreateOutcome::Created);
    let ivpay_url = upstream("p80").payment_url;
    assert_eq!(
        row.upstream().map(|u| &u.payment_url),
        Some(&ivpay_url),
        "IVPAY's own payment_url replaces the template's"
    );
    assert_eq!(
        reply.payment.upstream().map(|u| &u.payment_url),
        Some(&ivpay_url)
    );
}

#[tokio::test]
async fn a_create_that_timed_out_after_its_row_was_linked_answers_the_linked_payment() {
    let (reply, _) = race_create_with_webhook(Err(timeout())).await;
    let reply = reply.expect("IVPAY did create it, and the webhook said so");
    assert_eq!(reply.payment.payment_id().map(|p| p.as_str()), Some("p80"));
}

#[tokio::test]
async fn an_operator_links_an_ambiguous_row_and_the_waiting_webhook_then_applies() {
    let (svc, repo, clk) = with_clock(gateway_answering(remote_with("p90", "PAID", "order-90")));
    let a = unknown_row(&repo, 90, Some("order-90")).await;
    let b = unknown_row(&repo, 91, Some("order-90")).await;
    svc.receive_webhook(hint("p90", Some("PAID"), "{}"))
        .await
        .expect("kept");
    assert_eq!(svc.confirm_webhooks().await.expect("pass").ambiguous, 1);

    let linked = svc
        .link_payment(b.id(), "p90".parse().expect("id"))
        .await
        .expect("linked");
    assert_eq!(linked.payment_id().map(|p| p.as_str()), Some("p90"));
    // Linked once: a second link, of either row, is refused.
    assert!(matches!(
        svc.link_payment(a.id(), "p90".parse().expect("id")).await,
        Err(AdminError::AlreadyLinked(_))
    ));
    assert!(matches!(
        svc.link_payment(b.id(), "p91".parse().expect("id")).await,
        Err(AdminError::NotOpen {
            outcome: "created",
            ..
        })
    ));

    clk.advance(Duration::from_secs(3600));
    let report = svc.confirm_webhooks().await.expect("pass");
    assert_eq!((report.processed, report.linked), (1, 0), "{report:?}");
    assert_eq!(stored(&repo, b.id()).await.status(), PaymentStatus::Paid);
    assert!(matches!(
        stored(&repo, a.id()).await.outcome(),
        CreateOutcome::Unknown { .. }
    ));
}

#[tokio::test]
async fn an_operator_link_is_checked_against_ivpay() {
    let mut g = MockPaymentGateway::new();
    g.expect_get().returning(|id| match id.as_str() {
        "gone" => Err(GatewayError::NotFound(id.clone())),
        _ => Ok(remote_with(id.as_str(), "PENDING", "someone-else")),
    });
    let (svc, repo, _) = with_clock(g);
    let row = unknown_row(&repo, 95, Some("order-95")).await;
    assert!(matches!(
        svc.link_payment(row.id(), "gone".parse().expect("id"))
            .await,
        Err(AdminError::UpstreamNotFound(_))
    ));
    assert!(matches!(
        svc.link_payment(row.id(), "p95".parse().expect("id")).await,
        Err(AdminError::ForeignIdMismatch { .. })
    ));
    assert!(matches!(
        svc.link_payment(
            InternalId::from_uuid(uuid::Uuid::from_u128(999)),
            "p95".parse().expect("id")
        )
        .await,
        Err(AdminError::NotFound(_))
    ));
    assert_eq!(stored(&repo, row.id()).await.payment_id(), None);
}

#[tokio::test]
async fn an_operator_abandon_releases_the_key_for_a_fresh_attempt() {
    let mut g = MockPaymentGateway::new();
    let mut first = true;
    g.expect_create().times(2).returning(move |_| {
        if std::mem::take(&mut first) {
            Err(timeout())
        } else {
            Ok(upstream("p99"))
        }
    });
    let (svc, repo, _) = with_clock(g);
    let Err(CreateError::OutcomeUnknown { id, .. }) =
        svc.create(client(), key("k99"), request("10")).await
    else {
        panic!("a timeout leaves the outcome unknown");
    };
    let abandoned = svc.abandon_payment(id).await.expect("abandoned");
    assert!(matches!(
        abandoned.outcome(),
        CreateOutcome::Abandoned { .. }
    ));
    assert!(matches!(
        svc.abandon_payment(id).await,
        Err(AdminError::NotOpen {
            outcome: "abandoned",
            ..
        })
    ));
    // The key is free: the same request creates a fresh payment.
    let reply = svc
        .create(client(), key("k99"), request("10"))
        .await
        .expect("a fresh attempt");
    assert_ne!(reply.payment.id(), id);
    assert_eq!(reply.payment.payment_id().map(|p| p.as_str()), Some("p99"));
    assert!(matches!(
        stored(&repo, id).await.outcome(),
        CreateOutcome::Abandoned { .. }
    ));
}
