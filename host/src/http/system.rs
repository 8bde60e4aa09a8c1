//! Health, readiness, metrics, the OpenAPI document and the docs page.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Routes that describe the API rather than belong to it.
pub fn unlisted() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route(DOCS_SCRIPT, get(docs_script))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", security(), responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "system", security(),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Health>) {
    if s.canopy.store.ping().await {
        (StatusCode::OK, Json(Health { status: "ready" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "database unreachable",
            }),
        )
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut out = s.metrics.render();
    out.push_str(&s.metrics.gauges(&s.canopy.store).await);
    let policies = &s.canopy.policies;
    out.push_str(&format!(
        "# HELP canopy_decisions_dropped_total Decisions not logged because the log's queue was full.\n# TYPE canopy_decisions_dropped_total counter\ncanopy_decisions_dropped_total {}\n",
        policies.decisions_dropped()
    ));
    let breakers = policies.breakers();
    out.push_str(&format!(
        "# HELP canopy_policy_breakers_open Policy circuits open now (failing closed without evaluating).\n# TYPE canopy_policy_breakers_open gauge\ncanopy_policy_breakers_open {}\n\
         # HELP canopy_policy_breaker_opened_total Times a policy circuit opened after repeated failures.\n# TYPE canopy_policy_breaker_opened_total counter\ncanopy_policy_breaker_opened_total {}\n\
         # HELP canopy_policy_breaker_refused_total Evaluations refused by an open policy circuit.\n# TYPE canopy_policy_breaker_refused_total counter\ncanopy_policy_breaker_refused_total {}\n\
         # HELP canopy_policy_fair_share_refused_total Operations refused because their tree's share of policy evaluation stayed busy.\n# TYPE canopy_policy_fair_share_refused_total counter\ncanopy_policy_fair_share_refused_total {}\n",
        breakers.open_now(),
        breakers.opened_total(),
        breakers.refused_total(),
        policies.fairness().refused_total()
    ));
    out.push_str(&format!(
        "# HELP canopy_policy_generation The policy generation this host has loaded.\n# TYPE canopy_policy_generation gauge\ncanopy_policy_generation {}\n",
        policies.layers().generation
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn openapi(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.openapi.as_str().to_owned(),
    )
        .into_response()
}

/// RapiDoc (MIT; host/assets/rapidoc/README.md), served by the host itself:
/// the docs page loads nothing from anywhere else.
const RAPIDOC_JS: &[u8] = include_bytes!("../../assets/rapidoc/rapidoc-min.js");
const DOCS_SCRIPT: &str = "/docs/rapidoc-min.js";

/// What the docs page may load: its own script and the server's OpenAPI
/// document, nothing from another origin. RapiDoc styles its elements
/// inline, hence `'unsafe-inline'` for styles (never for scripts).
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
/// Everything else is data, never a page to render or frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The API reference: RapiDoc rendering `/openapi.json` (every operation,
/// its fields, examples, errors and authentication, with "try it").
async fn docs() -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Canopy API reference</title>\
         <script type=\"module\" src=\"{DOCS_SCRIPT}\"></script></head>\n\
         <body><rapi-doc spec-url=\"/openapi.json\" load-fonts=\"false\" theme=\"light\" \
         render-style=\"read\" show-header=\"false\" allow-server-selection=\"false\" \
         allow-authentication=\"true\" allow-try=\"true\" schema-style=\"table\" \
         default-schema-tab=\"schema\" show-components=\"true\" persist-auth=\"false\">\
         <noscript>This reference needs JavaScript; the same content is the OpenAPI document at \
         <a href=\"/openapi.json\">/openapi.json</a>.</noscript></rapi-doc></body></html>\n"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP),
        ],
        page,
    )
        .into_response()
}

async fn docs_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        RAPIDOC_JS,
    )
        .into_response()
}

pub async fn not_found() -> Error {
    Error::NotFound("no such route; see /docs for the API's routes".into())
}

/// The route exists, not with this method; the router adds `Allow`.
pub async fn method_not_allowed(method: Method) -> Error {
    Error::MethodNotAllowed(format!(
        "`{method}` is not allowed on this route; the `Allow` header lists the methods it takes"
    ))
}

/// Headers every response carries: `nosniff` and a Content-Security-Policy
/// (the docs page sets its own) everywhere, and `no-store` on the API,
/// whose responses may carry secrets (keys, invitation tokens).
pub async fn headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path == "/v1" || path.starts_with("/v1/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        );
    }
    response
}
