//! Linking a row whose create outcome is *unknown* (or still *initiated*) to the upstream
//! payment that carries its foreign id.
//!
//! Every create sends IVPAY a foreign id: the client's, or our own id when the client gave
//! none ([`Payment::upstream_foreign_id`]). IVPAY's `GET` echoes it, but no amount or
//! currency, so the match rule is: IVPAY's foreign id equals the one the row sent, the row's
//! outcome is *unknown* or *initiated*, and exactly one row qualifies. Two or more wait for
//! an operator. A row is linked by compare-and-set on its version, and the unique index on
//! IVPAY's id keeps one upstream payment from being linked to two rows.

use ivpay_domain::{
    AccountId, CreateOutcome, ForeignId, InternalId, Payment, PaymentId, UpstreamPayment,
};
use ivpay_ports::{
    AdminError, Clock, GatewayError, PaymentGateway, PaymentStore, RepositoryError, UpdateError,
};

use crate::PaymentService;

/// What matching an upstream payment we hold no row for found.
#[derive(Debug)]
pub(crate) enum Match {
    /// A row is now linked to it.
    Linked,
    /// A row holds it already (its own create's save, or another worker's link).
    Known,
    /// No row awaits it (yet).
    None,
    /// Several rows could be it: an operator decides.
    Ambiguous,
}

