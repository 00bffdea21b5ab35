//! Every error the API can answer, mapped to a status and a code once, rendered once as
//! an [`ErrorBody`], and documented from the same mapping.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ivpay_domain::{FieldError, InternalId};
use ivpay_ports::{
    AdminError, CreateError, GatewayError, NotifyError, QueryError, RepositoryError, UpdateError,
};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};

use crate::envelope::ErrorBody;

/// An error answer. `status()` decides the HTTP code; the body is always
/// `{"success": false, "error": "...", "code": "...", ...}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field, header or query parameter is invalid. The body names it in `field`.
    #[error("{field}: {reason}")]
    Invalid {
        /// Its wire name (`amount_fiat`, `limit`, `Idempotency-Key`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is not JSON (trailing commas tolerated), or not a JSON object.
    #[error("body: {0}")]
    MalformedBody(String),
    /// Missing or wrong `X-API-KEY`. The text is IVPAY's.
    #[error("Wrong auth parameters")]
    Unauthorized,
    /// The key is known but lacks the scope the route needs.
    #[error("this key lacks the `{scope}` scope")]
    Forbidden {
        /// The scope the route needs (`create`, `read`, `admin`).
        scope: &'static str,
    },
    /// Nothing here (no such route, metrics not enabled).
    #[error("{0}")]
    NotFound(&'static str),
    /// The route does not answer this method.
    #[error("method not allowed")]
    MethodNotAllowed,
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
    /// Storage does not answer the readiness probe.
    #[error("database unavailable")]
    NotReady(#[source] QueryError),
    /// The use case refused or failed to create.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// A read failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A webhook could not be kept now; IVPAY should retry.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// An operator's link or abandon was refused or failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// An operation on notification endpoints or the delivery log was refused or failed.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// The request names an IVPAY account that is not configured, or names none where
    /// several are. The text lists the configured ones.
    #[error("account: {0}")]
    UnknownAccount(String),
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Invalid {
            field: e.field().as_str(),
            reason: e.reason(),
        }
    }
}

impl ApiError {
    /// Every [`ApiError::code`], as the document lists them.
    pub const CODES: [&'static str; 27] = crate::envelope::CODES;

    /// A field error.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } | Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::Query(QueryError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout { .. } | Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Create(e) => match e {
                CreateError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
                CreateError::InFlight { .. } => StatusCode::CONFLICT,
                CreateError::Rejected { .. } => StatusCode::BAD_REQUEST,
                CreateError::UpstreamUnauthorized => StatusCode::BAD_GATEWAY,
                CreateError::UpstreamUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                CreateError::OutcomeUnknown { .. } => StatusCode::GATEWAY_TIMEOUT,
                CreateError::NotRecorded { .. } => StatusCode::SERVICE_UNAVAILABLE,
                CreateError::Storage(s) => storage_status(s),
                CreateError::Invariant(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Query(QueryError::Contended { .. })
            | Self::Update(UpdateError::Contended { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Query(QueryError::Upstream(_)) => StatusCode::BAD_GATEWAY,
            Self::Query(QueryError::Storage(s)) => storage_status(s),
            Self::Update(UpdateError::Upstream(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Update(UpdateError::Storage(s)) => storage_status(s),
            Self::Admin(e) => admin_status(e),
            Self::UnknownAccount(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Notify(e) => match e {
                NotifyError::NotFound { .. } => StatusCode::NOT_FOUND,
                NotifyError::Invalid { .. } => StatusCode::BAD_REQUEST,
                NotifyError::Exists(_) => StatusCode::CONFLICT,
                NotifyError::UnknownClient(_) => StatusCode::UNPROCESSABLE_ENTITY,
                NotifyError::Storage(s) => storage_status(s),
            },
        }
    }

    /// A stable machine-readable code, one of [`ApiError::CODES`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_request",
            Self::MalformedBody(_) => "malformed_body",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound(_) | Self::Query(QueryError::NotFound(_)) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout { .. } => "timeout",
            Self::NotReady(_) => "not_ready",
            Self::Create(e) => create_code(e),
            Self::Query(QueryError::Contended { .. })
            | Self::Update(UpdateError::Contended { .. }) => "contended",
            Self::Query(QueryError::Upstream(_)) | Self::Update(UpdateError::Upstream(_)) => {
                "upstream_unavailable"
            }
            Self::Query(QueryError::Storage(_)) | Self::Update(UpdateError::Storage(_)) => {
                "storage_error"
            }
            Self::Admin(e) => admin_code(e),
            Self::UnknownAccount(_) => "unknown_account",
            Self::Notify(e) => match e {
                NotifyError::NotFound { .. } => "not_found",
                NotifyError::Invalid { .. } => "invalid_request",
                NotifyError::Exists(_) => "already_exists",
                NotifyError::UnknownClient(_) => "unknown_client",
                NotifyError::Storage(_) => "storage_error",
            },
        }
    }

    /// What the code means, for the OpenAPI document.
    fn meaning(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => {
                "a field, header or query parameter is invalid; `field` names it"
            }
            Self::MalformedBody(_) => "the body is not a JSON object (trailing commas are fine)",
            Self::Unauthorized => "`X-API-KEY` missing or wrong (`Wrong auth parameters`)",
            Self::Forbidden { .. } => "the key is known but lacks the scope this route needs",
            Self::NotFound(_) | Self::Query(QueryError::NotFound(_)) => {
                "no such payment or resource"
            }
            Self::MethodNotAllowed => "the route does not answer this method",
            Self::TooLarge { .. } => "the body is larger than the configured limit",
            Self::UnsupportedMediaType => "`Content-Type` is not `application/json`",
            Self::RateLimited { .. } => {
                "over the client's rate limit; `Retry-After` says when to come back"
            }
            Self::Timeout { .. } => "the request ran longer than the server allows",
            Self::NotReady(_) => "the database does not answer",
            Self::Create(e) => match e {
                CreateError::IdempotencyMismatch => {
                    "the `Idempotency-Key` was used with another request"
                }
                CreateError::InFlight { .. } => {
                    "a request with this `Idempotency-Key` is still running; `Retry-After`"
                }
                CreateError::Rejected { .. } => {
                    "IVPAY rejected the payment (its message; `id` is ours)"
                }
                CreateError::UpstreamUnauthorized => "IVPAY refused the service's own key",
                CreateError::UpstreamUnavailable { .. } => {
                    "IVPAY unreachable, nothing was sent; `Retry-After`"
                }
                CreateError::OutcomeUnknown { .. } => {
                    "IVPAY may or may not have created it; `id` is ours, the payment is kept"
                }
                CreateError::NotRecorded { .. } => {
                    "IVPAY answered but storage failed; `id` is ours, the payment is kept for recovery"
                }
                CreateError::Storage(_) => "storage failed",
                CreateError::Invariant(_) => {
                    "a rule the service keeps did not hold (a bug, logged); `id` is ours if one was recorded"
                }
            },
            Self::Query(QueryError::Contended { .. })
            | Self::Update(UpdateError::Contended { .. }) => {
                "the payment is being changed by many writers at once; `Retry-After`"
            }
            Self::Query(QueryError::Upstream(_)) => "asking IVPAY (refresh) failed",
            Self::Update(UpdateError::Upstream(_)) => "IVPAY could not confirm the notice",
            Self::Query(QueryError::Storage(_)) | Self::Update(UpdateError::Storage(_)) => {
                "storage failed; nothing was kept"
            }
            Self::Admin(e) => admin_meaning(e),
            Self::UnknownAccount(_) => {
                "the query names an IVPAY account that is not configured (`ivpay.accounts`), or none where there are several"
            }
            Self::Notify(e) => match e {
                NotifyError::NotFound { .. } => "no such endpoint or notification",
                NotifyError::Invalid { .. } => "a field is invalid; `field` names it",
                NotifyError::Exists(_) => "an endpoint with this id exists already",
                NotifyError::UnknownClient(_) => {
                    "the body names a client that is not configured (`clients` in the settings)"
                }
                NotifyError::Storage(_) => "storage failed",
            },
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
            | Self::Update(UpdateError::Contended { .. })
            | Self::Admin(AdminError::Contended(_)) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The message for the client. Server-side failures say only what the client can act
    /// on; their details go to the log.
    fn public_message(&self) -> String {
        match self {
            // Server-side, but the client can act on them: the text says what to do.
            Self::Timeout { .. }
            | Self::NotReady(_)
            | Self::Create(
                CreateError::OutcomeUnknown { .. }
                | CreateError::NotRecorded { .. }
                | CreateError::UpstreamUnavailable { .. }
                | CreateError::UpstreamUnauthorized,
            ) => self.to_string(),
            _ if self.status().is_server_error() => match self.code() {
                "upstream_unavailable" => "IVPAY is unavailable, try again later".to_owned(),
                "contended" => "the payment is busy, try again".to_owned(),
                _ => "internal error, try again later".to_owned(),
            },
            _ => self.to_string(),
        }
    }

    fn payment_id(&self) -> Option<InternalId> {
        match self {
            Self::Create(
                CreateError::OutcomeUnknown { id, .. }
                | CreateError::NotRecorded { id, .. }
                | CreateError::Rejected { id, .. },
            ) => Some(*id),
            _ => None,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } | Self::Notify(NotifyError::Invalid { field, .. }) => {
                Some(field)
            }
            Self::UnknownAccount(_) => Some("account"),
            _ => None,
        }
    }

    /// The body this error answers with.
    fn body(&self) -> ErrorBody {
        let mut body = ErrorBody::new(self.public_message(), self.code());
        body.field = self.field();
        body.id = self.payment_id().map(|id| id.to_string());
        body
    }
}

fn admin_status(e: &AdminError) -> StatusCode {
    match e {
        AdminError::NotFound(_) | AdminError::UpstreamNotFound(_) => StatusCode::NOT_FOUND,
        AdminError::NotOpen { .. }
        | AdminError::AlreadyLinked(_)
        | AdminError::ForeignIdMismatch { .. } => StatusCode::CONFLICT,
        AdminError::Upstream(_) => StatusCode::BAD_GATEWAY,
        AdminError::Contended(_) => StatusCode::SERVICE_UNAVAILABLE,
        AdminError::Storage(s) => storage_status(s),
    }
}

fn admin_code(e: &AdminError) -> &'static str {
    match e {
        AdminError::NotFound(_) | AdminError::UpstreamNotFound(_) => "not_found",
        AdminError::NotOpen { .. } => "outcome_settled",
        AdminError::AlreadyLinked(_) => "already_linked",
        AdminError::ForeignIdMismatch { .. } => "foreign_id_mismatch",
        AdminError::Upstream(_) => "upstream_unavailable",
        AdminError::Contended(_) => "contended",
        AdminError::Storage(_) => "storage_error",
    }
}

fn admin_meaning(e: &AdminError) -> &'static str {
    match e {
        AdminError::NotFound(_) => "no such payment",
        AdminError::UpstreamNotFound(_) => "IVPAY does not know that `payment_id`",
        AdminError::NotOpen { .. } => {
            "the payment's create outcome is settled (created, rejected or abandoned), not unknown or initiated"
        }
        AdminError::AlreadyLinked(_) => "that IVPAY payment is already linked to a payment",
        AdminError::ForeignIdMismatch { .. } => {
            "IVPAY's payment carries another foreign id than the one this payment sent"
        }
        AdminError::Upstream(_) => {
            "asking IVPAY to confirm the payment failed; nothing was written"
        }
        AdminError::Contended(_) => {
            "the payment changed while this was written (its create finished, a webhook linked it); nothing was written, look again"
        }
        AdminError::Storage(_) => "storage failed",
    }
}

/// The code of a create failure.
fn create_code(e: &CreateError) -> &'static str {
    match e {
        CreateError::IdempotencyMismatch => "idempotency_key_reused",
        CreateError::InFlight { .. } => "idempotency_key_in_flight",
        CreateError::Rejected { .. } => "rejected_by_ivpay",
        CreateError::UpstreamUnauthorized => "upstream_unauthorized",
        CreateError::UpstreamUnavailable { .. } => "upstream_unavailable",
        CreateError::OutcomeUnknown { .. } => "outcome_unknown",
        CreateError::NotRecorded { .. } => "not_recorded",
        CreateError::Storage(_) => "storage_error",
        CreateError::Invariant(_) => "internal_error",
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
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(wait) = self.retry_after() {
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Examples of the errors a part of a route can answer, for its OpenAPI `responses`.
pub(crate) mod samples {
    use super::*;

    /// Any route: the server's time limit.
    pub(crate) fn any_route() -> Vec<ApiError> {
        vec![ApiError::Timeout {
            limit: Duration::from_secs(30),
        }]
    }

    /// Storage failures: a corrupt record (500) or a database that does not answer (503).
    pub(crate) fn storage() -> [RepositoryError; 2] {
        [
            RepositoryError::Corrupt("sample".into()),
            RepositoryError::Unavailable(Box::new(std::io::Error::other("sample"))),
        ]
    }

    /// A sample id.
    pub(crate) fn internal_id() -> InternalId {
        InternalId::from_uuid(Default::default())
    }

    /// Every way a create can fail in the use case.
    pub(crate) fn create() -> Vec<ApiError> {
        let mut errors: Vec<ApiError> = vec![
            CreateError::IdempotencyMismatch.into(),
            CreateError::InFlight {
                retry_after: Duration::from_secs(1),
            }
            .into(),
            CreateError::Rejected {
                message: "sample".into(),
                id: internal_id(),
            }
            .into(),
            CreateError::UpstreamUnauthorized.into(),
            CreateError::UpstreamUnavailable {
                reason: "sample".into(),
                retry_after: None,
            }
            .into(),
            CreateError::OutcomeUnknown {
                id: internal_id(),
                reason: "sample".into(),
            }
            .into(),
            CreateError::NotRecorded {
                id: internal_id(),
                source: RepositoryError::Unavailable(Box::new(std::io::Error::other("sample"))),
            }
            .into(),
        ];
        errors.extend(storage().map(|s| CreateError::Storage(s).into()));
        errors.push(
            CreateError::Invariant(ivpay_ports::BrokenInvariant::MissingPayment(internal_id()))
                .into(),
        );
        errors
    }

    /// Every way a read can fail; `refresh` adds IVPAY's failure.
    pub(crate) fn query(refresh: bool) -> Vec<ApiError> {
        let mut errors: Vec<ApiError> =
            vec![QueryError::NotFound(ivpay_ports::PaymentRef::Internal(internal_id())).into()];
        if refresh {
            errors.push(QueryError::Upstream(GatewayError::Unauthorized).into());
            errors.push(
                QueryError::Contended {
                    id: internal_id(),
                    attempts: 1,
                }
                .into(),
            );
        }
        errors.extend(storage().map(|s| QueryError::Storage(s).into()));
        errors
    }

    /// Every way a notification operation can fail in the use case: `found` adds a missing
    /// endpoint or notification, `fields` the invalid ones, `exists` a taken endpoint id.
    pub(crate) fn notify(found: bool, fields: &[&'static str], exists: bool) -> Vec<ApiError> {
        let mut errors: Vec<ApiError> = Vec::new();
        if found {
            errors.push(
                NotifyError::NotFound {
                    what: "endpoint",
                    id: "sample".into(),
                }
                .into(),
            );
        }
        errors.extend(fields.iter().map(|field| {
            ApiError::from(NotifyError::Invalid {
                field,
                reason: String::new(),
            })
        }));
        if exists {
            errors.push(NotifyError::Exists("sample".parse().expect("a valid endpoint id")).into());
            errors.push(
                NotifyError::UnknownClient("sample".parse().expect("a valid client id")).into(),
            );
        }
        errors.extend(storage().map(|s| NotifyError::Storage(s).into()));
        errors
    }

    /// Every way an operator's link (`link`) or abandon can fail in the use case.
    pub(crate) fn admin(link: bool) -> Vec<ApiError> {
        let pid: ivpay_domain::PaymentId = "sample".parse().expect("a valid IVPAY id");
        let mut errors: Vec<ApiError> = vec![
            AdminError::NotFound(internal_id()).into(),
            AdminError::NotOpen {
                id: internal_id(),
                outcome: "created",
            }
            .into(),
            AdminError::Contended(internal_id()).into(),
        ];
        if link {
            errors.push(AdminError::UpstreamNotFound(pid.clone()).into());
            errors.push(AdminError::AlreadyLinked(pid.clone()).into());
            errors.push(
                AdminError::ForeignIdMismatch {
                    payment_id: pid,
                    expected: "sample".into(),
                    found: None,
                }
                .into(),
            );
            errors.push(AdminError::Upstream(GatewayError::Unauthorized).into());
        }
        errors.extend(storage().map(|s| AdminError::Storage(s).into()));
        errors
    }

    /// Every error of the whole API, one per code.
    #[cfg(test)]
    pub(crate) fn all() -> Vec<ApiError> {
        let mut errors = vec![
            ApiError::invalid("limit", "sample"),
            ApiError::MalformedBody("sample".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden { scope: "read" },
            ApiError::NotFound("sample"),
            ApiError::MethodNotAllowed,
            ApiError::TooLarge { limit: 1 },
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            ApiError::UnsupportedMediaType,
            ApiError::UnknownAccount("sample".into()),
            ApiError::NotReady(QueryError::Storage(RepositoryError::Corrupt(
                "sample".into(),
            ))),
            ApiError::Update(UpdateError::Upstream(GatewayError::Unauthorized)),
            ApiError::Update(UpdateError::Contended {
                id: internal_id(),
                attempts: 1,
            }),
        ];
        errors.extend(any_route());
        errors.extend(create());
        errors.extend(query(true));
        errors.extend(admin(true));
        errors.extend(notify(true, &["secret"], true));
        errors
    }
}

/// The OpenAPI responses for `errors`: one per status, its description listing each code
/// with its meaning, the [`ErrorBody`] schema, and `Retry-After` where one of them sets it.
pub(crate) fn responses(errors: &[ApiError]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    let mut by_status: BTreeMap<u16, Vec<&ApiError>> = BTreeMap::new();
    for e in errors {
        by_status.entry(e.status().as_u16()).or_default().push(e);
    }
    by_status
        .into_iter()
        .map(|(status, errors)| {
            let mut lines: Vec<String> = errors
                .iter()
                .map(|e| format!("`{}`: {}", e.code(), e.meaning()))
                .collect();
            lines.dedup();
            let mut response = ResponseBuilder::new()
                .description(lines.join("; "))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                );
            if errors.iter().any(|e| e.retry_after().is_some()) {
                response = response.header(
                    "Retry-After",
                    utoipa::openapi::header::HeaderBuilder::new()
                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                            utoipa::openapi::schema::Type::Integer,
                        )))
                        .description(Some("seconds to wait before trying again"))
                        .build(),
                );
            }
            (status.to_string(), response.build().into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_produced_by_some_error() {
        let produced: std::collections::BTreeSet<_> =
            samples::all().iter().map(ApiError::code).collect();
        let listed: std::collections::BTreeSet<_> = ApiError::CODES.into_iter().collect();
        assert_eq!(listed.len(), ApiError::CODES.len(), "no code listed twice");
        assert_eq!(produced, listed);
    }

    #[test]
    fn a_field_error_keeps_its_field_in_the_body() {
        let e: ApiError = ivpay_domain::Money::parse("1.123", "USD")
            .expect_err("too many decimals")
            .into();
        let body = e.body();
        assert_eq!(body.field, Some("amount_fiat"));
        assert_eq!(body.error, "amount_fiat: 3 decimals, USD allows 2");
        assert_eq!(body.code, "invalid_request");
    }

    #[test]
    fn server_failures_hide_their_details() {
        let e: ApiError = QueryError::Storage(RepositoryError::Corrupt("row 7".into())).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.body().error.contains("row 7"));
    }

    #[test]
    fn documented_responses_group_codes_by_status_and_announce_retry_after() {
        let docs = responses(&samples::create());
        let RefOr::T(conflict) = &docs["409"] else {
            panic!("inline response")
        };
        assert!(conflict.description.contains("idempotency_key_in_flight"));
        assert!(conflict.headers.contains_key("Retry-After"));
        let RefOr::T(server) = &docs["500"] else {
            panic!("inline response")
        };
        assert!(!server.headers.contains_key("Retry-After"));
    }
}
