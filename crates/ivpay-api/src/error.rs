//! Every error the API can answer, rendered once, in IVPAY's envelope.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ivpay_domain::{FieldError, InternalId};
use ivpay_ports::{CreateError, QueryError, RepositoryError, UpdateError};

/// An error answer. `status()` decides the HTTP code; the body is always
/// `{"success": false, "error": "...", "code": "...", ...}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A domain validation error, which names its field.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The body is not JSON, or not an object.
    #[error("body: {0}")]
    MalformedBody(String),
    /// Missing or wrong `X-API-KEY`. The text is IVPAY's.
    #[error("Wrong auth parameters")]
    Unauthorized,
    /// No such payment.
    #[error("payment {0} not found")]
    NotFound(String),
    /// The body is larger than allowed.
    #[error("body: larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The client sent more requests than its rate allows.
    #[error("rate limit exceeded, retry after {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// When a request will be accepted again.
        retry_after: Duration,
    },
    /// The request ran longer than the server allows.
    #[error("request took longer than {} s", limit.as_secs())]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The body is not `application/json`.
    #[error("Content-Type: expected application/json")]
    UnsupportedMediaType,
    /// The use case refused or failed to create.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// A read failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A webhook could not be processed now; IVPAY should retry.
    #[error(transparent)]
    Update(#[from] UpdateError),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::Field(_) | Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) | Self::Query(QueryError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Create(e) => match e {
                CreateError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
                CreateError::InFlight { .. } => StatusCode::CONFLICT,
                CreateError::Rejected { .. } => StatusCode::BAD_REQUEST,
                CreateError::UpstreamUnauthorized => StatusCode::BAD_GATEWAY,
                CreateError::UpstreamUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                CreateError::OutcomeUnknown { .. } => StatusCode::GATEWAY_TIMEOUT,
                CreateError::Storage(s) => storage_status(s),
                CreateError::Invariant(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Query(QueryError::Contended { .. })
            | Self::Update(UpdateError::Contended { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Query(QueryError::Upstream(_)) => StatusCode::BAD_GATEWAY,
            Self::Query(QueryError::Storage(s)) => storage_status(s),
            Self::Update(UpdateError::Upstream(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Update(UpdateError::Storage(s)) => storage_status(s),
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::Field(_) => "invalid_request",
            Self::MalformedBody(_) => "malformed_body",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) | Self::Query(QueryError::NotFound(_)) => "not_found",
            Self::TooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout { .. } => "timeout",
            Self::Create(e) => match e {
                CreateError::IdempotencyMismatch => "idempotency_key_reused",
                CreateError::InFlight { .. } => "idempotency_key_in_flight",
                CreateError::Rejected { .. } => "rejected_by_ivpay",
                CreateError::UpstreamUnauthorized => "upstream_unauthorized",
                CreateError::UpstreamUnavailable { .. } => "upstream_unavailable",
                CreateError::OutcomeUnknown { .. } => "outcome_unknown",
                CreateError::Storage(_) => "storage_error",
                CreateError::Invariant(_) => "internal_error",
            },
            Self::Query(QueryError::Contended { .. })
            | Self::Update(UpdateError::Contended { .. }) => "contended",
            Self::Query(QueryError::Upstream(_)) | Self::Update(UpdateError::Upstream(_)) => {
                "upstream_unavailable"
            }
            Self::Query(QueryError::Storage(_)) | Self::Update(UpdateError::Storage(_)) => {
                "storage_error"
            }
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Create(CreateError::InFlight { retry_after })
            | Self::RateLimited { retry_after } => Some(*retry_after),
            Self::Create(CreateError::UpstreamUnavailable { retry_after, .. }) => {
                Some(retry_after.unwrap_or(Duration::from_secs(1)))
            }
            Self::Query(QueryError::Contended { .. })
            | Self::Update(UpdateError::Contended { .. }) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The message for the client. Server-side failures say only what the client can act
    /// on; their details go to the log.
    fn public_message(&self) -> String {
        match self {
            // Server-side, but the client can act on them: the text says what to do.
            Self::Timeout { .. }
            | Self::Create(
                CreateError::OutcomeUnknown { .. }
                | CreateError::UpstreamUnavailable { .. }
                | CreateError::UpstreamUnauthorized,
            ) => self.to_string(),
            _ if self.status().is_server_error() => match self.code() {
                "upstream_unavailable" => "IVPAY is unavailable, try again later".to_owned(),
                _ => "internal error, try again later".to_owned(),
            },
            _ => self.to_string(),
        }
    }

    fn payment_id(&self) -> Option<InternalId> {
        match self {
            Self::Create(
                CreateError::OutcomeUnknown { id, .. } | CreateError::Rejected { id, .. },
            ) => Some(*id),
            _ => None,
        }
    }
}

fn storage_status(e: &RepositoryError) -> StatusCode {
    match e {
        RepositoryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(&self).map(ToString::to_string), code = self.code(), "request failed");
        } else {
            tracing::debug!(error = %self, code = self.code(), "request refused");
        }
        let mut body = serde_json::json!({
            "success": false,
            "error": self.public_message(),
            "code": self.code(),
        });
        if let Self::Field(f) = &self {
            body["field"] = f.field().as_str().into();
        }
        if let Some(id) = self.payment_id() {
            body["id"] = id.to_string().into();
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after() {
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
