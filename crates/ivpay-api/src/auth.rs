//! The checks in front of the handlers: [`AuthenticatedClient`] for our clients (key and
//! rate limit), [`IvpayNotifier`] for IVPAY's webhooks (its echoed key).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ivpay_domain::ClientId;

use crate::error::ApiError;
use crate::state::AppState;

/// A client whose `X-API-KEY` is known, within its rate limit.
pub(crate) struct AuthenticatedClient(pub(crate) ClientId);

impl FromRequestParts<AppState> for AuthenticatedClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = state
            .clients
            .authenticate(&parts.headers)
            .ok_or(ApiError::Unauthorized)?;
        if let Some(limiter) = &state.limiter {
            if let Err(not_until) = limiter.check_key(&client) {
                use governor::clock::Clock;
                let now = governor::clock::DefaultClock::default().now();
                metrics::counter!("ivpay_rate_limited_total").increment(1);
                return Err(ApiError::RateLimited {
                    retry_after: not_until.wait_time_from(now),
                });
            }
        }
        Ok(Self(client))
    }
}

impl AuthenticatedClient {
    /// The errors this check answers, for the document.
    pub(crate) fn errors() -> Vec<ApiError> {
        vec![
            ApiError::Unauthorized,
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
        ]
    }
}

/// A request that carries IVPAY's key: a webhook from IVPAY (or from whoever has the key).
pub(crate) struct IvpayNotifier;

impl FromRequestParts<AppState> for IvpayNotifier {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let authentic = state
            .webhook_key
            .as_ref()
            .is_some_and(|k| k.verify(&parts.headers));
        if authentic {
            Ok(Self)
        } else {
            metrics::counter!("ivpay_webhooks_total", "outcome" => "unauthorized").increment(1);
            Err(ApiError::Unauthorized)
        }
    }
}
