//! The sandbox's one router: IVPAY's routes, the checkout page and the control API,
//! sharing one [`Sandbox`] as their state, under the configured prefix.

use axum::Router;

use crate::state::Sandbox;
use crate::{checkout, contract, control};

impl Sandbox {
    /// The routes, under the configured prefix: IVPAY's `POST /payment/create` and
    /// `GET /payment/{payment_id}`, the checkout page under `/checkout/`, and the control
    /// API under `/sandbox/`. Nest it anywhere; `payment_url` follows the path it is
    /// reached by (unless `public_url` is set).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .merge(contract::routes())
            .merge(checkout::routes())
            .merge(control::routes())
            .with_state(self.clone());
        if self.prefix().is_empty() {
            routes
        } else {
            Router::new().nest(self.prefix(), routes)
        }
    }
}
