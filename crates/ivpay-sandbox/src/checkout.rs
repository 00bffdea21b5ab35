//! The hosted payment page `payment_url` points at: plain HTML forms a person (or a
//! headless browser) clicks through to choose a coin, pay, or give up.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Form, OriginalUri, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ivpay_domain::PaymentStatus;
use serde::Deserialize;

use crate::error::ControlError;
use crate::payment::{ChangeOutcome, PaymentSnapshot};
use crate::state::Sandbox;

/// The coins the page offers. Any choice moves the payment to PENDING.
pub const COINS: [&str; 4] = ["BTC", "ETH", "USDT", "LTC"];

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/checkout/{payment_id}", get(page))
        .route("/checkout/{payment_id}/coin", post(choose_coin))
        .route("/checkout/{payment_id}/pay", post(pay))
        .route("/checkout/{payment_id}/cancel", post(give_up))
}

async fn page(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    match sandbox.payment(&payment_id) {
        Some(payment) => Html(render(&payment, uri.path(), None)).into_response(),
        None => not_found(&payment_id),
    }
}

#[derive(Deserialize)]
struct CoinForm {
    coin: String,
}

async fn choose_coin(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form<CoinForm>,
) -> Response {
    let Some(coin) = COINS.iter().find(|c| **c == form.coin) else {
        return (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><p>Unknown coin {}</p>",
                escape(&form.coin)
            )),
        )
            .into_response();
    };
    let result = sandbox.change_from_checkout(
        &payment_id,
        PaymentStatus::Pending,
        Some((*coin).to_owned()),
    );
    after_action(&sandbox, &payment_id, result, None, page_path(uri.path()))
}

async fn pay(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let result = sandbox.change_from_checkout(&payment_id, PaymentStatus::Paid, None);
    let next = sandbox.payment(&payment_id).and_then(|p| p.url_success);
    after_action(&sandbox, &payment_id, result, next, page_path(uri.path()))
}

async fn give_up(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let result = sandbox.change_from_checkout(&payment_id, PaymentStatus::Timeout, None);
    let next = sandbox.payment(&payment_id).and_then(|p| p.url_failed);
    after_action(&sandbox, &payment_id, result, next, page_path(uri.path()))
}

/// `/prefix/checkout/{id}/pay` -> `/prefix/checkout/{id}`.
fn page_path(action_path: &str) -> String {
    action_path
        .rsplit_once('/')
        .map_or_else(|| action_path.to_owned(), |(page, _)| page.to_owned())
}

/// After a successful action, 303 to the merchant's URL if it gave one, else back to
/// the page; a refused action shows the page with the reason and 409.
fn after_action(
    sandbox: &Sandbox,
    payment_id: &str,
    result: Result<ChangeOutcome, ControlError>,
    merchant_url: Option<String>,
    page: String,
) -> Response {
    match result {
        Ok(_) => {
            let target = merchant_url.unwrap_or(page);
            match HeaderValue::from_str(&target) {
                Ok(_) => Redirect::to(&target).into_response(),
                Err(_) => Redirect::to(".").into_response(),
            }
        }
        Err(ControlError::UnknownPayment(_)) => not_found(payment_id),
        Err(error) => match sandbox.payment(payment_id) {
            Some(payment) => (
                StatusCode::CONFLICT,
                Html(render(&payment, &page, Some(&error.to_string()))),
            )
                .into_response(),
            None => not_found(payment_id),
        },
    }
}

fn not_found(payment_id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Payment not found</title></head>\
             <body><h1>Payment not found</h1><p id=\"error\">No payment {}</p></body></html>",
            escape(payment_id)
        )),
    )
        .into_response()
}

