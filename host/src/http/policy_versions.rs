//! Canary versions and inspection of a policy (a tree's or the platform's):
//! promote the shadow version, clear the shadow, read a version's source,
//! delete a policy that no longer runs.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, Path};
use super::policies::PolicyView;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::policy_versions::PolicySource;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(promote_policy))
        .routes(routes!(clear_policy_shadow))
        .routes(routes!(policy_source))
        .routes(routes!(delete_policy))
        .routes(routes!(promote_platform_policy))
        .routes(routes!(clear_platform_policy_shadow))
        .routes(routes!(platform_policy_source))
        .routes(routes!(delete_platform_policy))
}

fn source_response(source: PolicySource) -> Response {
    match source {
        PolicySource::Rhai(text) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        PolicySource::Wasm(bytes) => {
            ([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response()
        }
    }
}

/// Promote the version running in shadow: it is enforced from now on and
/// the version enforced until now is retired, in one step (409 when no
/// version runs in shadow).
#[utoipa::path(post, path = "/v1/accounts/{parent_id}/policies/{policy_id}/promote", tag = "policies",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn promote_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id)): Path<(String, String)>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .promote_policy(&p, Some(&parent_id), &policy_id)
        .await?;
    Ok(Json(info.into()))
}

/// Stop the version running in shadow; the enforced version keeps running.
#[utoipa::path(delete, path = "/v1/accounts/{parent_id}/policies/{policy_id}/shadow", tag = "policies",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn clear_policy_shadow(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id)): Path<(String, String)>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .clear_policy_shadow(&p, Some(&parent_id), &policy_id)
        .await?;
    Ok(Json(info.into()))
}

/// The source of a version as uploaded: the Rhai script (`text/plain`) or
/// the Wasm component (`application/wasm`).
#[utoipa::path(get, path = "/v1/accounts/{parent_id}/policies/{policy_id}/versions/{version}/source", tag = "policies",
    responses((status = 200, description = "The Rhai script or the Wasm component",
        content((String = "text/plain"), (Vec<u8> = "application/wasm"))),
        (status = "4XX", body = Problem)))]
async fn policy_source(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id, version)): Path<(String, String, i64)>,
) -> Result<Response> {
    let source = s
        .canopy
        .policy_source(&p, Some(&parent_id), &policy_id, version)
        .await?;
    Ok(source_response(source))
}

/// Delete a policy and all its versions; 409 while a version of it is
/// enforced or in shadow (deactivate it first).
#[utoipa::path(delete, path = "/v1/accounts/{parent_id}/policies/{policy_id}", tag = "policies",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn delete_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    s.canopy
        .delete_policy(&p, Some(&parent_id), &policy_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Promote a platform policy's shadow version (operator).
#[utoipa::path(post, path = "/v1/operator/policies/{policy_id}/promote", tag = "operator",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn promote_platform_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(policy_id): Path<String>,
) -> Result<Json<PolicyView>> {
    let info = s.canopy.promote_policy(&p, None, &policy_id).await?;
    Ok(Json(info.into()))
}

/// Stop a platform policy's shadow version (operator).
#[utoipa::path(delete, path = "/v1/operator/policies/{policy_id}/shadow", tag = "operator",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn clear_platform_policy_shadow(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(policy_id): Path<String>,
) -> Result<Json<PolicyView>> {
    let info = s.canopy.clear_policy_shadow(&p, None, &policy_id).await?;
    Ok(Json(info.into()))
}

/// The source of a platform policy's version (operator).
#[utoipa::path(get, path = "/v1/operator/policies/{policy_id}/versions/{version}/source", tag = "operator",
    responses((status = 200, description = "The Rhai script or the Wasm component",
        content((String = "text/plain"), (Vec<u8> = "application/wasm"))),
        (status = "4XX", body = Problem)))]
async fn platform_policy_source(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((policy_id, version)): Path<(String, i64)>,
) -> Result<Response> {
    let source = s
        .canopy
        .policy_source(&p, None, &policy_id, version)
        .await?;
    Ok(source_response(source))
}

/// Delete a platform policy that no longer runs (operator).
#[utoipa::path(delete, path = "/v1/operator/policies/{policy_id}", tag = "operator",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn delete_platform_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(policy_id): Path<String>,
) -> Result<StatusCode> {
    s.canopy.delete_policy(&p, None, &policy_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
