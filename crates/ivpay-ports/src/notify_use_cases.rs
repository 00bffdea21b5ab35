//! The driving port of outbound notifications: what an operator (through the admin API
//! or the CLI) does with endpoints and the delivery log.

use ivpay_domain::{
    ClientId, Endpoint, EndpointId, EndpointUrl, InternalId, NoticeFilter, Timestamp,
};

use crate::notification_store::{DeliveryAttempt, Notification, NotificationFilter};
use crate::storage::RepositoryError;

/// An endpoint to add.
#[derive(Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Its id; `None` makes one (`ep_` and 32 hex digits).
    pub id: Option<EndpointId>,
    /// The client whose payments it hears about.
    pub client: ClientId,
    /// Where notices go.
    pub url: EndpointUrl,
    /// The types it wants.
    pub filter: NoticeFilter,
    /// A note for people.
    pub description: Option<String>,
    /// Its signing secret (`whsec_...`); `None` makes a new one.
    pub secret: Option<String>,
}

impl std::fmt::Debug for NewEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEndpoint")
            .field("id", &self.id)
            .field("client", &self.client)
            .field("url", &self.url)
            .field("filter", &self.filter)
            .field("secret", &self.secret.as_ref().map(|_| "redacted"))
            .finish_non_exhaustive()
    }
}

/// An endpoint with the secret it signs with now: the answer of adding one and of a
/// rotation, the only times a secret leaves the service.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointWithSecret {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its newest signing secret, `whsec_...`.
    pub secret: String,
}

impl std::fmt::Debug for EndpointWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointWithSecret")
            .field("endpoint", &self.endpoint)
            .field("secret", &"redacted")
            .finish()
    }
}

/// Why a notification operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No such endpoint or notification.
    #[error("no {what} {id}")]
    NotFound {
        /// `endpoint` or `notification`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A value the caller gave is not acceptable; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An endpoint with this id exists already.
    #[error("endpoint {0} exists already")]
    Exists(EndpointId),
    /// The endpoint would belong to a client that is not configured.
    #[error("client: {0} is not a configured client")]
    UnknownClient(ClientId),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// Endpoints and the delivery log, for operators.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait NotificationUseCases: Send + Sync {
    /// Adds an endpoint; answers it with its secret.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Invalid`] (a malformed secret), [`NotifyError::Exists`],
    /// [`NotifyError::Storage`].
    async fn add_endpoint(&self, new: NewEndpoint) -> Result<EndpointWithSecret, NotifyError>;

    /// Every endpoint, or one client's.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Storage`].
    async fn endpoints(&self, client: Option<ClientId>) -> Result<Vec<Endpoint>, NotifyError>;

    /// One endpoint.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotFound`], [`NotifyError::Storage`].
    async fn endpoint(&self, id: EndpointId) -> Result<Endpoint, NotifyError>;

    /// Enables or disables (by an operator) an endpoint; answers it as it is now.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotFound`], [`NotifyError::Storage`].
    async fn set_enabled(&self, id: EndpointId, enabled: bool) -> Result<Endpoint, NotifyError>;

    /// Makes a new signing secret; the newest previous one keeps signing beside it when
    /// `keep_previous` (so receivers can switch over), older ones are dropped.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotFound`], [`NotifyError::Storage`].
    async fn rotate_secret(
        &self,
        id: EndpointId,
        keep_previous: bool,
    ) -> Result<EndpointWithSecret, NotifyError>;

    /// Sends again every notification to the endpoint that failed since `since`; answers
    /// how many.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotFound`], [`NotifyError::Storage`].
    async fn recover(&self, id: EndpointId, since: Timestamp) -> Result<u64, NotifyError>;

    /// Notifications, newest first.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Storage`].
    async fn notifications(
        &self,
        filter: NotificationFilter,
        limit: u32,
    ) -> Result<Vec<Notification>, NotifyError>;

    /// One notification and its attempts.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotFound`], [`NotifyError::Storage`].
    async fn notification(
        &self,
        id: InternalId,
    ) -> Result<(Notification, Vec<DeliveryAttempt>), NotifyError>;

    /// Sends a notification again, now; answers it as it is now.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotFound`], [`NotifyError::Storage`].
    async fn redeliver(&self, id: InternalId) -> Result<Notification, NotifyError>;
}
