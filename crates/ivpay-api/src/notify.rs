//! `/admin/endpoints` and `/admin/notifications`: an operator manages the endpoints that
//! hear about their client's payments (add, list, disable, enable, rotate the secret,
//! recover what failed), and reads and replays the delivery log. Admin scope; without
//! notifications wired in, the routes answer 404.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use ivpay_domain::{ClientId, Endpoint, EndpointId, InternalId, NoticeFilter, Timestamp};
use ivpay_ports::{
    DeliveryAttempt, DeliveryState, EndpointWithSecret, NewEndpoint, Notification,
    NotificationFilter, NotificationUseCases,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::auth::Operator;
use crate::envelope::Envelope;
use crate::error::{ApiError, samples};
use crate::json::Json;
use crate::keys::Scope;
use crate::state::AppState;

/// Why the routes answer 404 when notifications are not wired in.
pub(crate) const NOTIFY_OFF: &str = "notifications are not enabled";

fn use_cases(state: &AppState) -> Result<&Arc<dyn NotificationUseCases>, ApiError> {
    state
        .notifications
        .as_ref()
        .ok_or(ApiError::NotFound(NOTIFY_OFF))
}

/// The `{id}` of an endpoint route.
pub(crate) struct EndpointPath(EndpointId);

impl FromRequestParts<AppState> for EndpointPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        text.parse::<EndpointId>()
            .map(Self)
            .map_err(|e| ApiError::invalid("id", e.to_string()))
    }
}

crate::schema::documents_parameter!(EndpointPath, "id", Path, true, crate::schema::endpoint_id);

/// The `{id}` of a notification route.
pub(crate) struct NotificationPath(InternalId);

impl FromRequestParts<AppState> for NotificationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        text.parse::<InternalId>()
            .map(Self)
            .map_err(|_| ApiError::invalid("id", "expected a notification id, a hyphenated UUID"))
    }
}

crate::schema::documents_parameter!(
    NotificationPath,
    "id",
    Path,
    true,
    crate::schema::notification_id
);

/// An endpoint as the admin routes show it: never its secrets, only how many it holds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointView {
    /// Its id.
    id: String,
    /// The client whose payments it hears about.
    client: String,
    /// Where notices are posted.
    url: String,
    /// The types it wants; empty for every type.
    #[schema(example = json!(["payment.paid", "payment.timeout"]))]
    events: Vec<&'static str>,
    /// A note for people.
    description: Option<String>,
    /// Whether notices are sent to it.
    enabled: bool,
    /// Why it was disabled: `operator`, `gone` (it answered 410) or `failing`.
    disabled_reason: Option<String>,
    /// When it was disabled (Unix seconds).
    disabled_at: Option<i64>,
    /// Since when every attempt to it has failed (Unix seconds), while that lasts.
    failing_since: Option<i64>,
    /// How many signing secrets sign each notice (2 during a rotation).
    secrets: usize,
    /// When it was added (Unix seconds).
    created_at: i64,
    /// When it last changed (Unix seconds).
    updated_at: i64,
}

impl EndpointView {
    fn of(e: &Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            client: e.client.to_string(),
            url: e.url.to_string(),
            events: e.filter.types().into_iter().map(|t| t.as_str()).collect(),
            description: e.description.clone(),
            enabled: e.is_enabled(),
            disabled_reason: e.disabled.as_ref().map(|d| d.reason.clone()),
            disabled_at: e.disabled.as_ref().map(|d| d.at.unix_seconds()),
            failing_since: e.failing_since.map(Timestamp::unix_seconds),
            secrets: e.secrets.len(),
            created_at: e.created_at.unix_seconds(),
            updated_at: e.updated_at.unix_seconds(),
        }
    }
}

/// An endpoint with the secret it now signs with: shown once, when it is added or its
/// secret rotated.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointSecretView {
    /// The endpoint.
    #[serde(flatten)]
    endpoint: EndpointView,
    /// The signing secret (`whsec_...`): keep it, it is not shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

