//! What every use-case test shares: a clock at a fixed time, requests, IVPAY's answers, and
//! a service over the in-memory repository.

use ivpay_domain::{
    ClientId, Evidence, IdempotencyKey, NewPayment, ReportedStatus, StatusUpdate, Timestamp,
    UpdateSource, UpstreamPayment,
};
use ivpay_ports::fakes::InMemoryRepository;
use ivpay_ports::{
    Delivery, GatewayError, MockPaymentGateway, PaymentGateway, PaymentStore, PaymentUseCases,
    RemotePayment,
};
use ivpay_service::{ManualClock, PaymentService, ServiceConfig};

pub(crate) const T0: i64 = 1_726_248_770;

pub(crate) fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_seconds(T0))
}

pub(crate) fn client() -> ClientId {
    "shop".parse().expect("valid client")
}

pub(crate) fn key(k: &str) -> Option<IdempotencyKey> {
    Some(k.parse().expect("valid key"))
}

pub(crate) fn request(amount: &str) -> NewPayment {
    NewPayment::from_fields(amount, "USD", Some("order-1"), None, None).expect("valid request")
}

pub(crate) fn upstream(id: &str) -> UpstreamPayment {
    UpstreamPayment {
        payment_id: id.parse().expect("valid id"),
        payment_url: format!("https://pay.example/{id}")
            .parse()
            .expect("valid url"),
        created_at: Timestamp::from_unix_seconds(T0 + 1),
    }
}

pub(crate) fn remote(id: &str, status: &str) -> RemotePayment {
    RemotePayment {
        payment_id: id.parse().expect("valid id"),
        foreign_id: None,
        status: ReportedStatus::from(status),
        processed_at: Some(Timestamp::from_unix_seconds(T0 + 9)),
        raw: format!(r#"{{"success":true,"data":{{"payment_id":"{id}","status":"{status}"}}}}"#),
    }
}

pub(crate) fn timeout() -> GatewayError {
    GatewayError::Unavailable {
        reason: "request timed out".into(),
        delivery: Delivery::MaybeSent,
        retry_after: None,
    }
}

pub(crate) type Service<G> = PaymentService<InMemoryRepository, G, ManualClock>;

pub(crate) fn service<G: PaymentGateway>(gateway: G) -> (Service<G>, InMemoryRepository) {
    let repo = InMemoryRepository::new();
    let svc = PaymentService::new(repo.clone(), gateway, clock(), ServiceConfig::default());
    (svc, repo)
}

pub(crate) fn gateway_creating(id: &'static str, times: usize) -> MockPaymentGateway {
    let mut g = MockPaymentGateway::new();
    g.expect_create()
        .times(times)
        .returning(move |_| Ok(upstream(id)));
    g
}

pub(crate) fn uuid_v4_like() -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0192_e4f5_7c3a_7b1e_9d2a_5f6e_7a8b_9c0d)
}

pub(crate) fn sha_of(req: &NewPayment) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(req.canonical().as_bytes()))
}

pub(crate) async fn created(
    svc: &Service<MockPaymentGateway>,
    repo: &InMemoryRepository,
) -> ivpay_domain::Payment {
    let reply = svc
        .create(client(), None, request("10"))
        .await
        .expect("created");
    repo.get(reply.payment.id())
        .await
        .expect("read")
        .expect("stored")
}

pub(crate) fn update(id: &str, status: &str, source: UpdateSource) -> StatusUpdate {
    StatusUpdate {
        payment_id: id.parse().expect("valid"),
        status: ReportedStatus::from(status),
        processed_at: Some(Timestamp::from_unix_seconds(T0 + 5)),
        source,
        evidence: Some(Evidence::from_confirmation(format!(
            "{{\"status\":\"{status}\"}}"
        ))),
    }
}

pub(crate) fn hint(id: &str, status: Option<&str>, raw: &str) -> ivpay_domain::WebhookHint {
    ivpay_domain::WebhookHint {
        account: ivpay_domain::AccountId::default(),
        payment_id: id.parse().expect("valid"),
        status: status.map(ReportedStatus::from),
        raw: raw.into(),
    }
}

pub(crate) fn clk_now(c: &ManualClock) -> Timestamp {
    use ivpay_ports::Clock;
    c.now()
}

pub(crate) async fn stored(
    repo: &InMemoryRepository,
    id: ivpay_domain::InternalId,
) -> ivpay_domain::Payment {
    repo.get(id).await.expect("read").expect("stored")
}
