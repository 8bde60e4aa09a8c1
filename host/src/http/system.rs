//! Health, readiness, metrics, the OpenAPI document and the docs page.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A readable page of every route, built from the OpenAPI document.
async fn docs(State(s): State<AppState>) -> Html<String> {
    let spec: serde_json::Value = serde_json::from_str(&s.openapi).unwrap_or_default();
    let mut rows = String::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, ops) in paths {
            for (method, op) in ops.as_object().into_iter().flatten() {
                let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
                    .unwrap_or_default();
                rows.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                    method.to_uppercase(),
                    escape(path),
                    escape(op["summary"].as_str().unwrap_or("")),
                    escape(&body)
                ));
            }
        }
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Canopy API</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.3em .8em;border-bottom:1px solid #ddd}}</style></head>\
         <body><h1>Canopy API</h1><p>Every route, generated from the server's own \
         <a href=\"/openapi.json\">OpenAPI document</a>. Errors are <code>application/problem+json</code> \
         with a stable <code>code</code>.</p><table><tr><th>Method</th><th>Path</th><th>What it does</th><th>Body</th></tr>\
         {rows}</table></body></html>"
    ))
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

/// Headers every response carries: `nosniff` everywhere, and `no-store` on
/// the API, whose responses may carry secrets (keys, invitation tokens).
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
    response
}