impl EndpointSecretView {
    fn of(e: &EndpointWithSecret) -> Self {
        Self {
            endpoint: EndpointView::of(&e.endpoint),
            secret: e.secret.clone(),
        }
    }
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct NewEndpointBody {
    /// The client whose payments it hears about (a configured client).
    #[schema(schema_with = crate::schema::client_id)]
    client: String,
    /// Where notices are posted: an absolute http(s) URL.
    #[schema(schema_with = crate::schema::endpoint_url)]
    url: String,
    /// The types it wants (`payment.created`, `payment.pending`, `payment.paid`,
    /// `payment.timeout`, `payment.unknown`, `payment.linked`, `payment.rejected`,
    /// `payment.abandoned`); absent or empty for every type.
    #[serde(default)]
    #[schema(schema_with = event_list)]
    events: Option<Vec<String>>,
    /// A note for people, at most 512 characters.
    #[serde(default)]
    #[schema(max_length = 512)]
    description: Option<String>,
    /// Its signing secret (`whsec_` and base64 of 24 to 64 bytes); absent to make one.
    #[serde(default)]
    #[schema(schema_with = crate::schema::signing_secret)]
    secret: Option<String>,
    /// Its id (`A-Z a-z 0-9 _ -`, up to 64); absent to make one.
    #[serde(default)]
    #[schema(schema_with = optional_endpoint_id)]
    id: Option<String>,
}

const DESCRIPTION_MAX: usize = 512;

fn event_list() -> utoipa::openapi::schema::Array {
    let mut list = utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema::notice_type())
        .build();
    list.schema_type = [
        utoipa::openapi::schema::Type::Array,
        utoipa::openapi::schema::Type::Null,
    ]
    .into_iter()
    .collect();
    list
}

fn optional_endpoint_id() -> utoipa::openapi::schema::Object {
    let mut id = crate::schema::endpoint_id();
    id.schema_type = [
        utoipa::openapi::schema::Type::String,
        utoipa::openapi::schema::Type::Null,
    ]
    .into_iter()
    .collect();
    id
}

/// Unix seconds as a JSON number: an integer, or a float with no fraction (`5.0`), which
/// JSON Schema counts as an integer too.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
        .filter(|n| u64::try_from(*n).is_ok_and(|n| n <= crate::schema::LARGEST_INTEGER_ID))
        .ok_or_else(|| serde::de::Error::custom("expected whole Unix seconds, 0 to 2^53"))
}

impl NewEndpointBody {
    fn into_new(self) -> Result<NewEndpoint, ApiError> {
        let client: ClientId = self
            .client
            .parse()
            .map_err(|e: ivpay_domain::IdError| ApiError::invalid("client", e.to_string()))?;
        let url = self
            .url
            .parse()
            .map_err(|e: ivpay_domain::UrlError| ApiError::invalid("url", e.to_string()))?;
        let filter = match self.events {
            None => NoticeFilter::all(),
            Some(names) => names
                .iter()
                .map(|n| n.parse())
                .collect::<Result<Vec<_>, _>>()
                .map(NoticeFilter::of)
                .map_err(|e| ApiError::invalid("events", e.to_string()))?,
        };
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > DESCRIPTION_MAX)
        {
            return Err(ApiError::invalid(
                "description",
                format!("must be at most {DESCRIPTION_MAX} characters"),
            ));
        }
        let id = self
            .id
            .map(|t| t.parse::<EndpointId>())
            .transpose()
            .map_err(|e| ApiError::invalid("id", e.to_string()))?;
        Ok(NewEndpoint {
            id,
            client,
            url,
            filter,
            description: self.description,
            secret: self.secret,
        })
    }
}

/// A rotation (`{}` for the defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct RotateBody {
    /// Keep signing with the newest previous secret beside the new one, so receivers can
    /// switch over (default `true`); `false` drops every previous secret at once.
    #[serde(default)]
    keep_previous: Option<bool>,
}

