//! Outbound notifications: the endpoints directory storage consults when it writes a
//! change, the delivery worker's pass, and the operator's use cases on endpoints and the
//! delivery log.

mod config;
mod deliver;
mod directory;
mod sign;

pub use config::NotifyConfig;
pub use deliver::DeliveryReport;
pub use directory::Directory;

use std::sync::Arc;

use ivpay_domain::{
    ClientId, Disabled, Endpoint, EndpointId, EndpointSecrets, InternalId, Timestamp,
};
use ivpay_ports::{
    Clock, DeliveryAttempt, EndpointWithSecret, NewEndpoint, NoticeSender, Notification,
    NotificationFilter, NotificationStore, NotificationUseCases, NotifyError, RepositoryError,
};

/// Notifications over a store `S`, a sender `N` and a clock `C`.
///
/// [`Notifications::deliver_due`] is the worker's pass; [`NotificationUseCases`] is what
/// the admin API calls. The [`Directory`] it keeps current is the audience the storage
/// adapter consults (`with_audience`), so the two must share it.
#[derive(Debug)]
pub struct Notifications<S, N, C> {
    store: Arc<S>,
    sender: Arc<N>,
    clock: Arc<C>,
    directory: Arc<Directory>,
    config: NotifyConfig,
}

impl<S, N, C> Notifications<S, N, C>
where
    S: NotificationStore,
    C: Clock,
{
    /// Assembles notifications from their ports; `directory` is the one storage consults.
    pub fn new(
        store: Arc<S>,
        sender: N,
        clock: Arc<C>,
        directory: Arc<Directory>,
        config: NotifyConfig,
    ) -> Self {
        Self {
            store,
            sender: Arc::new(sender),
            clock,
            directory,
            config,
        }
    }

    /// The store, for wiring (endpoints given in the configuration).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// How notices are delivered.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// The directory of listening endpoints.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Loads the directory from storage: at start, after a change to an endpoint, and
    /// every few seconds (changes made through other instances).
    ///
    /// # Errors
    ///
    /// [`RepositoryError`]; the directory keeps what it knew.
    pub async fn reload_directory(&self) -> Result<(), RepositoryError> {
        let endpoints = self.store.endpoints(None).await?;
        self.directory.load(&endpoints);
        Ok(())
    }

    async fn existing(&self, id: &EndpointId) -> Result<Endpoint, NotifyError> {
        self.store
            .endpoint(id)
            .await?
            .ok_or_else(|| NotifyError::NotFound {
                what: "endpoint",
                id: id.to_string(),
            })
    }

    async fn save(&self, endpoint: &Endpoint) -> Result<(), NotifyError> {
        self.store.save_endpoint(endpoint).await?;
        self.reload_directory().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl<S, N, C> NotificationUseCases for Notifications<S, N, C>
where
    S: NotificationStore,
    N: NoticeSender,
    C: Clock,
{
    async fn add_endpoint(&self, new: NewEndpoint) -> Result<EndpointWithSecret, NotifyError> {
        let secret = match new.secret {
            Some(given) => sign::check_secret(&given).map_err(|reason| NotifyError::Invalid {
                field: "secret",
                reason,
            })?,
            None => sign::new_secret(),
        };
        let id = new
            .id
            .unwrap_or_else(|| EndpointId::from_uuid(uuid::Uuid::now_v7()));
        if self.store.endpoint(&id).await?.is_some() {
            return Err(NotifyError::Exists(id));
        }
        let now = self.clock.now();
        let endpoint = Endpoint {
            id,
            client: new.client,
            url: new.url,
            secrets: EndpointSecrets::new(vec![secret.clone()]),
            filter: new.filter,
            description: new.description,
            disabled: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.save(&endpoint).await?;
        tracing::info!(endpoint = %endpoint.id, client = %endpoint.client, host = %endpoint.url.host(), "endpoint added");
        Ok(EndpointWithSecret { endpoint, secret })
    }

    async fn endpoints(&self, client: Option<ClientId>) -> Result<Vec<Endpoint>, NotifyError> {
        Ok(self.store.endpoints(client).await?)
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Endpoint, NotifyError> {
        self.existing(&id).await
    }

    async fn set_enabled(&self, id: EndpointId, enabled: bool) -> Result<Endpoint, NotifyError> {
        let mut endpoint = self.existing(&id).await?;
        let now = self.clock.now();
        endpoint.disabled = (!enabled).then(|| Disabled {
            reason: "operator".to_owned(),
            at: now,
        });
        if enabled {
            endpoint.failing_since = None;
        }
        endpoint.updated_at = now;
        self.save(&endpoint).await?;
        tracing::info!(endpoint = %id, enabled, "endpoint changed by an operator");
        Ok(endpoint)
    }

    async fn rotate_secret(
        &self,
        id: EndpointId,
        keep_previous: bool,
    ) -> Result<EndpointWithSecret, NotifyError> {
        let mut endpoint = self.existing(&id).await?;
        let secret = sign::new_secret();
        let mut secrets = vec![secret.clone()];
        if keep_previous {
            secrets.extend(endpoint.secrets.expose().first().cloned());
        }
        endpoint.secrets = EndpointSecrets::new(secrets);
        endpoint.updated_at = self.clock.now();
        self.save(&endpoint).await?;
        tracing::info!(endpoint = %id, keep_previous, "endpoint secret rotated");
        Ok(EndpointWithSecret { endpoint, secret })
    }

    async fn recover(&self, id: EndpointId, since: Timestamp) -> Result<u64, NotifyError> {
        self.existing(&id).await?;
        let n = self.store.recover(&id, since, self.clock.now()).await?;
        tracing::info!(endpoint = %id, since = %since, resent = n, "failed notifications recovered");
        Ok(n)
    }

    async fn notifications(
        &self,
        filter: NotificationFilter,
        limit: u32,
    ) -> Result<Vec<Notification>, NotifyError> {
        Ok(self.store.notifications(&filter, limit).await?)
    }

    async fn notification(
        &self,
        id: InternalId,
    ) -> Result<(Notification, Vec<DeliveryAttempt>), NotifyError> {
        let n = self
            .store
            .notification(id)
            .await?
            .ok_or_else(|| NotifyError::NotFound {
                what: "notification",
                id: id.to_string(),
            })?;
        let attempts = self.store.attempts(id).await?;
        Ok((n, attempts))
    }

    async fn redeliver(&self, id: InternalId) -> Result<Notification, NotifyError> {
        match self.store.redeliver(id, self.clock.now()).await {
            Err(RepositoryError::NotFound(_)) => {
                return Err(NotifyError::NotFound {
                    what: "notification",
                    id: id.to_string(),
                });
            }
            other => other?,
        }
        tracing::info!(notification = %id, "notification redelivered by an operator");
        Ok(self.notification(id).await?.0)
    }
}
