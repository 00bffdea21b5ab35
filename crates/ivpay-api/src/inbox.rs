//! The operator's view of IVPAY's webhooks: `GET /admin/webhooks/inbox` (what waits for
//! IVPAY's confirmation), `POST /admin/webhooks/replay` (a raw webhook, as IVPAY would
//! post it) and `POST /admin/payments/{id}/replay` (every webhook body stored with a
//! payment's history). A replay goes through the webhook route's own parser and use case:
//! it is a hint like any other, confirmed with IVPAY's `GET` before anything is applied,
//! so replaying is always safe.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use ivpay_domain::{AccountId, UpdateSource};
use ivpay_ports::{InboxEntry, PaymentRef, QueryError, RepositoryError, UpdateError};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::admin::AdminPath;
use crate::auth::Operator;
use crate::envelope::Envelope;
use crate::error::{ApiError, samples};
use crate::json::RawBody;
use crate::keys::Scope;
use crate::state::AppState;
use crate::webhook::{WebhookAck, hint_of, receipt_name};

/// `?limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InboxQuery {
    /// At most this many, oldest first.
    #[param(schema_with = crate::schema::page_size)]
    limit: Option<String>,
}

/// A webhook waiting for IVPAY's confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InboxView {
    /// Our id of this delivery.
    #[schema(format = "uuid")]
    id: String,
    /// The IVPAY account whose key it echoed.
    account: String,
    /// The payment it names (IVPAY's id).
    payment_id: String,
    /// The status it claims, if any.
    claimed_status: Option<String>,
    /// When it arrived (Unix seconds).
    received_at: i64,
    /// Confirmations tried so far.
    attempts: u32,
    /// When it is tried next (Unix seconds).
    next_attempt_at: i64,
    /// The body, verbatim.
    body: String,
}

impl InboxView {
    fn of(entry: &InboxEntry) -> Self {
        let w = &entry.webhook;
        Self {
            id: w.id.to_string(),
            account: w.hint.account.to_string(),
            payment_id: w.hint.payment_id.to_string(),
            claimed_status: w.hint.status.as_ref().map(ToString::to_string),
            received_at: w.received_at.unix_seconds(),
            attempts: w.attempts,
            next_attempt_at: entry.next_attempt_at.unix_seconds(),
            body: w.hint.raw.clone(),
        }
    }
}

/// The errors every route here answers before its use case runs.
fn common_errors() -> Vec<ApiError> {
    let mut errors = crate::auth::errors(Scope::Admin);
    errors.push(ApiError::NotFound(crate::auth::ADMIN_OFF));
    errors.extend(samples::any_route());
    errors
}

/// Every answer of `GET /admin/webhooks/inbox` but 200.
pub(crate) struct InboxErrors;

impl IntoResponses for InboxErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = common_errors();
        errors.push(ApiError::invalid("limit", ""));
        errors.extend(samples::storage().map(|s| QueryError::Storage(s).into()));
        crate::error::responses(&errors)
    }
}

/// The webhooks waiting for IVPAY's confirmation, oldest first. One that stays here long
/// means IVPAY cannot confirm it (see its attempts), or names a payment we hold no row for.
#[utoipa::path(
    get, path = "/admin/webhooks/inbox", tag = "admin",
    params(InboxQuery),
    responses((status = 200, body = Envelope<Vec<InboxView>>), InboxErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn inbox(
    State(state): State<AppState>,
    Operator(_): Operator,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Envelope<Vec<InboxView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = crate::listing::page_size(q.limit.as_deref())?;
    let entries = state.use_cases.webhook_inbox(limit).await?;
    Ok(Envelope::new(entries.iter().map(InboxView::of).collect()))
}

/// `?account=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReplayQuery {
    /// The IVPAY account the webhook came to; may be left out when there is one.
    #[param(schema_with = crate::schema::client_id)]
    account: Option<String>,
}

