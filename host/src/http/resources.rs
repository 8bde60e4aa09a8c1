//! Lines and SIMs: provisioning (operator), lists, one resource, and the
//! per-place summary.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Operator, Pagination, Path, Query, cursor};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::resources::{FilterRequest, ProvisionRequest};
use crate::policy::View;
use crate::store::resources::{Counts, Resource};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(provision))
        .routes(routes!(list_resources))
        .routes(routes!(summary))
        .routes(routes!(get_resource))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Provisioned {
    /// Resources created in the Available pool.
    pub created: i64,
}

/// Provision lines or SIMs into a parent's Available pool. All or nothing:
/// an invalid or taken identifier refuses the whole batch (422 naming each).
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/resources", tag = "resources",
    request_body = ProvisionRequest,
    responses((status = 201, body = Provisioned), (status = "4XX", body = Problem)))]
async fn provision(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<ProvisionRequest>,
) -> Result<(StatusCode, Json<Provisioned>)> {
    let created = s.canopy.provision_resources(&id, req).await?;
    Ok((StatusCode::CREATED, Json(Provisioned { created })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceView {
    /// `res_...`
    pub id: String,
    #[schema(example = "sim")]
    pub kind: &'static str,
    /// E.164 for a line, ICCID for a SIM.
    pub identifier: String,
    /// The holder: a sub-account, or the parent's id while in its Available
    /// pool.
    pub account_id: String,
    /// `available` or `assigned`.
    pub place: &'static str,
    #[schema(example = "active")]
    pub status: &'static str,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// When it arrived where it is.
    pub assigned_at: DateTime<Utc>,
}

impl ResourceView {
    pub fn new(r: &Resource, _view: &View) -> ResourceView {
        ResourceView {
            id: r.id.clone(),
            kind: r.kind.as_str(),
            identifier: r.identifier.clone(),
            account_id: r.account_id.clone(),
            place: if r.is_available() {
                "available"
            } else {
                "assigned"
            },
            status: r.status.as_str(),
            tags: r.tags.clone(),
            created_at: r.created_at,
            assigned_at: r.assigned_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResourceQuery {
    /// `line` or `sim`.
    pub kind: Option<String>,
    pub status: Option<String>,
    /// `available` (the parent's pool) or `assigned` (held by a sub-account).
    pub place: Option<String>,
    pub tag: Option<String>,
    /// Start of the identifier, e.g. `+4420` or `8944`.
    pub prefix: Option<String>,
    /// Held by this account (for a parent: one of its sub-accounts, or its
    /// own id for the Available pool).
    pub account_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// Lines and SIMs in reach: a parent's whole tree, a sub-account's own.
#[utoipa::path(get, path = "/v1/accounts/{id}/resources", tag = "resources", params(ResourceQuery),
    responses((status = 200, body = List<ResourceView>), (status = "4XX", body = Problem)))]
async fn list_resources(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<ResourceQuery>,
) -> Result<Json<List<ResourceView>>> {
    let filter = FilterRequest {
        kind: q.kind,
        status: q.status,
        place: q.place,
        tag: q.tag,
        prefix: q.prefix,
        account_id: q.account_id,
    }
    .check("")?;
    let page = Pagination {
        limit: q.limit,
        cursor: q.cursor,
        created_after: q.created_after,
        created_before: q.created_before,
    }
    .page()?;
    let (page, view) = s.canopy.list_resources(&p, &id, filter, &page).await?;
    Ok(Json(List {
        data: page
            .items
            .iter()
            .map(|r| ResourceView::new(r, &view))
            .collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// One line or SIM.
#[utoipa::path(get, path = "/v1/accounts/{id}/resources/{resource_id}", tag = "resources",
    responses((status = 200, body = ResourceView), (status = "4XX", body = Problem)))]
async fn get_resource(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, resource_id)): Path<(String, String)>,
) -> Result<Json<ResourceView>> {
    let (r, view) = s.canopy.get_resource(&p, &id, &resource_id).await?;
    Ok(Json(ResourceView::new(&r, &view)))
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CountsView {
    /// Lines that are not disconnected.
    pub line: i64,
    /// SIMs that are not terminated.
    pub sim: i64,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> CountsView {
        CountsView {
            line: c.line,
            sim: c.sim,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryGroupView {
    /// The holder; the parent's id for the Available pool.
    pub account_id: String,
    /// The sub-account's name, or `Available`.
    pub name: String,
    pub lines: i64,
    pub sims: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ResourceSummaryView)]
pub struct SummaryView {
    /// The Available pool first, then each sub-account that holds any.
    pub groups: Vec<SummaryGroupView>,
    pub total: CountsView,
}

/// Live lines and SIMs per place in a parent's tree.
#[utoipa::path(get, path = "/v1/accounts/{id}/resources/summary", tag = "resources",
    responses((status = 200, body = SummaryView), (status = "4XX", body = Problem)))]
async fn summary(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<SummaryView>> {
    let groups = s.canopy.resource_summary(&p, &id).await?;
    let total = groups.iter().fold(Counts::default(), |t, g| Counts {
        line: t.line + g.counts.line,
        sim: t.sim + g.counts.sim,
    });
    Ok(Json(SummaryView {
        groups: groups
            .into_iter()
            .map(|g| SummaryGroupView {
                account_id: g.account_id,
                name: g.name,
                lines: g.counts.line,
                sims: g.counts.sim,
            })
            .collect(),
        total: total.into(),
    }))
}
