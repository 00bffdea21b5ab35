//! `/admin/payments/{id}/link` and `/admin/payments/{id}/abandon`: an operator resolves a
//! payment whose create outcome is *unknown* (or still *initiated*), with a key that has
//! the `admin` scope. Without such a key configured the routes answer 404, as if absent.
//! Every action is logged with the operator's name.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use ivpay_domain::{InternalId, PaymentId};
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, ToSchema};

use crate::auth::Operator;
use crate::envelope::Envelope;
use crate::error::{ApiError, samples};
use crate::json::Json;
use crate::keys::Scope;
use crate::payment::PaymentView;
use crate::state::AppState;

/// The `{id}` of the path: our id.
pub(crate) struct AdminPath(pub(crate) InternalId);

impl FromRequestParts<AppState> for AdminPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        text.parse::<InternalId>()
            .map(Self)
            .map_err(|_| ApiError::invalid("id", "expected our id, a hyphenated UUID"))
    }
}

crate::schema::documents_parameter!(AdminPath, "id", Path, true, crate::schema::internal_id);

/// The body of a link: IVPAY's id of the payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub(crate) struct LinkBody {
    #[schema(schema_with = crate::schema::ivpay_payment_id, required = true)]
    payment_id: Option<Value>,
}

impl LinkBody {
    fn payment_id(&self) -> Result<PaymentId, ApiError> {
        match &self.payment_id {
            Some(Value::String(text)) => text
                .parse()
                .map_err(|e: ivpay_domain::IdError| ApiError::invalid("payment_id", e.to_string())),
            None | Some(Value::Null) => Err(ApiError::invalid("payment_id", "required")),
            Some(_) => Err(ApiError::invalid("payment_id", "must be a string")),
        }
    }
}

/// The errors every admin route answers before its use case runs.
fn common_errors() -> Vec<ApiError> {
    let mut errors = crate::auth::errors(Scope::Admin);
    errors.push(ApiError::NotFound(crate::auth::ADMIN_OFF));
    errors.push(ApiError::invalid("id", ""));
    errors.extend(samples::any_route());
    errors
}

/// Every answer of the link route but 200.
pub(crate) struct LinkErrors;

impl IntoResponses for LinkErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = common_errors();
        errors.extend(Json::<LinkBody>::errors());
        errors.push(ApiError::invalid("payment_id", ""));
        errors.extend(samples::admin(true));
        crate::error::responses(&errors)
    }
}

/// Every answer of the abandon route but 200.
pub(crate) struct AbandonErrors;

impl IntoResponses for AbandonErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = common_errors();
        errors.extend(samples::admin(false));
        crate::error::responses(&errors)
    }
}

/// Links a payment whose create outcome is unknown or initiated to IVPAY's payment, after
/// IVPAY's `GET` confirms it exists and carries the foreign id this payment sent.
#[utoipa::path(
    post, path = "/admin/payments/{id}/link", tag = "admin",
    params(AdminPath),
    request_body = LinkBody,
    responses((status = 200, body = Envelope<PaymentView>), LinkErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn link(
    State(state): State<AppState>,
    Operator(operator): Operator,
    AdminPath(id): AdminPath,
    Json(body): Json<LinkBody>,
) -> Result<Envelope<PaymentView>, ApiError> {
    let payment_id = body.payment_id()?;
    tracing::info!(%operator, %id, %payment_id, "operator links a payment");
    let payment = state.use_cases.link_payment(id, payment_id).await?;
    metrics::counter!("ivpay_unknown_links_total", "outcome" => "operator").increment(1);
    Ok(Envelope::new(PaymentView::of(&payment)))
}

/// Abandons a payment whose create outcome is unknown or initiated (the operator states
/// that IVPAY holds no payment for it) and releases its idempotency key.
#[utoipa::path(
    post, path = "/admin/payments/{id}/abandon", tag = "admin",
    params(AdminPath),
    responses((status = 200, body = Envelope<PaymentView>), AbandonErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn abandon(
    State(state): State<AppState>,
    Operator(operator): Operator,
    AdminPath(id): AdminPath,
) -> Result<Envelope<PaymentView>, ApiError> {
    tracing::info!(%operator, %id, "operator abandons a payment");
    let payment = state.use_cases.abandon_payment(id).await?;
    metrics::counter!("ivpay_unknown_abandoned_total").increment(1);
    Ok(Envelope::new(PaymentView::of(&payment)))
}
