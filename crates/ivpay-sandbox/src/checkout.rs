//! The hosted payment page `payment_url` points at, shaped like a crypto checkout: the
//! amount, a coin choice, then a (fake) deposit address with its QR code, a countdown to
//! the payment's timeout, and the status kept current without a reload. Buttons pay in
//! full, underpay (the payment stays PENDING and times out), give up, or let it expire.
//! Plain HTML forms underneath, so it works without JavaScript (and for a headless
//! browser); a few lines of inline script poll `{page}/status` once a second. No external
//! assets: the QR code is inline SVG drawn here.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Form, OriginalUri, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use ivpay_domain::PaymentStatus;
use serde::{Deserialize, Serialize};

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
        .route("/checkout/{payment_id}/underpay", post(underpay))
        .route("/checkout/{payment_id}/expire", post(expire))
        .route("/checkout/{payment_id}/status", get(status))
}

/// What the page polls: enough to redraw the status and the countdown.
#[derive(Serialize)]
struct StatusView {
    status: PaymentStatus,
    remaining_seconds: i64,
    coin: Option<String>,
    received: Option<String>,
}

async fn status(State(sandbox): State<Sandbox>, Path(payment_id): Path<String>) -> Response {
    match sandbox.checkout_view(&payment_id) {
        Some((p, remaining_seconds)) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(StatusView {
                status: p.status,
                remaining_seconds,
                coin: p.coin,
                received: p.received,
            }),
        )
            .into_response(),
        None => not_found(&payment_id),
    }
}

async fn underpay(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let page = page_path(uri.path());
    match sandbox.underpay_from_checkout(&payment_id) {
        Ok(_) => Redirect::to(&page).into_response(),
        Err(error) => after_action(&sandbox, &payment_id, Err(error), None, page),
    }
}

/// Lets the payment run out now: TIMEOUT, as when its window closes, and back to the page.
async fn expire(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let result = sandbox.change_from_checkout(&payment_id, PaymentStatus::Timeout, None);
    after_action(&sandbox, &payment_id, result, None, page_path(uri.path()))
}

