//! The OpenAPI document, generated from the handlers' annotations and from the types they
//! read and answer (`CreateBody`, `ListQuery`, `PaymentPath`, `Envelope`, `ErrorBody`, ...),
//! served at `/openapi.json` with an interactive page at `/docs`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::envelope::ErrorBody;

struct ApiKeyHeaders;

impl Modify for ApiKeyHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "a client's key (one per client, configured in `clients`)",
            ))),
        );
        components.add_security_scheme(
            "ivpay_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "IVPAY's merchant key, which IVPAY echoes on webhooks (not a client's key)",
            ))),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "ivpay", description = "Payments through IVPAY, in IVPAY's own API shape, with idempotency, history and webhooks confirmed before use. Every answer is IVPAY's envelope: `{\"success\": true, \"data\": ...}` or `{\"success\": false, \"error\": ..., \"code\": ...}`."),
    paths(
        crate::create::create,
        crate::payment::get,
        crate::events::events,
        crate::listing::list,
        crate::webhook::receive,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&ApiKeyHeaders),
    tags(
        (name = "payments", description = "IVPAY-compatible payments, listing and history"),
        (name = "webhooks", description = "IVPAY's notices"),
        (name = "operations", description = "health, readiness, metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
