//! How many SQL statements (and transactions) one create and one read cost, on the real
//! repository: a change that adds a round trip to the hot paths fails here, in
//! `cargo test`, not in production. The counts are the design, not a measurement: create
//! is one INSERT of the intent before IVPAY is asked and one compare-and-set UPDATE of its
//! outcome after (a key adds one short transaction around the intent and its claim); a
//! read is one SELECT.

use std::sync::{Arc, Mutex};

use ivpay_domain::{PaymentId, Timestamp, UpstreamPayment};
use ivpay_persistence::{DatabaseOptions, SeaOrmRepository, connect, migrate_up};
use ivpay_ports::{
    CreateRequest, GatewayError, PaymentGateway, PaymentRef, PaymentUseCases, RemotePayment,
};
use ivpay_service::{PaymentService, ServiceConfig, SystemClock};

use crate::support::{Backend, fresh_db};

on_both_backends!(a_create_and_a_read_cost_the_statements_they_need);

/// IVPAY answering every create at once.
struct Instant;

#[async_trait::async_trait]
impl PaymentGateway for Instant {
    async fn create(&self, request: &CreateRequest) -> Result<UpstreamPayment, GatewayError> {
        let id = format!("stmt{}", request.foreign_id.as_str().len());
        Ok(UpstreamPayment {
            payment_id: id.parse().expect("valid id"),
            payment_url: format!("https://pay.example/{id}")
                .parse()
                .expect("valid url"),
            created_at: Timestamp::from_unix_seconds(1_726_248_776),
        })
    }

    async fn get(&self, id: &PaymentId) -> Result<RemotePayment, GatewayError> {
        Err(GatewayError::NotFound(id.clone()))
    }
}

/// The statements seen, by their first word (`INSERT`, `UPDATE`, `BEGIN`, ...).
fn verbs(seen: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *seen.lock().expect("not poisoned"))
        .iter()
        .map(|sql| {
            sql.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase()
        })
        .collect()
}

async fn a_create_and_a_read_cost_the_statements_they_need(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let mut database = connect(db.url(), &DatabaseOptions::default())
        .await
        .expect("opens");
    migrate_up(&database).await.expect("migrates");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    database
        .observe_statements(move |sql| record.lock().expect("not poisoned").push(sql.to_owned()));
    let service = PaymentService::new(
        SeaOrmRepository::new(&database),
        Instant,
        SystemClock,
        ServiceConfig::default(),
    );
    let client: ivpay_domain::ClientId = "shop".parse().expect("client");
    let request = |foreign: &str| {
        ivpay_domain::NewPayment::from_fields("10.50", "USD", Some(foreign), None, None)
            .expect("valid")
    };

    let created = service
        .create(client.clone(), None, request("a"))
        .await
        .expect("created")
        .payment;
    assert_eq!(verbs(&seen), ["INSERT", "UPDATE"], "create without a key");

    service
        .create(
            client.clone(),
            Some("k1".parse().expect("key")),
            request("bb"),
        )
        .await
        .expect("created");
    assert_eq!(
        verbs(&seen),
        ["BEGIN", "DELETE", "INSERT", "INSERT", "UPDATE"],
        "create with a key: the expired claim, the intent and the claim in one transaction"
    );

    let read = service
        .get(client, PaymentRef::Internal(created.id()), false)
        .await
        .expect("read");
    assert_eq!(read.payment.id(), created.id());
    assert_eq!(verbs(&seen), ["SELECT"], "a read");
}
