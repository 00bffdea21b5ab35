//! Create: record the intent, call IVPAY once, store what it said, answer.

use ivpay_domain::{
    ClientId, CreateOutcome, IdempotencyKey, InternalId, NewPayment, OutcomeError, Payment,
    PaymentId,
};
use ivpay_ports::{
    BrokenInvariant, Clock, CreateError, CreateReply, CreateRequest, Delivery, GatewayError,
    IdempotencyClaim, IdempotencyRecord, IntentInsert, PaymentGateway, PaymentStore,
    RepositoryError,
};
use sha2::{Digest, Sha256};

use crate::PaymentService;
use crate::fault::FaultPoint;

/// A digest of what the request means, so `10.5` and `10.50` are the same request.
pub(crate) fn fingerprint(request: &NewPayment) -> String {
    hex::encode(Sha256::digest(request.canonical().as_bytes()))
}

/// A settled outcome can only follow an initiated one; anything else is a bug here.
fn settled(result: Result<(), OutcomeError>) -> Result<(), CreateError> {
    result.map_err(|e| BrokenInvariant::Outcome(e).into())
}

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
    G: PaymentGateway,
    C: Clock,
{
    pub(crate) async fn create_payment(
        &self,
        client: ClientId,
        key: Option<IdempotencyKey>,
        request: NewPayment,
    ) -> Result<CreateReply, CreateError> {
        let now = self.clock.now();
        let print = fingerprint(&request);
        let claim = key.map(|key| IdempotencyClaim {
            client,
            key,
            fingerprint: print.clone(),
            expires_at: now + self.config.idempotency_ttl,
        });
        let payment = Payment::initiate(InternalId::from_uuid(uuid::Uuid::now_v7()), request, now);

        // The intent (and the key) are committed before anything leaves the process: a
        // crash or timeout from here on leaves a row to resolve, never a silent loss.
        match self.repo.insert_intent(&payment, claim.clone()).await? {
            IntentInsert::Inserted => {}
            IntentInsert::KeyTaken(record) => return self.replay(record, &print).await,
        }
        self.config
            .faults
            .pass(FaultPoint::CreateAfterIntentCommit)
            .await;
        self.call_upstream(payment, claim).await
    }

    async fn call_upstream(
        &self,
        mut payment: Payment,
        claim: Option<IdempotencyClaim>,
    ) -> Result<CreateReply, CreateError> {
        let request = CreateRequest {
            money: payment.money(),
            foreign_id: payment.upstream_foreign_id(),
            url_success: payment.url_success().cloned(),
            url_failed: payment.url_failed().cloned(),
        };
        let version = payment.version();
        let answer = self.gateway.create(&request).await;
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
                if let Err(e) = self
                    .repo
                    .save_outcome(&payment, version, Some(first_check))
                    .await
                {
                    // A webhook linked the row to this very payment first: that is success.
                    if let Some(linked) = self.linked_meanwhile(&e, &payment, &upstream_id).await {
                        return Ok(CreateReply {
                            payment: linked,
                            replayed: false,
                        });
                    }
                    // The payment exists upstream but not in our record: say so loudly with
                    // both ids, so it can be linked by hand or by a webhook.
                    tracing::error!(
                        id = %payment.id(),
                        payment_id = %upstream_id,
                        error = %e,
                        "created at IVPAY but could not store the answer"
                    );
                    return Err(e.into());
                }
                tracing::info!(id = %payment.id(), payment_id = %upstream_id, "payment created");
                Ok(CreateReply {
                    payment,
                    replayed: false,
                })
            }
            Err(error) => self.settle_failure(payment, version, claim, error).await,
        }
    }

    async fn settle_failure(
        &self,
        mut payment: Payment,
        version: u64,
        claim: Option<IdempotencyClaim>,
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
                delivery: Delivery::NotSent,
                retry_after,
            } => {
                settled(payment.mark_abandoned(format!("not sent: {reason}"), now))?;
                CreateError::UpstreamUnavailable {
                    reason: reason.clone(),
                    retry_after: *retry_after,
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
        if let Err(e) = self.repo.save_outcome(&payment, version, None).await {
            // IVPAY did create it after all, and a webhook linked the row while we waited.
            if let Some(linked) = self.linked_meanwhile(&e, &payment, None).await {
                return Ok(CreateReply {
                    payment: linked,
                    replayed: false,
                });
            }
            return Err(e.into());
        }
        if matches!(payment.outcome(), CreateOutcome::Abandoned { .. }) {
            if let Some(claim) = claim {
                // Nothing exists upstream: let the client repeat the request with its key.
                self.repo
                    .release_idempotency_key(&claim.client, &claim.key)
                    .await?;
            }
        }
        Err(outcome_error)
    }

    /// After our own save of a create's outcome lost its compare-and-set: the row as a
    /// webhook linked it meanwhile ([`crate::link`]), if it did, to `upstream_id` when
    /// IVPAY answered us with one. Anything else is the save's error to report.
    async fn linked_meanwhile(
        &self,
        error: &RepositoryError,
        payment: &Payment,
        upstream_id: impl Into<Option<&PaymentId>>,
    ) -> Option<Payment> {
        if !matches!(error, RepositoryError::VersionConflict { .. }) {
            return None;
        }
        let upstream_id = upstream_id.into();
        let stored = self.repo.get(payment.id()).await.ok().flatten()?;
        let linked_to = stored.payment_id()?;
        if upstream_id.is_some_and(|ours| ours != linked_to) {
            tracing::error!(id = %payment.id(), ours = ?upstream_id, linked = %linked_to,
                "row linked to another upstream payment than the one IVPAY created for it");
            return None;
        }
        tracing::info!(id = %payment.id(), payment_id = %linked_to,
            "create finished after a webhook linked its row: the link stands");
        Some(stored)
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

#[cfg(test)]
mod tests {
    use ivpay_domain::Timestamp;
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
}