/// The account a raw replay is for: the one named, or the only one there is.
fn account_of(state: &AppState, named: Option<&str>) -> Result<AccountId, ApiError> {
    let accounts = state.webhook_keys.accounts();
    let known = || {
        accounts
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match named {
        Some(name) => accounts
            .iter()
            .find(|a| a.as_str() == name)
            .map(|a| (*a).clone())
            .ok_or_else(|| {
                ApiError::UnknownAccount(format!("no such account (known: {})", known()))
            }),
        None => match accounts.as_slice() {
            [only] => Ok((*only).clone()),
            _ => Err(ApiError::UnknownAccount(format!(
                "required: this service has several accounts ({})",
                known()
            ))),
        },
    }
}

/// Every answer of `POST /admin/webhooks/replay` but 200.
pub(crate) struct ReplayErrors;

impl IntoResponses for ReplayErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = common_errors();
        errors.push(ApiError::UnknownAccount(String::new()));
        errors.push(ApiError::MalformedBody(String::new()));
        errors.push(ApiError::TooLarge { limit: 0 });
        errors.push(ApiError::invalid("payment_id", ""));
        errors.extend(samples::storage().map(|s: RepositoryError| UpdateError::Storage(s).into()));
        crate::error::responses(&errors)
    }
}

/// Replays a raw webhook, the body exactly as IVPAY posts it to `/webhooks/ivpay`, through
/// the same parser and use case (without IVPAY's key: the operator's stands for it).
#[utoipa::path(
    post, path = "/admin/webhooks/replay", tag = "admin",
    params(ReplayQuery),
    request_body(content = crate::webhook::WebhookBody, description = "the webhook's body as IVPAY sent it"),
    responses((status = 200, body = Envelope<WebhookAck>), ReplayErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Operator(operator): Operator,
    query: Result<Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
    RawBody(raw): RawBody,
) -> Result<Envelope<WebhookAck>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let account = account_of(&state, q.account.as_deref())?;
    let hint = hint_of(account, &raw)?;
    tracing::info!(%operator, payment_id = %hint.payment_id, "operator replays a webhook");
    let receipt = state.use_cases.receive_webhook(hint).await?;
    let outcome = receipt_name(receipt);
    metrics::counter!("ivpay_webhook_replays_total", "outcome" => outcome).increment(1);
    Ok(Envelope::new(WebhookAck { outcome }))
}

/// What replaying a payment's stored webhooks did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoredReplay {
    /// Our id of the payment.
    #[schema(format = "uuid")]
    id: String,
    /// Distinct webhook bodies replayed, in the order they first arrived.
    replayed: usize,
    /// What became of each (`queued` or `duplicate`, as the webhook route answers).
    outcomes: Vec<&'static str>,
}

/// Every answer of `POST /admin/payments/{id}/replay` but 200.
pub(crate) struct StoredReplayErrors;

impl IntoResponses for StoredReplayErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = common_errors();
        errors.push(ApiError::invalid("id", ""));
        errors.push(QueryError::NotFound(PaymentRef::Internal(samples::internal_id())).into());
        errors.extend(samples::storage().map(|s: RepositoryError| UpdateError::Storage(s).into()));
        crate::error::responses(&errors)
    }
}

/// Replays every distinct webhook body stored with a payment's history (the evidence of its
/// `webhook` events), oldest first, through the webhook route's parser and use case.
#[utoipa::path(
    post, path = "/admin/payments/{id}/replay", tag = "admin",
    params(AdminPath),
    responses((status = 200, body = Envelope<StoredReplay>), StoredReplayErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn replay_stored(
    State(state): State<AppState>,
    Operator(operator): Operator,
    AdminPath(id): AdminPath,
) -> Result<Envelope<StoredReplay>, ApiError> {
    let (payment, events) = state
        .use_cases
        .payment_history(PaymentRef::Internal(id))
        .await?;
    // Each distinct body once: a replay records events of its own, which must not make
    // the next replay longer.
    let mut bodies: Vec<&str> = Vec::new();
    for body in events
        .iter()
        .filter(|e| e.source == UpdateSource::Webhook)
        .filter_map(|e| e.evidence.as_ref()?.webhook())
    {
        if !bodies.contains(&body) {
            bodies.push(body);
        }
    }
    tracing::info!(%operator, %id, webhooks = bodies.len(), "operator replays stored webhooks");
    let mut outcomes = Vec::with_capacity(bodies.len());
    for body in bodies {
        // A body stored once parsed; one that no longer does is skipped, not fatal.
        let Ok(hint) = hint_of(payment.account().clone(), body.as_bytes()) else {
            outcomes.push("unreadable");
            continue;
        };
        let outcome = receipt_name(state.use_cases.receive_webhook(hint).await?);
        metrics::counter!("ivpay_webhook_replays_total", "outcome" => outcome).increment(1);
        outcomes.push(outcome);
    }
    Ok(Envelope::new(StoredReplay {
        id: id.to_string(),
        replayed: outcomes.len(),
        outcomes,
    }))
}
