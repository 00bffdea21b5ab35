//! The OpenAPI document, generated from the handlers' annotations and from the types they
//! read and answer (`CreateBody`, `ListQuery`, `PaymentPath`, `Envelope`, `ErrorBody`, ...),
//! served at `/openapi.json` with an interactive page at `/docs`.

use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
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
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "the operators' key (`admin.key`); without one configured the admin routes answer 404",
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

/// Rules that span fields, which a field's own schema cannot state: an amount has at most
/// its currency's minor units; a notice names its payment, flat or inside `data`.
struct CrossFieldRules;

impl CrossFieldRules {
    fn constrain(openapi: &mut utoipa::openapi::OpenApi, name: &str, rule: Schema) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(schema) = components.schemas.remove(name) {
            let both = AllOfBuilder::new().item(schema).item(rule).build();
            components
                .schemas
                .insert(name.to_owned(), RefOr::T(Schema::AllOf(both)));
        }
    }
}

impl Modify for CrossFieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        Self::constrain(openapi, "CreateBody", crate::schema::amount_per_currency());
        let names_payment = AnyOfBuilder::new()
            .description(Some("`payment_id` at the top level, or inside `data`"))
            .item(
                ObjectBuilder::new()
                    .property("payment_id", crate::schema::webhook_payment_id())
                    .required("payment_id"),
            )
            .item(
                ObjectBuilder::new().required("data").property(
                    "data",
                    ObjectBuilder::new()
                        .property("payment_id", crate::schema::webhook_payment_id())
                        .required("payment_id"),
                ),
            )
            .build();
        Self::constrain(openapi, "WebhookBody", Schema::AnyOf(names_payment));
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
        crate::admin::link,
        crate::admin::abandon,
        crate::listing::list_all,
        crate::inbox::replay_stored,
        crate::inbox::inbox,
        crate::inbox::replay,
        crate::notify::add_endpoint,
        crate::notify::list_endpoints,
        crate::notify::get_endpoint,
        crate::notify::disable_endpoint,
        crate::notify::enable_endpoint,
        crate::notify::rotate_secret,
        crate::notify::recover,
        crate::notify::list_notifications,
        crate::notify::get_notification,
        crate::notify::redeliver,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&ApiKeyHeaders, &CrossFieldRules),
    tags(
        (name = "payments", description = "IVPAY-compatible payments, listing and history"),
        (name = "webhooks", description = "IVPAY's notices"),
        (name = "admin", description = "operators: every client's payments, resolving those whose create outcome is unknown, the webhook inbox and replays"),
        (name = "notifications", description = "operators: clients' notification endpoints and the delivery log"),
        (name = "operations", description = "health, readiness, metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