/// A recovery.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct RecoverBody {
    /// Send again what failed since this time (Unix seconds).
    #[serde(deserialize_with = "whole_seconds")]
    #[schema(schema_with = crate::schema::non_negative_seconds, example = 1_764_892_800)]
    since: i64,
}

/// How many notifications a recovery sent again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecoveredView {
    /// Made pending again, due now.
    resent: u64,
}

/// Filter of the endpoint listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EndpointQuery {
    /// Only this client's endpoints.
    #[param(schema_with = crate::schema::client_id)]
    client: Option<String>,
}

/// Filters and paging of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct NotificationQuery {
    /// Of this client's payments.
    #[param(schema_with = crate::schema::client_id)]
    client: Option<String>,
    /// To this endpoint.
    #[param(schema_with = crate::schema::endpoint_id)]
    endpoint: Option<String>,
    /// About this payment (our id).
    #[param(schema_with = crate::schema::internal_id)]
    payment: Option<String>,
    /// In this state: `pending`, `delivered`, `failed` or `skipped`.
    #[param(schema_with = crate::schema::delivery_state)]
    state: Option<String>,
    /// Older than this notification (the last id of the previous page).
    #[param(schema_with = crate::schema::notification_id)]
    before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(schema_with = crate::schema::page_size)]
    limit: Option<String>,
}

impl NotificationQuery {
    fn filter(&self) -> Result<NotificationFilter, ApiError> {
        let id = |field: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(str::parse::<InternalId>)
                .transpose()
                .map_err(|_| ApiError::invalid(field, "expected a hyphenated UUID"))
        };
        Ok(NotificationFilter {
            client: self
                .client
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: ivpay_domain::IdError| ApiError::invalid("client", e.to_string()))?,
            endpoint: self
                .endpoint
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: ivpay_domain::IdError| ApiError::invalid("endpoint", e.to_string()))?,
            payment: id("payment", &self.payment)?,
            state: self
                .state
                .as_deref()
                .map(|s| {
                    DeliveryState::parse(s).ok_or_else(|| {
                        ApiError::invalid("state", "expected pending, delivered, failed or skipped")
                    })
                })
                .transpose()?,
            before: id("before", &self.before)?,
        })
    }

    fn limit(&self) -> Result<u32, ApiError> {
        crate::listing::page_size(self.limit.as_deref())
    }
}

/// One notice to one endpoint, and where its delivery stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationView {
    /// Its id.
    id: String,
    /// The `webhook-id` it is sent with (the same for every endpoint and attempt).
    message_id: String,
    /// The endpoint.
    endpoint: String,
    /// The payment's owner.
    client: String,
    /// The payment (our id).
    payment: String,
    /// `payment.<what>`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The payment's version after the change.
    sequence: u64,
    /// `pending`, `delivered`, `failed` or `skipped`.
    state: &'static str,
    /// Attempts so far.
    attempts: u32,
    /// When the next attempt is due (pending only; Unix seconds).
    next_attempt_at: Option<i64>,
    /// The last answer's HTTP status.
    last_status: Option<u16>,
    /// The last failure, in words.
    last_error: Option<String>,
    /// When the endpoint took it (Unix seconds).
    delivered_at: Option<i64>,
    /// When it was written (Unix seconds).
    created_at: i64,
    /// The body, as sent.
    #[schema(schema_with = crate::schema::any)]
    body: Value,
}

