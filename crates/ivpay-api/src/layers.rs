//! The middleware around every route, and the answers for unknown routes and methods.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;

/// Closes the connection after an error answer to a request that has a body. An error
/// may be answered before the body is read (401 and 415 come first, 413 stops reading);
/// the server then cannot reuse the connection and drops it, and a client that was not
/// told would send its next request into a closed socket.
pub(crate) async fn close_after_refused_body(request: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

pub(crate) async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("ivpay_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("ivpay_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
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
