//! The OpenAPI document, generated from the handlers' annotations and the response types,
//! served at `/openapi.json` with an interactive page at `/docs`.

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error: IVPAY's `{success: false, error}` plus our fields.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Always `false`.
    success: bool,
    /// What went wrong, naming the field where one is at fault.
    #[schema(example = "amount_fiat: 3 decimals, USD allows 2")]
    error: String,
    /// A stable machine-readable code.
    #[schema(example = "invalid_request")]
    code: String,
    /// The field at fault, when one is.
    field: Option<String>,
    /// Our id of the payment, when the error concerns one (504 outcome unknown).
    id: Option<String>,
}

struct ApiKeyHeader;

impl Modify for ApiKeyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-KEY"))),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "ivpay", description = "Payments through IVPAY, in IVPAY's own API shape, with idempotency, history and webhooks confirmed before use."),
    paths(
        crate::payment::create,
        crate::payment::get,
        crate::payment::events,
        crate::payment::list,
        crate::webhook::receive,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&ApiKeyHeader),
    tags(
        (name = "payments", description = "IVPAY-compatible payments, listing and history"),
        (name = "webhooks", description = "IVPAY's notices"),
        (name = "operations", description = "health, readiness, metrics"),
    )
)]
pub(crate) struct ApiDoc;

/// The OpenAPI document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