impl NotificationView {
    fn of(n: &Notification) -> Self {
        Self {
            id: n.id.to_string(),
            message_id: n.message_id.clone(),
            endpoint: n.endpoint.to_string(),
            client: n.client.to_string(),
            payment: n.payment.to_string(),
            kind: n.kind.as_str(),
            sequence: n.sequence,
            state: n.state.as_str(),
            attempts: n.attempts,
            next_attempt_at: n.next_attempt_at.map(Timestamp::unix_seconds),
            last_status: n.last_status,
            last_error: n.last_error.clone(),
            delivered_at: n.delivered_at.map(Timestamp::unix_seconds),
            created_at: n.created_at.unix_seconds(),
            body: serde_json::from_str(&n.body).unwrap_or(Value::String(n.body.clone())),
        }
    }
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    /// 1 for the first.
    number: u32,
    /// When it started (Unix seconds).
    at: i64,
    /// The endpoint's HTTP status, if it answered.
    status: Option<u16>,
    /// How long it took.
    latency_ms: u64,
    /// The start of the answer's body.
    excerpt: Option<String>,
    /// What went wrong when there was no answer.
    error: Option<String>,
}

impl AttemptView {
    fn of(a: &DeliveryAttempt) -> Self {
        Self {
            number: a.number,
            at: a.at.unix_seconds(),
            status: a.status,
            latency_ms: a.latency_ms,
            excerpt: a.excerpt.clone(),
            error: a.error.clone(),
        }
    }
}

/// A notification with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationDetail {
    /// The notification.
    #[serde(flatten)]
    notification: NotificationView,
    /// Its attempts, first first.
    attempt_log: Vec<AttemptView>,
}

/// A page of the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationPage {
    /// Newest first.
    items: Vec<NotificationView>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<String>,
}

/// The errors every route here answers before its use case runs.
fn common_errors(path: bool) -> Vec<ApiError> {
    let mut errors = crate::auth::errors(Scope::Admin);
    errors.push(ApiError::NotFound(crate::auth::ADMIN_OFF));
    errors.push(ApiError::NotFound(NOTIFY_OFF));
    if path {
        errors.push(ApiError::invalid("id", ""));
    }
    errors.extend(samples::any_route());
    errors
}

macro_rules! error_list {
    ($name:ident, $path:expr, $extra:expr) => {
        /// Every answer of the route but 200.
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                let mut errors = common_errors($path);
                let extra: Vec<ApiError> = $extra;
                errors.extend(extra);
                crate::error::responses(&errors)
            }
        }
    };
}

error_list!(AddErrors, false, {
    let mut e = Json::<NewEndpointBody>::errors();
    for field in ["client", "url", "events", "description", "id"] {
        e.push(ApiError::invalid(field, ""));
    }
    e.extend(samples::notify(false, &["secret"], true));
    e
});
error_list!(ListEndpointErrors, false, {
    let mut e = vec![
        ApiError::invalid("query", ""),
        ApiError::invalid("client", ""),
    ];
    e.extend(samples::notify(false, &[], false));
    e
});
error_list!(EndpointErrors, true, samples::notify(true, &[], false));
error_list!(RotateErrors, true, {
    let mut e = Json::<RotateBody>::errors();
    e.extend(samples::notify(true, &[], false));
    e
});
error_list!(RecoverErrors, true, {
    let mut e = Json::<RecoverBody>::errors();
    e.extend(samples::notify(true, &[], false));
    e
});
error_list!(LogErrors, false, {
    let mut e = vec![ApiError::invalid("query", "")];
    for field in ["client", "endpoint", "payment", "state", "before", "limit"] {
        e.push(ApiError::invalid(field, ""));
    }
    e.extend(samples::notify(false, &[], false));
    e
});
error_list!(NotificationErrors, true, samples::notify(true, &[], false));

