//! Reads: one payment (optionally refreshed from IVPAY), a page of payments, a history.

use ivpay_domain::{ClientId, Evidence, Payment, PaymentEvent, StatusUpdate, UpdateSource};
use ivpay_ports::{
    Clock, Page, PageRequest, PaymentFilter, PaymentGateway, PaymentRead, PaymentRef, PaymentStore,
    QueryError, Refresh, UpdateError,
};

use crate::PaymentService;

/// The largest page the service hands out, whatever is asked.
pub(crate) const MAX_PAGE: u32 = 500;

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
{
    /// The payment `reference` names, if `client` owns it. Another client's payment is
    /// answered exactly as a missing one: the same query, the same error, so neither the
    /// answer nor its timing tells that it exists.
    /// Whoever's payment `reference` names.
    async fn find(&self, reference: &PaymentRef) -> Result<Option<Payment>, QueryError> {
        Ok(match reference {
            PaymentRef::Internal(id) => self.repo.get(*id).await?,
            PaymentRef::Ivpay(id) => self.repo.get_by_payment_id(id).await?,
        })
    }

    async fn lookup(
        &self,
        client: &ClientId,
        reference: &PaymentRef,
    ) -> Result<Payment, QueryError> {
        self.find(reference)
            .await?
            .filter(|payment| payment.is_owned_by(client))
            .ok_or_else(|| QueryError::NotFound(reference.clone()))
    }

    pub(crate) async fn list_payments(
        &self,
        client: ClientId,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, QueryError> {
        let filter = PaymentFilter {
            owner: Some(client),
            ..filter
        };
        self.list_every_payment(filter, page).await
    }

    pub(crate) async fn history_of_any(
        &self,
        reference: PaymentRef,
    ) -> Result<(Payment, Vec<PaymentEvent>), QueryError> {
        let payment = self
            .find(&reference)
            .await?
            .ok_or(QueryError::NotFound(reference))?;
        let events = self.repo.events(payment.id()).await?;
        Ok((payment, events))
    }

    pub(crate) async fn list_every_payment(
        &self,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page, QueryError> {
        let page = PageRequest {
            limit: page.limit.clamp(1, MAX_PAGE),
            ..page
        };
        Ok(self.repo.list(&filter, page).await?)
    }

    pub(crate) async fn payment_events(
        &self,
        client: &ClientId,
        reference: PaymentRef,
    ) -> Result<Vec<PaymentEvent>, QueryError> {
        let payment = self.lookup(client, &reference).await?;
        Ok(self.repo.events(payment.id()).await?)
    }
}

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
    G: PaymentGateway,
    C: Clock,
{
    pub(crate) async fn get_payment(
        &self,
        client: &ClientId,
        reference: PaymentRef,
        refresh: bool,
    ) -> Result<PaymentRead, QueryError> {
        let payment = self.lookup(client, &reference).await?;
        let read = |payment, refresh| Ok(PaymentRead { payment, refresh });
        if !refresh {
            return read(payment, Refresh::NotAsked);
        }
        let Some(payment_id) = payment.payment_id().cloned() else {
            return read(payment, Refresh::NotNeeded);
        };
        if !payment.needs_reconciliation() {
            return read(payment, Refresh::NotNeeded);
        }
        if !self.budget.refresh(client, payment.account()) {
            metrics::counter!("ivpay_refresh_skipped_total").increment(1);
            return read(payment, Refresh::Skipped);
        }
        let remote = self
            .gateways
            .of(payment.account())
            .map_err(QueryError::Upstream)?
            .get(&payment_id)
            .await
            .map_err(QueryError::Upstream)?;
        self.apply_status_update(StatusUpdate {
            payment_id,
            status: remote.status,
            processed_at: remote.processed_at,
            source: UpdateSource::Api,
            evidence: Some(Evidence::from_confirmation(remote.raw)),
        })
        .await
        .map_err(|e| match e {
            UpdateError::Storage(s) => QueryError::Storage(s),
            UpdateError::Upstream(g) => QueryError::Upstream(g),
            UpdateError::Contended { id, attempts } => QueryError::Contended { id, attempts },
        })?;
        let payment = self
            .lookup(client, &PaymentRef::Internal(payment.id()))
            .await?;
        read(payment, Refresh::Done)
    }
}
