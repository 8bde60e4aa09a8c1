//! Merge routes: requests in a parent, approval by another admin or the
//! operator, rejection.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Operator, Pagination, Path, Query, cursor};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::merges::NewMerge;
use crate::store::merges::Merge;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_merge, list_merges))
        .routes(routes!(get_merge))
        .routes(routes!(approve_merge))
        .routes(routes!(reject_merge))
        .routes(routes!(operator_approve_merge))
        .routes(routes!(operator_reject_merge))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MergeView {
    /// `mrg_...`
    pub id: String,
    /// `pending`, `completed` or `rejected`.
    #[schema(example = "pending")]
    pub status: &'static str,
    pub sources: Vec<String>,
    pub target: String,
    /// The user who requested it.
    pub requested_by: String,
    /// The user who approved or rejected it, or `operator`.
    pub decided_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<Merge> for MergeView {
    fn from(m: Merge) -> MergeView {
        MergeView {
            id: m.id,
            status: m.status.as_str(),
            sources: m.sources,
            target: m.target_id,
            requested_by: m.requested_by,
            decided_by: m.decided_by,
            created_at: m.created_at,
            decided_at: m.decided_at,
        }
    }
}

/// Request a merge of sub-accounts into one (a parent admin); another
/// admin of the parent or the operator approves it.
#[utoipa::path(post, path = "/v1/accounts/{id}/merges", tag = "merges", request_body = NewMerge,
    responses((status = 201, body = MergeView), (status = "4XX", body = Problem)))]
async fn request_merge(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewMerge>,
) -> Result<(StatusCode, Json<MergeView>)> {
    let merge = s.canopy.request_merge(&p, &id, req).await?;
    Ok((StatusCode::CREATED, Json(merge.into())))
}

/// A parent's merges, newest first.
#[utoipa::path(get, path = "/v1/accounts/{id}/merges", tag = "merges", params(Pagination),
    responses((status = 200, body = List<MergeView>), (status = "4XX", body = Problem)))]
async fn list_merges(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<MergeView>>> {
    let page = s.canopy.list_merges(&p, &id, &q.page()?).await?;
    Ok(Json(List {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// One merge.
#[utoipa::path(get, path = "/v1/accounts/{id}/merges/{merge_id}", tag = "merges",
    responses((status = 200, body = MergeView), (status = "4XX", body = Problem)))]
async fn get_merge(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, merge_id)): Path<(String, String)>,
) -> Result<Json<MergeView>> {
    Ok(Json(s.canopy.get_merge(&p, &id, &merge_id).await?.into()))
}

/// Approve a pending merge (an admin of the parent other than the
/// requester): runs it at once, irreversibly.
#[utoipa::path(post, path = "/v1/accounts/{id}/merges/{merge_id}/approve", tag = "merges",
    responses((status = 200, body = MergeView), (status = "4XX", body = Problem)))]
async fn approve_merge(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, merge_id)): Path<(String, String)>,
) -> Result<Json<MergeView>> {
    Ok(Json(
        s.canopy.approve_merge(&p, &id, &merge_id).await?.into(),
    ))
}

/// Reject a pending merge (any admin of the parent, the requester included).
#[utoipa::path(post, path = "/v1/accounts/{id}/merges/{merge_id}/reject", tag = "merges",
    responses((status = 200, body = MergeView), (status = "4XX", body = Problem)))]
async fn reject_merge(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, merge_id)): Path<(String, String)>,
) -> Result<Json<MergeView>> {
    Ok(Json(
        s.canopy.reject_merge(&p, &id, &merge_id).await?.into(),
    ))
}

/// Approve a pending merge as the operator.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/merges/{merge_id}/approve", tag = "operator",
    responses((status = 200, body = MergeView), (status = "4XX", body = Problem)))]
async fn operator_approve_merge(
    State(s): State<AppState>,
    _: Operator,
    Path((id, merge_id)): Path<(String, String)>,
) -> Result<Json<MergeView>> {
    Ok(Json(
        s.canopy
            .approve_merge_by_operator(&id, &merge_id)
            .await?
            .into(),
    ))
}

/// Reject a pending merge as the operator.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/merges/{merge_id}/reject", tag = "operator",
    responses((status = 200, body = MergeView), (status = "4XX", body = Problem)))]
async fn operator_reject_merge(
    State(s): State<AppState>,
    _: Operator,
    Path((id, merge_id)): Path<(String, String)>,
) -> Result<Json<MergeView>> {
    Ok(Json(
        s.canopy
            .reject_merge_by_operator(&id, &merge_id)
            .await?
            .into(),
    ))
}