/// The page for `payment`; `page` is its own path, which the forms post below.
fn render(payment: &PaymentSnapshot, page: &str, error: Option<&str>) -> String {
    let page = escape(page);
    let mut html = String::with_capacity(2048);
    html.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>IVPAY sandbox checkout</title>\
         <style>body{font-family:sans-serif;max-width:32em;margin:2em auto}\
         dt{font-weight:bold}button{margin:.2em;padding:.4em 1em}</style></head><body>\n\
         <h1>IVPAY sandbox checkout</h1>\n",
    );
    if let Some(error) = error {
        let _ = writeln!(html, "<p id=\"error\" role=\"alert\">{}</p>", escape(error));
    }
    let _ = write!(
        html,
        "<dl>\n<dt>Payment</dt><dd id=\"payment-id\">{}</dd>\n\
         <dt>Amount</dt><dd id=\"amount\">{}</dd>\n\
         <dt>Currency</dt><dd id=\"currency\">{}</dd>\n\
         <dt>Order</dt><dd id=\"foreign-id\">{}</dd>\n\
         <dt>Status</dt><dd id=\"status\">{}</dd>\n",
        escape(&payment.payment_id),
        escape(&payment.amount_fiat),
        escape(&payment.currency_fiat),
        escape(payment.foreign_id.as_deref().unwrap_or("-")),
        payment.status,
    );
    if let Some(coin) = &payment.coin {
        let _ = writeln!(html, "<dt>Coin</dt><dd id=\"coin\">{}</dd>", escape(coin));
    }
    html.push_str("</dl>\n");
    match payment.status {
        PaymentStatus::Created => {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"{page}/coin\">\n<p>Choose a coin:</p>\n"
            );
            for coin in COINS {
                let _ = writeln!(
                    html,
                    "<button type=\"submit\" id=\"coin-{coin}\" name=\"coin\" value=\"{coin}\">{coin}</button>"
                );
            }
            html.push_str("</form>\n");
            give_up_form(&mut html, &page);
        }
        PaymentStatus::Pending => {
            let _ = writeln!(
                html,
                "<form method=\"post\" action=\"{page}/pay\"><button type=\"submit\" id=\"pay\">Pay {} {}</button></form>",
                escape(&payment.amount_fiat),
                escape(&payment.currency_fiat),
            );
            give_up_form(&mut html, &page);
        }
        PaymentStatus::Paid => html.push_str("<p id=\"done\">Paid. Thank you.</p>\n"),
        PaymentStatus::Timeout => html.push_str("<p id=\"done\">This payment has expired.</p>\n"),
    }
    html.push_str("</body></html>\n");
    html
}

fn give_up_form(html: &mut String, page: &str) {
    let _ = writeln!(
        html,
        "<form method=\"post\" action=\"{page}/cancel\"><button type=\"submit\" id=\"give-up\">Give up</button></form>"
    );
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ivpay_domain::Timestamp;

    use super::*;

    fn payment(status: PaymentStatus) -> PaymentSnapshot {
        PaymentSnapshot {
            payment_id: "abc".into(),
            foreign_id: Some("<script>alert(1)</script>".into()),
            status,
            amount_fiat: "10.00".into(),
            currency_fiat: "USD".into(),
            created_at: Timestamp::from_unix_seconds(0),
            processed_at: Timestamp::from_unix_seconds(0),
            expires_at: Timestamp::from_unix_seconds(60),
            coin: None,
            url_success: None,
            url_failed: None,
        }
    }

    #[test]
    fn the_page_escapes_the_foreign_id() {
        let html = render(&payment(PaymentStatus::Created), "/checkout/abc", None);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_created_payment_offers_coins_and_giving_up_but_not_paying() {
        let html = render(&payment(PaymentStatus::Created), "/checkout/abc", None);
        assert!(html.contains("id=\"coin-BTC\""));
        assert!(html.contains("id=\"give-up\""));
        assert!(!html.contains("id=\"pay\""));
    }

    #[test]
    fn a_pending_payment_offers_paying() {
        let html = render(&payment(PaymentStatus::Pending), "/checkout/abc", None);
        assert!(html.contains("id=\"pay\""));
        assert!(html.contains("action=\"/checkout/abc/pay\""));
        assert!(!html.contains("id=\"coin-BTC\""));
    }

    #[test]
    fn a_final_payment_offers_nothing() {
        for status in [PaymentStatus::Paid, PaymentStatus::Timeout] {
            let html = render(&payment(status), "/checkout/abc", None);
            assert!(!html.contains("<form"), "{status}: {html}");
            assert!(html.contains(&format!("<dd id=\"status\">{status}</dd>")));
        }
    }

    #[test]
    fn the_page_path_drops_the_action() {
        assert_eq!(
            page_path("/api/v4/checkout/abc/pay"),
            "/api/v4/checkout/abc"
        );
    }
}
