//! Create: record the intent, call IVPAY once, store what it said, answer.

use ivpay_domain::{
    ClientId, CreateOutcome, IdempotencyKey, InternalId, NewPayment, OutcomeError, Payment,
    UpstreamPayment,
};
use std::future::Future;
use std::sync::Arc;

use ivpay_ports::{
    BrokenInvariant, Clock, CreateError, CreateReply, CreateRequest, Delivery, GatewayError,
    IdempotencyClaim, IdempotencyRecord, IntentInsert, PaymentGateway, PaymentStore,
    RepositoryError,
};
use sha2::{Digest, Sha256};

use crate::config::ServiceConfig;
use crate::fault::FaultPoint;
use crate::{Accounts, PaymentService};

/// A digest of what the request means, so `10.5` and `10.50` are the same request.
pub(crate) fn fingerprint(request: &NewPayment) -> String {
    hex::encode(Sha256::digest(request.canonical().as_bytes()))
}

/// Counts a create outcome once it is stored, whether or not the request that started it
/// is still there to hear it: with `ivpay_unknown_links_total`, the rows' outcomes can be
/// told from the counters alone.
fn count_stored(payment: &Payment) {
    metrics::counter!("ivpay_create_outcomes_total", "outcome" => payment.outcome().as_str())
        .increment(1);
}

/// A settled outcome can only follow an initiated one; anything else is a bug here.
fn settled(result: Result<(), OutcomeError>) -> Result<(), CreateError> {
    result.map_err(|e| BrokenInvariant::Outcome(e).into())
}

/// What a create's own task needs: `'static` handles on the ports, so the call to IVPAY
/// and the write of its answer finish even when the request that started them is gone.
struct Upstream<R, G, C> {
    repo: Arc<R>,
    gateways: Arc<Accounts<G>>,
    clock: Arc<C>,
    config: Arc<ServiceConfig>,
}

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore + 'static,
    G: PaymentGateway + 'static,
    C: Clock + 'static,
{
    pub(crate) async fn create_payment(
        &self,
        client: ClientId,
        key: Option<IdempotencyKey>,
        request: NewPayment,
    ) -> Result<CreateReply, CreateError> {
        let now = self.clock.now();
        let print = fingerprint(&request);
        let account = self.gateways.account_of(&client);
        let owner = client.clone();
        let claim = key.map(|key| IdempotencyClaim {
            client,
            key,
            fingerprint: print.clone(),
            expires_at: now + self.config.idempotency_ttl,
        });
        let payment = Payment::initiate(
            InternalId::from_uuid(uuid::Uuid::now_v7()),
            owner,
            account,
            request,
            now,
        );

        // The intent (and the key) are committed before anything leaves the process: a
        // crash or timeout from here on leaves a row to resolve, never a silent loss.
        match self.repo.insert_intent(&payment, claim).await? {
            IntentInsert::Inserted => {}
            IntentInsert::KeyTaken(record) => return self.replay(record, &print).await,
        }
        self.config
            .faults
            .pass(FaultPoint::CreateAfterIntentCommit)
            .await;
        let upstream = Upstream {
            repo: Arc::clone(&self.repo),
            gateways: Arc::clone(&self.gateways),
            clock: Arc::clone(&self.clock),
            config: Arc::clone(&self.config),
        };
        // The call and the write of its answer run in place, and if this request is
        // dropped (client gone, request time limit) they are finished in a task of their
        // own: IVPAY's answer is still stored, and a repeat with the key replays it. The work
        // ends within the IVPAY client's timeout plus the bounded retries of the write.
        crate::detach::FinishOnDrop::new(&self.creates, upstream.call(payment)).await
    }

    /// Answers a repeated key from storage. A different request under the same key is
    /// refused; a first request still running is waited for, up to a bound.
    async fn replay(
        &self,
        record: IdempotencyRecord,
        print: &str,
    ) -> Result<CreateReply, CreateError> {
        if record.fingerprint != print {
            return Err(CreateError::IdempotencyMismatch);
        }
        let poll = self
            .config
            .in_flight_poll
            .max(std::time::Duration::from_millis(1));
        let polls = (self.config.in_flight_wait.as_millis() / poll.as_millis()).max(1);
        for _ in 0..polls {
            let payment = self
                .repo
                .get(record.payment)
                .await?
                .ok_or(BrokenInvariant::MissingPayment(record.payment))?;
            match payment.outcome().clone() {
                CreateOutcome::Created => {
                    return Ok(CreateReply {
                        payment,
                        replayed: true,
                    });
                }
                CreateOutcome::Rejected { reason } => {
                    return Err(CreateError::Rejected {
                        message: reason,
                        id: payment.id(),
                    });
                }
                CreateOutcome::Unknown { reason } => {
                    return Err(CreateError::OutcomeUnknown {
                        id: payment.id(),
                        reason,
                    });
                }
                // The first request gave up and released the key after we read it.
                CreateOutcome::Abandoned { reason } => {
                    return Err(CreateError::UpstreamUnavailable {
                        reason,
                        retry_after: None,
                    });
                }
                CreateOutcome::Initiated => self.clock.sleep(poll).await,
            }
        }
        Err(CreateError::InFlight {
            retry_after: self.config.in_flight_retry_after,
        })
    }
}

