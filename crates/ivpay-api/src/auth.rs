//! The checks in front of the handlers: [`CanCreate`], [`CanRead`] and [`Operator`] for
//! our clients' keys (key, scope, rate limit), [`IvpayNotifier`] for IVPAY's webhooks
//! (the echoed key of one of the merchant's accounts).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ivpay_domain::{AccountId, ClientId};

use crate::error::ApiError;
use crate::keys::Scope;
use crate::state::AppState;

/// Said when no key has the `admin` scope: the admin routes are not there.
pub(crate) const ADMIN_OFF: &str = "not found (no key with the admin scope is configured)";

/// The client whose `X-API-KEY` is known, carries `scope`, and is within its rate limit.
/// An unknown key is 401; a known key without the scope is 403.
fn authorize(parts: &Parts, state: &AppState, scope: Scope) -> Result<ClientId, ApiError> {
    let caller = state
        .clients
        .authenticate(&parts.headers)
        .ok_or(ApiError::Unauthorized)?;
    if !caller.scopes.allows(scope) {
        metrics::counter!("ivpay_forbidden_total", "scope" => scope.as_str()).increment(1);
        return Err(ApiError::Forbidden {
            scope: scope.as_str(),
        });
    }
    if let Some(limiter) = &state.limiter
        && let Err(not_until) = limiter.check_key(&caller.client)
    {
        use governor::clock::Clock;
        let now = governor::clock::DefaultClock::default().now();
        metrics::counter!("ivpay_rate_limited_total").increment(1);
        return Err(ApiError::RateLimited {
            retry_after: not_until.wait_time_from(now),
        });
    }
    Ok(caller.client)
}

/// The errors the client checks answer, for the document.
pub(crate) fn errors(scope: Scope) -> Vec<ApiError> {
    vec![
        ApiError::Unauthorized,
        ApiError::Forbidden {
            scope: scope.as_str(),
        },
        ApiError::RateLimited {
            retry_after: Duration::from_secs(1),
        },
    ]
}

/// A client whose key may create payments.
pub(crate) struct CanCreate(pub(crate) ClientId);

impl FromRequestParts<AppState> for CanCreate {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authorize(parts, state, Scope::Create).map(Self)
    }
}

/// A client whose key may read its own payments.
pub(crate) struct CanRead(pub(crate) ClientId);

impl FromRequestParts<AppState> for CanRead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authorize(parts, state, Scope::Read).map(Self)
    }
}

/// An operator: a key with the `admin` scope. With no such key configured the admin
/// routes answer 404, as if absent.
pub(crate) struct Operator(pub(crate) ClientId);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.clients.any_allows(Scope::Admin) {
            return Err(ApiError::NotFound(ADMIN_OFF));
        }
        authorize(parts, state, Scope::Admin).map(Self)
    }
}

/// A request that carries the IVPAY key of one of the merchant's accounts: a webhook from
/// IVPAY (or from whoever has that key), for that account.
pub(crate) struct IvpayNotifier(pub(crate) AccountId);

impl FromRequestParts<AppState> for IvpayNotifier {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.webhook_keys.verify(&parts.headers) {
            Some(account) => Ok(Self(account)),
            None => {
                metrics::counter!("ivpay_webhooks_total", "outcome" => "unauthorized").increment(1);
                Err(ApiError::Unauthorized)
            }
        }
    }
}
