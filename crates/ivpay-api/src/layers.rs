//! The middleware around every route, and the answers for unknown routes and methods.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;

/// Where request ids come from: a random start drawn once per process, then a counter,
/// so an id costs no system call (UUID v4 ids cost one `getrandom` each).
static NEXT_REQUEST_ID: std::sync::LazyLock<std::sync::atomic::AtomicU64> =
    std::sync::LazyLock::new(|| {
        let seed = std::collections::hash_map::RandomState::new();
        let start = std::hash::BuildHasher::hash_one(&seed, std::process::id());
        std::sync::atomic::AtomicU64::new(start)
    });

fn new_request_id() -> axum::http::HeaderValue {
    let n = NEXT_REQUEST_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    axum::http::HeaderValue::try_from(format!("{n:016x}"))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("-"))
}

/// The method as a label without allocating: the methods the API answers, else `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A label value as `&'static str`, interned once: route templates and status codes are
/// a handful each, so the set stays small and a label never allocates after the first.
fn interned(value: &str) -> &'static str {
    static SEEN: std::sync::LazyLock<std::sync::RwLock<Vec<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    let seen = SEEN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = seen.iter().find(|v| **v == value) {
        return found;
    }
    drop(seen);
    let mut seen = SEEN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = seen.iter().find(|v| **v == value) {
        return found;
    }
    let new: &'static str = Box::leak(value.to_owned().into_boxed_str());
    seen.push(new);
    new
}

/// What every request goes through, in one layer:
///
/// - its `x-request-id` (the client's, or a new one), set on the request and echoed on
///   the answer;
/// - one INFO span around it and one line when it is answered (status, latency), built
///   only when INFO is on;
/// - `ivpay_http_requests_total{route, method, status}` and
///   `ivpay_http_request_seconds{route}`, with labels that cost no allocation;
/// - `Connection: close` after an error answer to a request that has a body: an error
///   may be answered before the body is read (401 and 415 come first, 413 stops reading),
///   the server then cannot reuse the connection and drops it, and a client that was not
///   told would send its next request into a closed socket.
pub(crate) async fn observe(mut request: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    use tracing::Instrument;
    const REQUEST_ID: &str = "x-request-id";
    let id = match request.headers().get(REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = new_request_id();
            request.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| interned(p.as_str()));
    let method = method_label(request.method());
    let started = std::time::Instant::now();
    let mut response = if tracing::enabled!(tracing::Level::INFO) {
        let span = tracing::info_span!(
            "request",
            method,
            path = %request.uri().path(),
            request_id = %id.to_str().unwrap_or("-"),
        );
        let response = next.run(request).instrument(span.clone()).await;
        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "answered"
            );
        });
        response
    } else {
        next.run(request).await
    };
    let status = response.status();
    metrics::counter!("ivpay_http_requests_total", "route" => route, "method" => method, "status" => interned(status.as_str()))
        .increment(1);
    metrics::histogram!("ivpay_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    let answer = response.headers_mut();
    answer.insert(REQUEST_ID, id);
    if has_body && (status.is_client_error() || status.is_server_error()) {
        answer.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

pub(crate) async fn limit_time(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout { limit }.into_response(),
    }
}

pub(crate) async fn no_route() -> ApiError {
    ApiError::NotFound("no such route")
}

pub(crate) async fn no_method() -> ApiError {
    ApiError::MethodNotAllowed
}