impl<R, G, C> Upstream<R, G, C>
where
    R: PaymentStore,
    G: PaymentGateway,
    C: Clock,
{
    /// Sends the create once and stores what IVPAY said. Runs in its own task.
    async fn call(self, mut payment: Payment) -> Result<CreateReply, CreateError> {
        let request = CreateRequest {
            money: payment.money(),
            foreign_id: payment.upstream_foreign_id(),
            url_success: payment.url_success().cloned(),
            url_failed: payment.url_failed().cloned(),
        };
        let version = payment.version();
        let answer = match self.gateways.of(payment.account()) {
            Ok(gateway) => gateway.create(&request).await,
            Err(not_configured) => Err(not_configured),
        };
        self.config
            .faults
            .pass(FaultPoint::CreateAfterUpstreamResponse)
            .await;
        let now = self.clock.now();
        match answer {
            Ok(upstream) => {
                let upstream_id = upstream.payment_id.clone();
                settled(payment.mark_created(upstream, now))?;
                let first_check = now
                    + self
                        .config
                        .reconcile_delay(1, payment.id().as_uuid().as_u128());
                let saved = self
                    .store(payment.id(), || {
                        self.repo.save_outcome(&payment, version, Some(first_check))
                    })
                    .await;
                if let Err(source) = saved {
                    // A webhook linked the row to this very payment first: that is success.
                    if let Some(linked) = self
                        .linked_meanwhile(&source, &payment, payment.upstream())
                        .await
                    {
                        return Ok(CreateReply {
                            payment: linked,
                            replayed: false,
                        });
                    }
                    // The payment exists upstream but not in our record: say so loudly with
                    // both ids, so it can be linked by hand or by a webhook. The intent
                    // stays for recovery.
                    tracing::error!(
                        id = %payment.id(),
                        payment_id = %upstream_id,
                        error = %source,
                        "created at IVPAY but could not store the answer; left for recovery"
                    );
                    return Err(CreateError::NotRecorded {
                        id: payment.id(),
                        source,
                    });
                }
                tracing::info!(id = %payment.id(), payment_id = %upstream_id, "payment created");
                count_stored(&payment);
                Ok(CreateReply {
                    payment,
                    replayed: false,
                })
            }
            Err(error) => self.settle_failure(payment, version, error).await,
        }
    }

    async fn settle_failure(
        &self,
        mut payment: Payment,
        version: u64,
        error: GatewayError,
    ) -> Result<CreateReply, CreateError> {
        let now = self.clock.now();
        let id = payment.id();
        let outcome_error = match &error {
            GatewayError::Rejected { message, .. } => {
                settled(payment.mark_rejected(message.clone(), now))?;
                CreateError::Rejected {
                    message: message.clone(),
                    id,
                }
            }
            GatewayError::NotFound(_) => {
                let message = error.to_string();
                settled(payment.mark_rejected(message.clone(), now))?;
                CreateError::Rejected { message, id }
            }
            GatewayError::Unauthorized => {
                settled(payment.mark_abandoned(error.to_string(), now))?;
                CreateError::UpstreamUnauthorized
            }
            GatewayError::Unavailable {
                reason,
                delivery: delivery @ (Delivery::NotSent | Delivery::Refused),
                retry_after,
            } => {
                let what = if *delivery == Delivery::Refused {
                    "not processed"
                } else {
                    "not sent"
                };
                settled(payment.mark_abandoned(format!("{what}: {reason}"), now))?;
                CreateError::UpstreamUnavailable {
                    reason: reason.clone(),
                    retry_after: retry_after.map(|d| self.config.capped_retry_after(d)),
                }
            }
            GatewayError::Unavailable { .. } | GatewayError::Protocol { .. } => {
                settled(payment.mark_unknown(error.to_string(), now))?;
                tracing::warn!(%id, error = %error, "create outcome unknown");
                CreateError::OutcomeUnknown {
                    id,
                    reason: error.to_string(),
                }
            }
        };
        let saved = if matches!(payment.outcome(), CreateOutcome::Abandoned { .. }) {
            // Nothing exists upstream: the outcome and the release of the key in one write,
            // so the client may repeat the request with its key.
            self.store(id, || self.repo.save_abandoned(&payment, version))
                .await
        } else {
            self.store(id, || self.repo.save_outcome(&payment, version, None))
                .await
        };
        if let Err(source) = saved {
            // IVPAY did create it after all, and a webhook linked the row while we waited.
            if let Some(linked) = self.linked_meanwhile(&source, &payment, None).await {
                return Ok(CreateReply {
                    payment: linked,
                    replayed: false,
                });
            }
            tracing::error!(%id, error = %source, outcome = ?payment.outcome(), "could not store the create outcome; left for recovery");
            return Err(CreateError::NotRecorded { id, source });
        }
        count_stored(&payment);
        Err(outcome_error)
    }

    /// After our own save of a create's outcome lost its compare-and-set: the row as a
    /// webhook linked it meanwhile ([`crate::link`]), if it did, to the payment IVPAY
    /// `answered` us with, when it answered. The link's `payment_url` came from a template;
    /// IVPAY's own answer replaces it (best effort: a lost race keeps the template's URL,
    /// which names the same payment). Anything else is the save's error to report.
    async fn linked_meanwhile(
        &self,
        error: &RepositoryError,
        payment: &Payment,
        answered: Option<&UpstreamPayment>,
    ) -> Option<Payment> {
        if !matches!(error, RepositoryError::VersionConflict { .. }) {
            return None;
        }
        let mut stored = self.repo.get(payment.id()).await.ok().flatten()?;
        let linked_to = stored.payment_id()?.clone();
        let Some(answer) = answered else {
            tracing::info!(id = %payment.id(), payment_id = %linked_to,
                "create finished after a webhook linked its row: the link stands");
            return Some(stored);
        };
        if answer.payment_id != linked_to {
            tracing::error!(id = %payment.id(), ours = %answer.payment_id, linked = %linked_to,
                "row linked to another upstream payment than the one IVPAY created for it");
            return None;
        }
        let version = stored.version();
        let now = self.clock.now();
        if stored.take_create_answer(answer, now) {
            let next = (!stored.is_final()).then(|| {
                now + self
                    .config
                    .reconcile_delay(1, payment.id().as_uuid().as_u128())
            });
            match self.repo.save_outcome(&stored, version, next).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(id = %payment.id(), error = %e,
                        "kept the linked payment_url: IVPAY's own could not be written");
                    return self.repo.get(payment.id()).await.ok().flatten();
                }
            }
        }
        tracing::info!(id = %payment.id(), payment_id = %linked_to,
            "create finished after a webhook linked its row: the link stands, with IVPAY's payment_url");
        Some(stored)
    }

    /// Runs `write` until it succeeds, fails for good, or storage stayed unavailable for
    /// [`ServiceConfig::outcome_save_attempts`] attempts, backing off in between.
    async fn store<F, Fut>(&self, id: InternalId, mut write: F) -> Result<(), RepositoryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), RepositoryError>>,
    {
        let mut wait = self.config.outcome_save_backoff;
        let mut attempt = 1;
        loop {
            match write().await {
                Err(RepositoryError::Unavailable(e))
                    if attempt < self.config.outcome_save_attempts =>
                {
                    tracing::warn!(%id, attempt, error = %e, "storing the create outcome failed; retrying");
                    self.clock.sleep(wait).await;
                    wait = wait.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ivpay_domain::{PaymentId, Timestamp};
    use ivpay_ports::{MockPaymentGateway, MockPaymentStore};

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::ServiceConfig;

    #[tokio::test]
    async fn a_key_whose_payment_is_gone_is_a_broken_invariant_not_corruption() {
        let request = NewPayment::from_fields("10", "USD", None, None, None).expect("valid");
        let vanished = InternalId::from_uuid(uuid::Uuid::from_u128(9));
        let record = IdempotencyRecord {
            client: "shop".parse().expect("client"),
            key: "k".parse().expect("key"),
            fingerprint: fingerprint(&request),
            payment: vanished,
            created_at: Timestamp::from_unix_seconds(1),
            expires_at: Timestamp::from_unix_seconds(i64::MAX / 2),
        };
        let mut store = MockPaymentStore::new();
        store
            .expect_insert_intent()
            .times(1)
            .returning(move |_, _| Ok(IntentInsert::KeyTaken(record.clone())));
        store.expect_get().times(1).returning(|_| Ok(None));
        // No expectation on the gateway: nothing may be sent.
        let svc = PaymentService::new(
            store,
            MockPaymentGateway::new(),
            ManualClock::new(Timestamp::from_unix_seconds(1_726_248_770)),
            ServiceConfig::default(),
        );
        let err = svc
            .create_payment(
                "shop".parse().expect("client"),
                Some("k".parse().expect("key")),
                request,
            )
            .await
            .expect_err("no payment to replay");
        assert!(
            matches!(err, CreateError::Invariant(BrokenInvariant::MissingPayment(id)) if id == vanished),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }

    fn client() -> ClientId {
        "shop".parse().expect("client")
    }

    fn request(amount: &str) -> NewPayment {
        NewPayment::from_fields(amount, "USD", None, None, None).expect("valid")
    }

    fn gateway_creating(id: &'static str) -> MockPaymentGateway {
        let mut g = MockPaymentGateway::new();
        g.expect_create().times(1).returning(move |_| {
            Ok(ivpay_domain::UpstreamPayment {
                payment_id: id.parse().expect("id"),
                payment_url: format!("https://pay.example/{id}").parse().expect("url"),
                created_at: Timestamp::from_unix_seconds(1_726_248_771),
            })
        });
        g
    }

    fn unavailable_storage() -> RepositoryError {
        RepositoryError::Unavailable(Box::new(std::io::Error::other("database is locked")))
    }

    /// A store that takes the intent and fails the first `failures` writes of the outcome.
    fn store_failing_outcome_writes(failures: usize, writes: usize) -> MockPaymentStore {
        let mut store = MockPaymentStore::new();
        store
            .expect_insert_intent()
            .times(1)
            .returning(|_, _| Ok(IntentInsert::Inserted));
        let tried = Arc::new(AtomicUsize::new(0));
        store
            .expect_save_outcome()
            .times(writes)
            .returning(move |_, _, _| {
                if tried.fetch_add(1, Ordering::SeqCst) < failures {
                    Err(unavailable_storage())
                } else {
                    Ok(())
                }
            });
        store
    }

    #[tokio::test]
    async fn a_save_that_fails_twice_then_succeeds_answers_the_payment() {
        let clk = ManualClock::new(Timestamp::from_unix_seconds(1_726_248_770));
        let svc = PaymentService::new(
            store_failing_outcome_writes(2, 3),
            gateway_creating("p-retry"),
            clk.clone(),
            ServiceConfig::default(),
        );
        let reply = svc
            .create_payment(client(), None, request("10"))
            .await
            .expect("stored on the third write");
        assert_eq!(
            reply.payment.payment_id().map(PaymentId::as_str),
            Some("p-retry")
        );
        assert_eq!(clk.sleeps(), 2, "backed off before each retry");
    }

    #[tokio::test]
    async fn a_save_that_keeps_failing_answers_with_our_id() {
        let config = ServiceConfig::default();
        let attempts = usize::try_from(config.outcome_save_attempts).expect("small");
        let svc = PaymentService::new(
            store_failing_outcome_writes(usize::MAX, attempts),
            gateway_creating("p-lost"),
            ManualClock::new(Timestamp::from_unix_seconds(1_726_248_770)),
            config,
        );
        let err = svc
            .create_payment(client(), Some("k".parse().expect("key")), request("10"))
            .await
            .expect_err("not recorded");
        let CreateError::NotRecorded { id, source } = &err else {
            panic!("expected NotRecorded, got {err:?}");
        };
        assert!(matches!(source, RepositoryError::Unavailable(_)));
        assert!(err.to_string().contains(&id.to_string()), "{err}");
        assert!(err.is_retryable());
    }
}
