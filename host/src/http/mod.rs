//! The HTTP API: one router per resource, the caller extractor, the
//! problem+json error, idempotency, health, metrics and the OpenAPI document
//! generated from the handlers. Handlers call `ops` only.

mod accounts;
mod analytics;
mod billing;
mod campaigns;
mod conversations;
mod error;
mod exports;
mod extract;
mod idempotency;
mod identity;
pub(crate) mod members;
mod membership;
mod merges;
pub(crate) mod money;
mod observe;
mod openapi;
mod operations;
pub(crate) mod operator;
mod params;
mod platform_settings;
pub(crate) mod policies;
pub(crate) mod policy_upload;
mod policy_versions;
mod resources;
mod sessions;
mod system;
pub(crate) mod views;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use crate::metrics::Metrics;
pub use error::Problem;
pub use extract::{Path, Query, body_bytes, cursor, parse_json};
pub use observe::request_id;

use crate::ops::Canopy;

/// Largest request body (API.md).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub canopy: Arc<Canopy>,
    pub metrics: Arc<Metrics>,
    /// Whether `POST /v1/operator/clock` is enabled.
    pub test_clock: bool,
    pub openapi: Arc<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Canopy", description = "Sub-account engine: the account tree, users and roles, and policies.", version = "0.1.0"),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes with their OpenAPI document.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(operator::router())
        .merge(accounts::router())
        .merge(members::router())
        .merge(identity::router())
        .merge(money::router())
        .merge(billing::router())
        .merge(operations::router())
        .merge(policies::router())
        .merge(merges::router())
        .merge(platform_settings::router())
        .merge(resources::router())
        .merge(conversations::router())
        .merge(analytics::router())
        .merge(campaigns::router())
        .merge(webhooks::router())
        .merge(system::router())
        .merge(sessions::router())
        .merge(membership::router())
        .merge(exports::router())
        .split_for_parts()
}

async fn keep_reader(
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    crate::store::held::scope(next.run(req)).await
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi_json() -> String {
    openapi::document(&api().1)
}

pub fn router(canopy: Arc<Canopy>, metrics: Arc<Metrics>, test_clock: bool) -> Router {
    let (routes, openapi) = api();
    let known_queries = Arc::new(params::KnownQueries::from_openapi(&openapi));
    let state = AppState {
        canopy,
        metrics,
        test_clock,
        openapi: Arc::new(openapi::document(&openapi)),
    };
    // Idempotency wraps each matched route, so it knows the route and its
    // decoded parameters; outside it, query parameters the route does not
    // take are refused. Every route notes its template for the access log
    // and the metrics (`observe`).
    routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .route_layer(middleware::from_fn_with_state(known_queries, params::layer))
        .merge(system::unlisted())
        .merge(crate::console::router())
        .route_layer(middleware::from_fn(observe::tag_route))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        // A request's reads share one connection (`store::held`).
        .layer(middleware::from_fn(keep_reader))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .layer(middleware::from_fn(system::headers))
        .with_state(state)
}
