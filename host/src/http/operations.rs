//! Bulk operations on lines and SIMs: transfers, actions, and reading their
//! progress (API.md "Resources: lines and SIMs").

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Operator, Pagination, Path, Query, cursor};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::Paged;
use crate::ops::operations::{ActionRequest, Report, TransferRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(transfer))
        .routes(routes!(act))
        .routes(routes!(list_operations))
        .routes(routes!(get_operation))
        .routes(routes!(operator_list_operations))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemErrorView {
    pub resource_id: String,
    /// `not_found`, `already_there`, `terminal_status`, `wrong_status`,
    /// `wrong_kind` or `target_not_active`.
    #[schema(example = "terminal_status")]
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperationView {
    /// `op_...`
    pub id: String,
    /// `transfer`, or the action: `activate`, `suspend`, `resume`,
    /// `terminate`, `disconnect`.
    #[schema(example = "transfer")]
    pub kind: &'static str,
    /// `queued`, `running`, `completed` or `failed`.
    #[schema(example = "running")]
    pub status: &'static str,
    /// The account it was requested in.
    pub account_id: String,
    /// A transfer's destination (the parent's id: the Available pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// The first 100 items that failed, in order.
    pub errors: Vec<ItemErrorView>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Report> for OperationView {
    fn from(r: Report) -> OperationView {
        let o = r.operation;
        OperationView {
            id: o.id,
            kind: o.kind.as_str(),
            status: o.status.as_str(),
            account_id: o.account_id,
            to: o.to_account_id,
            total: o.total,
            succeeded: o.succeeded,
            failed: o.failed,
            errors: r
                .errors
                .into_iter()
                .map(|e| ItemErrorView {
                    resource_id: e.resource_id,
                    code: e.code,
                    reason: e.reason,
                })
                .collect(),
            created_at: o.created_at,
            finished_at: o.finished_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Follow it at `GET /v1/accounts/{id}/operations/{operation.id}`.
    pub operation: OperationView,
}

fn accepted(r: Report) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            operation: r.into(),
        }),
    )
}

fn page(p: Paged<Report>) -> Json<List<OperationView>> {
    Json(List {
        data: p.items.into_iter().map(OperationView::from).collect(),
        next_cursor: cursor(p.next_after),
    })
}

/// Move lines and SIMs between the Available pool and sub-accounts (the parent's admin), as one operation.
#[utoipa::path(post, path = "/v1/accounts/{id}/resource-transfers", tag = "resources", request_body = TransferRequest,
    responses((status = 202, body = Accepted), (status = "4XX", body = Problem)))]
async fn transfer(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<TransferRequest>,
) -> Result<(StatusCode, Json<Accepted>)> {
    Ok(accepted(s.canopy.transfer_resources(&p, &id, req).await?))
}

/// Activate, suspend, resume, terminate or disconnect resources the account holds, as one operation.
#[utoipa::path(post, path = "/v1/accounts/{id}/resource-actions", tag = "resources", request_body = ActionRequest,
    responses((status = 202, body = Accepted), (status = "4XX", body = Problem)))]
async fn act(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<ActionRequest>,
) -> Result<(StatusCode, Json<Accepted>)> {
    Ok(accepted(s.canopy.act_on_resources(&p, &id, req).await?))
}

/// The account's operations, newest first (a parent: its whole tree's).
#[utoipa::path(get, path = "/v1/accounts/{id}/operations", tag = "resources", params(Pagination),
    responses((status = 200, body = List<OperationView>), (status = "4XX", body = Problem)))]
async fn list_operations(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<OperationView>>> {
    Ok(page(s.canopy.list_operations(&p, &id, &q.page()?).await?))
}

/// One operation and its progress.
#[utoipa::path(get, path = "/v1/accounts/{id}/operations/{op_id}", tag = "resources",
    responses((status = 200, body = OperationView), (status = "4XX", body = Problem)))]
async fn get_operation(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, op_id)): Path<(String, String)>,
) -> Result<Json<OperationView>> {
    Ok(Json(s.canopy.get_operation(&p, &id, &op_id).await?.into()))
}

/// A tree's operations (a parent: all of them; a sub-account: those requested in it), also while it is suspended.
#[utoipa::path(get, path = "/v1/operator/accounts/{id}/operations", tag = "operator", params(Pagination),
    responses((status = 200, body = List<OperationView>), (status = "4XX", body = Problem)))]
async fn operator_list_operations(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<OperationView>>> {
    Ok(page(
        s.canopy.operator_list_operations(&id, &q.page()?).await?,
    ))
}
