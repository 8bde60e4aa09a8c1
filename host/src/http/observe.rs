//! What every request leaves behind: its `X-Request-Id` (taken from the
//! client when well-formed, else made here; echoed in the response and in
//! problem+json), one access log line, and its count and latency in
//! `/metrics`, by route template.
//!
//! The access line holds the method, the route's template (never the path
//! itself, nor the query, headers or body, so no token or password reaches
//! the log), the status, the duration, the request id and the account the
//! route names.

use std::time::Instant;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client; a longer one is replaced.
pub const REQUEST_ID_CHARS_MAX: usize = 128;
/// Longest account id put in an access line.
const ACCOUNT_ID_CHARS_MAX: usize = 64;
/// The route label of requests no route matched (404s).
const UNMATCHED: &str = "(unmatched)";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, for problem+json.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// What a matched route tells the outer layer through the response.
#[derive(Clone)]
struct Matched {
    route: String,
    account: Option<String>,
}

fn plain_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The client's id if it is 1..=128 characters of `A-Z a-z 0-9 - _ . :`
/// (nothing that could forge a log line); otherwise a new one.
fn choose_request_id(headers: &HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| plain_id(v, REQUEST_ID_CHARS_MAX))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
}

/// Route layer: notes the matched template and the account the path names
/// (`/v1/accounts/{id}/...`, `/v1/operator/accounts/{parent_id}/...`).
pub async fn tag_route(req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let account = match &route {
        Some(r) if r.starts_with("/v1/accounts/{") || r.starts_with("/v1/operator/accounts/{") => {
            <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(
                &mut parts,
                &(),
            )
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .next()
                    .map(|(_, v)| v.to_string())
                    .filter(|v| plain_id(v, ACCOUNT_ID_CHARS_MAX))
            })
        }
        _ => None,
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Matched { route, account });
    }
    response
}

/// The method as a metric label and log field: the methods HTTP defines,
/// and `OTHER` for any other token a client sends (hyper takes methods of
/// any length), so neither the label set nor a log line grows with input.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("OTHER", |(_, label)| label)
}

/// Outer layer: request id, access log line, metrics.
pub async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = choose_request_id(req.headers());
    let method = method_label(req.method());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let matched = response.extensions_mut().remove::<Matched>();
    let (route, account) = match &matched {
        Some(m) => (m.route.as_str(), m.account.as_deref().unwrap_or("-")),
        None => (UNMATCHED, "-"),
    };
    s.metrics.request(method, route, status, took);
    tracing::info!(
        target: "canopy::access",
        method = %method,
        route,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        request_id = %id,
        account,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
