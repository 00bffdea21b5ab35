//! What a team that embeds ivpay's crates writes, in two shapes:
//!
//! - [`PaymentDesk`]: a shop's checkout on the typed IVPAY client and the exact money of
//!   the domain, nothing else of ivpay; `tests/shop_checkout.rs` tests it against the IVPAY
//!   simulator, as the shop's own test suite would.
//! - [`shop_app`]: an existing axum app that nests ivpay's API under a prefix, behind its
//!   own gate; `src/bin/shop_server.rs` wires it over ivpay's storage and use cases, and
//!   `tests/nested_router.rs` calls it over HTTP.

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ivpay_domain::{ForeignId, Money, PaymentId, ReportedStatus};
use ivpay_http_adapter::IvpayClient;
use ivpay_ports::{CreateRequest, GatewayError, PaymentGateway};

/// An order the shop wants paid.
#[derive(Debug, Clone)]
pub struct Order {
    /// The shop's reference, sent to IVPAY as `foreign_id`.
    pub reference: String,
    /// What the customer pays, e.g. `"24.90"`.
    pub total: String,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
}

/// Where the customer is sent to pay, and how the shop finds the payment again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// IVPAY's id of the payment.
    pub payment_id: PaymentId,
    /// IVPAY's payment page for the customer.
    pub pay_at: String,
}

/// What went wrong at checkout.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The order's total or currency is not money IVPAY takes (the field is named).
    #[error(transparent)]
    Money(#[from] ivpay_domain::FieldError),
    /// The order reference cannot be a foreign id.
    #[error("order reference: {0}")]
    Reference(#[from] ivpay_domain::IdError),
    /// IVPAY said no, or could not be reached.
    #[error(transparent)]
    Ivpay(#[from] GatewayError),
}

/// The shop's payment desk.
#[derive(Debug, Clone)]
pub struct PaymentDesk {
    ivpay: IvpayClient,
}

impl PaymentDesk {
    /// A desk that talks to IVPAY through `ivpay`.
    pub fn new(ivpay: IvpayClient) -> Self {
        Self { ivpay }
    }

    /// Asks IVPAY for a payment of `order`.
    ///
    /// # Errors
    ///
    /// [`CheckoutError`]: a total that is not money, a reference IVPAY cannot take, IVPAY
    /// refusing or unreachable.
    pub async fn checkout(&self, order: &Order) -> Result<Checkout, CheckoutError> {
        let money = Money::parse(&order.total, &order.currency)?;
        let request = CreateRequest {
            money,
            foreign_id: order.reference.parse::<ForeignId>()?,
            url_success: None,
            url_failed: None,
        };
        let created = self.ivpay.create(&request).await?;
        Ok(Checkout {
            payment_id: created.payment_id,
            pay_at: created.payment_url.to_string(),
        })
    }

    /// Whether IVPAY says the payment is paid.
    ///
    /// # Errors
    ///
    /// [`GatewayError`] when IVPAY cannot be asked.
    pub async fn is_paid(&self, payment_id: &PaymentId) -> Result<bool, GatewayError> {
        let remote = self.ivpay.get(payment_id).await?;
        Ok(remote.status == ReportedStatus::from("PAID"))
    }
}

/// The shop's own gate: only its internal network may reach the payment API. IVPAY's
/// webhooks come from outside and carry their own proof, so they pass.
async fn internal_only(request: Request, next: Next) -> Response {
    let internal = request
        .headers()
        .get("x-internal")
        .is_some_and(|v| v == "yes");
    if internal || request.uri().path().ends_with("/webhooks/ivpay") {
        next.run(request).await
    } else {
        (StatusCode::FORBIDDEN, "internal only").into_response()
    }
}

/// The shop's axum app with ivpay's API (`ivpay_api::router`) nested under `/ivpay`,
/// behind the shop's own gate.
pub fn shop_app(ivpay: Router) -> Router {
    Router::new()
        .route("/", get(|| async { "the shop" }))
        .nest("/ivpay", ivpay)
        .layer(middleware::from_fn(internal_only))
}