/// Whether a row still waits for IVPAY's id: its create outcome is open.
pub(crate) fn awaiting(payment: &Payment) -> bool {
    matches!(
        payment.outcome(),
        CreateOutcome::Initiated | CreateOutcome::Unknown { .. }
    )
}

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
    C: Clock,
{
    /// The rows awaiting IVPAY's id that sent `foreign_id` upstream: by the client's foreign
    /// id, and by our own id for rows that had none.
    async fn candidates(
        &self,
        account: &AccountId,
        foreign_id: &ForeignId,
    ) -> Result<Vec<Payment>, RepositoryError> {
        let mut found = self.repo.find_by_foreign_id(foreign_id).await?;
        if let Ok(uuid) = uuid::Uuid::parse_str(foreign_id.as_str())
            && let Some(own) = self.repo.get(InternalId::from_uuid(uuid)).await?
        {
            found.push(own);
        }
        found.retain(|p| {
            awaiting(p) && p.upstream_foreign_id() == *foreign_id && p.account() == account
        });
        found.sort_by_key(Payment::id);
        found.dedup_by_key(|p| p.id());
        Ok(found)
    }

    /// Links the one row of `account` awaiting `foreign_id` (IVPAY's, from its `GET` of
    /// `payment_id` with that account's key) to `payment_id`, if there is exactly one;
    /// [`Match::Known`] when a row holds `payment_id` already.
    pub(crate) async fn link_by_foreign_id(
        &self,
        payment_id: &PaymentId,
        account: &AccountId,
        foreign_id: Option<&ForeignId>,
    ) -> Result<Match, UpdateError> {
        let attempts = self.config.max_conflict_retries.saturating_add(1);
        let mut last = None;
        for _ in 0..attempts {
            if self.repo.get_by_payment_id(payment_id).await?.is_some() {
                return Ok(Match::Known);
            }
            let Some(foreign_id) = foreign_id else {
                return Ok(Match::None);
            };
            let mut candidates = self.candidates(account, foreign_id).await?;
            if candidates.len() > 1 {
                tracing::warn!(%payment_id, %foreign_id,
                    candidates = candidates.len(),
                    "upstream payment matches several rows: an operator must link it");
                return Ok(Match::Ambiguous);
            }
            let Some(payment) = candidates.pop() else {
                return Ok(Match::None);
            };
            let id = payment.id();
            match self.link(payment, payment_id).await {
                Ok(_) => {
                    // Counted here, where it is written: a failure later in the webhook's
                    // confirmation (or a lost lease) must not lose the count.
                    metrics::counter!("ivpay_unknown_links_total", "outcome" => "linked")
                        .increment(1);
                    tracing::info!(%id, %payment_id, %foreign_id,
                        "row linked to its upstream payment by foreign id");
                    return Ok(Match::Linked);
                }
                // The create (or another worker) got there first: look again.
                Err(
                    RepositoryError::VersionConflict { .. } | RepositoryError::Duplicate { .. },
                ) => {
                    last = Some(id);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(UpdateError::Contended {
            id: last.unwrap_or_else(|| InternalId::from_uuid(uuid::Uuid::nil())),
            attempts,
        })
    }

    /// Completes `payment` (outcome *initiated* or *unknown*) with IVPAY's id and a
    /// `payment_url` from the template, compare-and-set on the version read, and schedules
    /// its first reconciliation check.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::VersionConflict`] when the row changed since it was read (or its
    /// outcome is no longer open), [`RepositoryError::Duplicate`] when IVPAY's id is
    /// linked to another row, and the store's other errors.
    pub(crate) async fn link(
        &self,
        mut payment: Payment,
        payment_id: &PaymentId,
    ) -> Result<Payment, RepositoryError> {
        let now = self.clock.now();
        let version = payment.version();
        let upstream = UpstreamPayment {
            payment_id: payment_id.clone(),
            payment_url: self.config.payment_url_template.render(payment_id),
            // IVPAY's GET does not say when it created the payment: when we learnt of it.
            created_at: now,
        };
        if payment.mark_created(upstream, now).is_err() {
            return Err(RepositoryError::VersionConflict {
                id: payment.id(),
                expected: version,
            });
        }
        let first_check = now
            + self
                .config
                .reconcile_delay(1, payment.id().as_uuid().as_u128());
        self.repo
            .save_outcome(&payment, version, Some(first_check))
            .await?;
        Ok(payment)
    }
}

/// The row, if its create outcome is still open.
fn open(payment: Option<Payment>, id: InternalId) -> Result<Payment, AdminError> {
    let payment = payment.ok_or(AdminError::NotFound(id))?;
    if awaiting(&payment) {
        Ok(payment)
    } else {
        Err(AdminError::NotOpen {
            id,
            outcome: payment.outcome().as_str(),
        })
    }
}

/// A lost compare-and-set is the operator's to retry; a taken upstream id is a conflict.
fn admin_write_error(error: RepositoryError, payment_id: Option<&PaymentId>) -> AdminError {
    match (error, payment_id) {
        (RepositoryError::VersionConflict { id, .. }, _) => AdminError::Contended(id),
        (RepositoryError::Duplicate { .. }, Some(payment_id)) => {
            AdminError::AlreadyLinked(payment_id.clone())
        }
        (other, _) => AdminError::Storage(other),
    }
}

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
    G: PaymentGateway,
    C: Clock,
{
    pub(crate) async fn link_manually(
        &self,
        id: InternalId,
        payment_id: PaymentId,
    ) -> Result<Payment, AdminError> {
        let payment = open(self.repo.get(id).await?, id)?;
        if self.repo.get_by_payment_id(&payment_id).await?.is_some() {
            return Err(AdminError::AlreadyLinked(payment_id));
        }
        let gateway = self
            .gateways
            .of(payment.account())
            .map_err(AdminError::Upstream)?;
        let remote = match gateway.get(&payment_id).await {
            Ok(remote) => remote,
            Err(GatewayError::NotFound(_)) => return Err(AdminError::UpstreamNotFound(payment_id)),
            Err(other) => return Err(AdminError::Upstream(other)),
        };
        let sent = payment.upstream_foreign_id();
        if let Some(held) = &remote.foreign_id
            && *held != sent
        {
            return Err(AdminError::ForeignIdMismatch {
                payment_id,
                expected: sent.as_str().to_owned(),
                found: Some(held.as_str().to_owned()),
            });
        }
        // Decided on the row as read before IVPAY answered: a change since (the create
        // finishing, a webhook linking it) loses the compare-and-set.
        let linked = self
            .link(payment, &payment_id)
            .await
            .map_err(|e| admin_write_error(e, Some(&payment_id)))?;
        tracing::warn!(%id, %payment_id, "operator linked the payment to its upstream payment");
        Ok(linked)
    }

    pub(crate) async fn abandon_manually(&self, id: InternalId) -> Result<Payment, AdminError> {
        let mut payment = open(self.repo.get(id).await?, id)?;
        let version = payment.version();
        let now = self.clock.now();
        if payment
            .mark_abandoned("abandoned by an operator".to_owned(), now)
            .is_err()
        {
            return Err(AdminError::Contended(id));
        }
        // The outcome and the release of the key in one write: the key may be used again
        // exactly when nothing can link the row any more.
        self.repo
            .save_abandoned(&payment, version)
            .await
            .map_err(|e| admin_write_error(e, None))?;
        tracing::warn!(%id, "operator abandoned the payment");
        Ok(payment)
    }
}
