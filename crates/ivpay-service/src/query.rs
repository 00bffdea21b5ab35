//! Reads: one payment (optionally refreshed from IVPAY), a page of payments, a history.

use ivpay_domain::{Evidence, Payment, PaymentEvent, StatusUpdate, UpdateSource};
use ivpay_ports::{
    Clock, Page, PageRequest, PaymentFilter, PaymentGateway, PaymentRef, PaymentStore, QueryError,
    UpdateError,
};

use crate::PaymentService;

/// The largest page the service hands out, whatever is asked.
pub(crate) const MAX_PAGE: u32 = 500;

impl<R, G, C> PaymentService<R, G, C>
where
    R: PaymentStore,
{
    async fn lookup(&self, reference: &PaymentRef) -> Result<Payment, QueryError> {
        let found = match reference {
            PaymentRef::Internal(id) => self.repo.get(*id).await?,
            PaymentRef::Ivpay(id) => self.repo.get_by_payment_id(id).await?,
        };
        found.ok_or_else(|| QueryError::NotFound(reference.clone()))
    }

    pub(crate) async fn list_payments(
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
        reference: PaymentRef,
    ) -> Result<Vec<PaymentEvent>, QueryError> {
        let payment = self.lookup(&reference).await?;
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
        reference: PaymentRef,
        refresh: bool,
    ) -> Result<Payment, QueryError> {
        let payment = self.lookup(&reference).await?;
        if !refresh || !payment.needs_reconciliation() {
            return Ok(payment);
        }
        let Some(payment_id) = payment.payment_id().cloned() else {
            return Ok(payment);
        };
        let remote = self
            .gateway
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
        self.lookup(&PaymentRef::Internal(payment.id())).await
    }
}