async fn page(
    State(sandbox): State<Sandbox>,
    Path(payment_id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    match sandbox.checkout_view(&payment_id) {
        Some((payment, left)) => Html(render(&payment, left, uri.path(), None)).into_response(),
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
        Err(error) => match sandbox.checkout_view(payment_id) {
            Some((payment, left)) => (
                StatusCode::CONFLICT,
                Html(render(&payment, left, &page, Some(&error.to_string()))),
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

/// The look: one card, a status badge per status, nothing fetched from elsewhere.
const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}\
main{max-width:26em;margin:2em auto;background:#fff;border-radius:12px;padding:1.5em 2em;\
box-shadow:0 2px 12px #0002}header{color:#6b7280;font-size:.85em}\
.amount{font-size:2.2em;font-weight:600;margin:.3em 0}dt{color:#6b7280;font-size:.85em}\
dd{margin:0 0 .6em;word-break:break-all}.badge{padding:.15em .6em;border-radius:1em;\
font-size:.85em;font-weight:600}.s-CREATED{background:#e5e7eb}.s-PENDING{background:#fef3c7}\
.s-PAID{background:#d1fae5}.s-TIMEOUT{background:#fee2e2}button{margin:.2em;padding:.5em 1em;\
border-radius:6px;border:1px solid #d1d5db;background:#fff;cursor:pointer}\
button.primary{background:#111827;color:#fff}#qr{display:block;margin:.5em auto}\
#address{font-family:monospace}form{display:inline}";

/// Polls `{page}/status` each second and redraws the countdown; when the status changes
/// (paid or expired elsewhere, a coin chosen in another tab) it fetches the page and swaps
/// in its `<main>`, so what the page holds survives and no form is posted again (a 409
/// page lives at its action's URL). A final status ends the polling.
const SCRIPT: &str = "(function(){var b=document.body,page=b.dataset.pageUrl,left=0,\
shown=document.getElementById('status').textContent;\
function el(i){return document.getElementById(i);}\
function fin(v){return v==='PAID'||v==='TIMEOUT';}\
function fmt(n){if(n<=0)return 'expired';var m=Math.floor(n/60),x=n%60;\
return m+':'+(x<10?'0':'')+x;}\
function read(){var c=el('countdown');left=c?+c.dataset.remaining:0;}read();\
setInterval(function(){var c=el('countdown');if(c&&left>0){left--;c.textContent=fmt(left);}},1000);\
function swap(){return fetch(page,{cache:'no-store'}).then(function(r){return r.text();})\
.then(function(t){var m=new DOMParser().parseFromString(t,'text/html').querySelector('main');\
if(m){document.querySelector('main').replaceWith(m);read();}});}\
function poll(){fetch(b.dataset.statusUrl,{cache:'no-store'}).then(function(r){return r.json();})\
.then(function(v){left=v.remaining_seconds;var c=el('countdown');if(c)c.textContent=fmt(left);\
if(v.status!==shown){shown=v.status;return swap();}}).catch(function(){})\
.then(function(){if(!fin(shown))setTimeout(poll,1000);});}\
if(!fin(shown))setTimeout(poll,1000);})();";

/// The page for `payment` with `left` seconds to its timeout; `page` is its own path,
/// which the forms post below.
fn render(payment: &PaymentSnapshot, left: i64, page: &str, error: Option<&str>) -> String {
    let page = escape(page);
    let mut html = String::with_capacity(8192);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>IVPAY sandbox checkout</title><style>{STYLE}</style></head>\
         <body data-page-url=\"{page}\" data-status-url=\"{page}/status\"><main>\n\
         <header>IVPAY sandbox: a test payment, no money moves</header>\n"
    );
    if let Some(error) = error {
        let _ = writeln!(html, "<p id=\"error\" role=\"alert\">{}</p>", escape(error));
    }
    let _ = write!(
        html,
        "<p class=\"amount\"><span id=\"amount\">{}</span> <span id=\"currency\">{}</span></p>\n\
         <p>Status: <span id=\"status\" class=\"badge s-{status}\">{status}</span> \
         <span id=\"countdown-line\"{hidden}>time left: <span id=\"countdown\" data-remaining=\"{left}\">{}</span></span></p>\n\
         <dl>\n<dt>Order</dt><dd id=\"foreign-id\">{}</dd>\n\
         <dt>Payment</dt><dd id=\"payment-id\">{}</dd>\n",
        escape(&payment.amount_fiat),
        escape(&payment.currency_fiat),
        countdown(left),
        escape(payment.foreign_id.as_deref().unwrap_or("-")),
        escape(&payment.payment_id),
        status = payment.status,
        hidden = if payment.status.is_final() {
            " hidden"
        } else {
            ""
        },
    );
    if let Some(coin) = &payment.coin {
        let _ = writeln!(html, "<dt>Coin</dt><dd id=\"coin\">{}</dd>", escape(coin));
    }
    if let Some(received) = &payment.received {
        let _ = writeln!(
            html,
            "<dt>Received</dt><dd id=\"received\">{} of {} {}: not enough, waiting for the rest</dd>",
            escape(received),
            escape(&payment.amount_fiat),
            escape(&payment.currency_fiat),
        );
    }
    html.push_str("</dl>\n");
    let (actions, done) = match payment.status {
        PaymentStatus::Created => (true, ""),
        PaymentStatus::Pending => (true, ""),
        PaymentStatus::Paid => (false, "Paid. Thank you."),
        PaymentStatus::Timeout => (false, "This payment has expired."),
    };
    let _ = writeln!(
        html,
        "<p id=\"done\"{}>{done}</p>",
        if actions { " hidden" } else { "" }
    );
    if actions {
        html.push_str("<div id=\"actions\">\n");
        if payment.status == PaymentStatus::Created {
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
            html.push_str("</form>\n<p>\n");
        } else {
            let coin = payment.coin.as_deref().unwrap_or("BTC");
            let address = deposit_address(&payment.payment_id, coin);
            let _ = writeln!(
                html,
                "<p>Send {} {} worth of {} to:</p>\n{}\n<p id=\"address\">{}</p>\n<p>",
                escape(&payment.amount_fiat),
                escape(&payment.currency_fiat),
                escape(coin),
                qr_svg(&address),
                escape(&address),
            );
            let _ = writeln!(
                html,
                "<form method=\"post\" action=\"{page}/pay\"><button class=\"primary\" type=\"submit\" id=\"pay\">Pay {} {}</button></form>",
                escape(&payment.amount_fiat),
                escape(&payment.currency_fiat),
            );
            let _ = writeln!(
                html,
                "<form method=\"post\" action=\"{page}/underpay\"><button type=\"submit\" id=\"underpay\">Send too little</button></form>"
            );
        }
        let _ = writeln!(
            html,
            "<form method=\"post\" action=\"{page}/expire\"><button type=\"submit\" id=\"expire\">Let it expire</button></form>\n\
             <form method=\"post\" action=\"{page}/cancel\"><button type=\"submit\" id=\"give-up\">Give up</button></form>\n</p>\n</div>"
        );
    }
    let _ = writeln!(html, "</main><script>{SCRIPT}</script></body></html>");
    html
}

/// `m:ss`, or `expired`.
fn countdown(left: i64) -> String {
    if left <= 0 {
        "expired".to_owned()
    } else {
        format!("{}:{:02}", left / 60, left % 60)
    }
}

/// A deposit address shaped like the coin's, made from the payment id (so one payment
/// always shows one address), that no wallet would accept: each starts with its coin's
/// prefix and then `sandbox`, which breaks that coin's alphabet (`s`, `n`, `o`, `x` are not
/// hex; `b` and `o` are not bech32), and the TRON one also carries a `0`, which base58
/// lacks. Someone who copies it into a real wallet gets an error, not a lost transfer.
fn deposit_address(payment_id: &str, coin: &str) -> String {
    let hex: String = payment_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    match coin {
        "ETH" => format!("0xsandbox{hex}"),
        "USDT" => format!("Tsandbox0{}", &hex[..24]),
        "LTC" => format!("tltc1qsandbox{}", &hex[..26]),
        _ => format!("tb1qsandbox{}", &hex[..28]),
    }
}

/// `text` as a QR code, an inline `<svg id="qr">`; an empty string if it cannot be
/// encoded (it always can: addresses are short).
fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(180, 180)
        .build();
    // Drop the XML declaration: the SVG sits inside HTML.
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen(
        "<svg",
        "<svg id=\"qr\" role=\"img\" aria-label=\"QR code of the address\"",
        1,
    )
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
            received: None,
        }
    }

    #[test]
    fn the_page_escapes_the_foreign_id() {
        let html = render(&payment(PaymentStatus::Created), 90, "/checkout/abc", None);
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_created_payment_offers_coins_and_giving_up_but_not_paying() {
        let html = render(&payment(PaymentStatus::Created), 90, "/checkout/abc", None);
        assert!(html.contains("id=\"coin-BTC\""));
        assert!(html.contains("id=\"give-up\""));
        assert!(!html.contains("id=\"pay\""));
    }

    #[test]
    fn a_pending_payment_offers_paying() {
        let html = render(&payment(PaymentStatus::Pending), 90, "/checkout/abc", None);
        assert!(html.contains("id=\"pay\""));
        assert!(html.contains("action=\"/checkout/abc/pay\""));
        assert!(!html.contains("id=\"coin-BTC\""));
    }

    #[test]
    fn a_final_payment_offers_nothing() {
        for status in [PaymentStatus::Paid, PaymentStatus::Timeout] {
            let html = render(&payment(status), 0, "/checkout/abc", None);
            assert!(!html.contains("<form"), "{status}: {html}");
            assert!(html.contains(&format!(
                "<span id=\"status\" class=\"badge s-{status}\">{status}</span>"
            )));
            assert!(
                !html.contains("id=\"done\" hidden"),
                "the final message shows"
            );
            assert!(
                html.contains("<span id=\"countdown-line\" hidden>"),
                "no countdown on a final payment: {html}"
            );
        }
    }

    #[test]
    fn a_pending_payment_shows_its_address_as_text_and_qr_code_and_a_countdown() {
        let mut p = payment(PaymentStatus::Pending);
        p.payment_id = "0123456789abcdef0123456789abcdef".into();
        p.coin = Some("ETH".into());
        let html = render(&p, 125, "/checkout/abc", None);
        let address = deposit_address(&p.payment_id, "ETH");
        assert_eq!(address, "0xsandbox0123456789abcdef0123456789abcdef");
        assert!(html.contains(&format!("<p id=\"address\">{address}</p>")));
        assert!(html.contains("<svg id=\"qr\""), "{html}");
        assert!(!html.contains("<?xml"), "inline SVG, no XML declaration");
        assert!(html.contains("data-remaining=\"125\">2:05<"), "{html}");
        assert!(html.contains("id=\"underpay\"") && html.contains("id=\"expire\""));
        assert!(html.contains("id=\"done\" hidden"));
        assert!(
            html.contains("<span id=\"countdown-line\">"),
            "the countdown shows"
        );
        p.received = Some("5.00".into());
        let html = render(&p, 0, "/checkout/abc", None);
        assert!(
            html.contains("<dd id=\"received\">5.00 of 10.00 USD"),
            "{html}"
        );
        assert!(html.contains(">expired<"));
    }

    /// What a wallet checks first: the characters its address format allows.
    fn is_plausible(coin: &str, address: &str) -> bool {
        const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        match coin {
            "ETH" => address.strip_prefix("0x").is_some_and(|rest| {
                rest.len() == 40 && rest.chars().all(|c| c.is_ascii_hexdigit())
            }),
            "USDT" => address.starts_with('T') && address.chars().all(|c| BASE58.contains(c)),
            "LTC" | "BTC" => address
                .split_once('1')
                .is_some_and(|(_, data)| data.chars().all(|c| BECH32.contains(c))),
            _ => true,
        }
    }

    #[test]
    fn addresses_differ_by_coin_say_sandbox_and_are_never_valid() {
        for id in [
            "ffffffffffffffffffffffffffffffff",
            "0123456789abcdef0123456789abcdef",
            "no-hex-at-all",
            "ABCDEF0123456789ABCDEF0123456789",
        ] {
            let all: Vec<String> = COINS.iter().map(|c| deposit_address(id, c)).collect();
            for (coin, address) in COINS.iter().zip(&all) {
                let prefix = match *coin {
                    "ETH" => "0x",
                    "USDT" => "T",
                    "LTC" => "tltc1q",
                    _ => "tb1q",
                };
                assert!(
                    address.starts_with(&format!("{prefix}sandbox")),
                    "{coin}: {address}"
                );
                assert!(!is_plausible(coin, address), "{coin}: {address} looks real");
                assert_eq!(address, &deposit_address(id, coin), "stable");
            }
            let distinct: std::collections::BTreeSet<_> = all.iter().collect();
            assert_eq!(distinct.len(), COINS.len());
        }
        // The checker itself tells a real-looking address from ours.
        assert!(is_plausible(
            "ETH",
            "0x0123456789abcdef0123456789abcdef00000000"
        ));
        assert!(is_plausible("USDT", "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"));
        assert!(is_plausible(
            "BTC",
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
        ));
    }

    #[test]
    fn the_page_path_drops_the_action() {
        assert_eq!(
            page_path("/api/v4/checkout/abc/pay"),
            "/api/v4/checkout/abc"
        );
    }
}