/// Adds an endpoint for a client; the answer holds its signing secret, shown this once.
#[utoipa::path(
    post, path = "/admin/endpoints", tag = "notifications",
    request_body = NewEndpointBody,
    responses((status = 200, body = Envelope<EndpointSecretView>), AddErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn add_endpoint(
    State(state): State<AppState>,
    Operator(operator): Operator,
    Json(body): Json<NewEndpointBody>,
) -> Result<Envelope<EndpointSecretView>, ApiError> {
    let notify = use_cases(&state)?;
    let new = body.into_new()?;
    if !state.clients.knows(&new.client) {
        return Err(ivpay_ports::NotifyError::UnknownClient(new.client).into());
    }
    tracing::info!(%operator, client = %new.client, host = %new.url.host(), "operator adds an endpoint");
    let added = notify.add_endpoint(new).await?;
    Ok(Envelope::new(EndpointSecretView::of(&added)))
}

/// Every endpoint, or one client's, oldest first.
#[utoipa::path(
    get, path = "/admin/endpoints", tag = "notifications",
    params(EndpointQuery),
    responses((status = 200, body = Envelope<Vec<EndpointView>>), ListEndpointErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn list_endpoints(
    State(state): State<AppState>,
    Operator(_): Operator,
    query: Result<Query<EndpointQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Envelope<Vec<EndpointView>>, ApiError> {
    let notify = use_cases(&state)?;
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let client = q
        .client
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: ivpay_domain::IdError| ApiError::invalid("client", e.to_string()))?;
    let endpoints = notify.endpoints(client).await?;
    Ok(Envelope::new(
        endpoints.iter().map(EndpointView::of).collect(),
    ))
}

/// One endpoint.
#[utoipa::path(
    get, path = "/admin/endpoints/{id}", tag = "notifications",
    params(EndpointPath),
    responses((status = 200, body = Envelope<EndpointView>), EndpointErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn get_endpoint(
    State(state): State<AppState>,
    Operator(_): Operator,
    EndpointPath(id): EndpointPath,
) -> Result<Envelope<EndpointView>, ApiError> {
    let endpoint = use_cases(&state)?.endpoint(id).await?;
    Ok(Envelope::new(EndpointView::of(&endpoint)))
}

/// Stops sending to an endpoint (its notices are kept as *skipped*; a recovery sends them
/// once it is enabled again).
#[utoipa::path(
    post, path = "/admin/endpoints/{id}/disable", tag = "notifications",
    params(EndpointPath),
    responses((status = 200, body = Envelope<EndpointView>), EndpointErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn disable_endpoint(
    State(state): State<AppState>,
    Operator(operator): Operator,
    EndpointPath(id): EndpointPath,
) -> Result<Envelope<EndpointView>, ApiError> {
    switch(&state, &operator, id, false).await
}

/// Sends to an endpoint again (after an operator, a 410 or a failing streak disabled it).
#[utoipa::path(
    post, path = "/admin/endpoints/{id}/enable", tag = "notifications",
    params(EndpointPath),
    responses((status = 200, body = Envelope<EndpointView>), EndpointErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn enable_endpoint(
    State(state): State<AppState>,
    Operator(operator): Operator,
    EndpointPath(id): EndpointPath,
) -> Result<Envelope<EndpointView>, ApiError> {
    switch(&state, &operator, id, true).await
}

/// An operator's disable or enable.
async fn switch(
    state: &AppState,
    operator: &ClientId,
    id: EndpointId,
    enabled: bool,
) -> Result<Envelope<EndpointView>, ApiError> {
    tracing::info!(%operator, endpoint = %id, enabled, "operator switches an endpoint");
    let endpoint = use_cases(state)?.set_enabled(id, enabled).await?;
    Ok(Envelope::new(EndpointView::of(&endpoint)))
}

/// Makes a new signing secret, shown this once. By default the previous one keeps
/// signing beside it until the next rotation, so receivers can switch without a gap.
#[utoipa::path(
    post, path = "/admin/endpoints/{id}/rotate", tag = "notifications",
    params(EndpointPath),
    request_body = RotateBody,
    responses((status = 200, body = Envelope<EndpointSecretView>), RotateErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Operator(operator): Operator,
    EndpointPath(id): EndpointPath,
    Json(body): Json<RotateBody>,
) -> Result<Envelope<EndpointSecretView>, ApiError> {
    let keep_previous = body.keep_previous.unwrap_or(true);
    tracing::info!(%operator, endpoint = %id, keep_previous, "operator rotates an endpoint's secret");
    let rotated = use_cases(&state)?.rotate_secret(id, keep_previous).await?;
    Ok(Envelope::new(EndpointSecretView::of(&rotated)))
}

/// Sends again every notification to the endpoint that failed (or was skipped) since a
/// time, as Svix's recover does.
#[utoipa::path(
    post, path = "/admin/endpoints/{id}/recover", tag = "notifications",
    params(EndpointPath),
    request_body = RecoverBody,
    responses((status = 200, body = Envelope<RecoveredView>), RecoverErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn recover(
    State(state): State<AppState>,
    Operator(operator): Operator,
    EndpointPath(id): EndpointPath,
    Json(body): Json<RecoverBody>,
) -> Result<Envelope<RecoveredView>, ApiError> {
    tracing::info!(%operator, endpoint = %id, since = body.since, "operator recovers failed notifications");
    let resent = use_cases(&state)?
        .recover(id, Timestamp::from_unix_seconds(body.since))
        .await?;
    Ok(Envelope::new(RecoveredView { resent }))
}

/// The delivery log, newest first, with filters.
#[utoipa::path(
    get, path = "/admin/notifications", tag = "notifications",
    params(NotificationQuery),
    responses((status = 200, body = Envelope<NotificationPage>), LogErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    Operator(_): Operator,
    query: Result<Query<NotificationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Envelope<NotificationPage>, ApiError> {
    let notify = use_cases(&state)?;
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = q.limit()?;
    // One more than asked says whether there is a next page.
    let mut items = notify.notifications(q.filter()?, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_before = items.last().filter(|_| more).map(|n| n.id.to_string());
    Ok(Envelope::new(NotificationPage {
        items: items.iter().map(NotificationView::of).collect(),
        next_before,
    }))
}

/// One notification with its attempts.
#[utoipa::path(
    get, path = "/admin/notifications/{id}", tag = "notifications",
    params(NotificationPath),
    responses((status = 200, body = Envelope<NotificationDetail>), NotificationErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn get_notification(
    State(state): State<AppState>,
    Operator(_): Operator,
    NotificationPath(id): NotificationPath,
) -> Result<Envelope<NotificationDetail>, ApiError> {
    let (n, attempts) = use_cases(&state)?.notification(id).await?;
    Ok(Envelope::new(NotificationDetail {
        notification: NotificationView::of(&n),
        attempt_log: attempts.iter().map(AttemptView::of).collect(),
    }))
}

/// Sends a notification again now, whatever became of it (in a new round of the retry
/// schedule if it fails).
#[utoipa::path(
    post, path = "/admin/notifications/{id}/redeliver", tag = "notifications",
    params(NotificationPath),
    responses((status = 200, body = Envelope<NotificationView>), NotificationErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Operator(operator): Operator,
    NotificationPath(id): NotificationPath,
) -> Result<Envelope<NotificationView>, ApiError> {
    tracing::info!(%operator, notification = %id, "operator redelivers a notification");
    let n = use_cases(&state)?.redeliver(id).await?;
    Ok(Envelope::new(NotificationView::of(&n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_whole_seconds_within_the_documented_range() {
        let since = |body: &str| serde_json::from_str::<RecoverBody>(body).map(|b| b.since);
        assert_eq!(since(r#"{"since": 0}"#).ok(), Some(0));
        assert_eq!(since(r#"{"since": 5.0}"#).ok(), Some(5));
        assert_eq!(since(r#"{"since": 9007199254740992}"#).ok(), Some(1 << 53));
        for bad in ["-1", "9007199254740993", "1.5", "\"1\""] {
            assert!(since(&format!(r#"{{"since": {bad}}}"#)).is_err(), "{bad}");
        }
    }
}
