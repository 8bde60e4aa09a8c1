//! Campaign routes (API.md, "Traffic"): scheduling, progress, cancel, and
//! the operator's read of a tree's campaigns.

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
use crate::ops::Paged;
use crate::ops::campaigns::NewCampaign;
use crate::store::campaigns::Campaign;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(get_campaign))
        .routes(routes!(cancel_campaign))
        .routes(routes!(operator_list_campaigns))
}

/// A campaign and its progress. It carries no price: what each message
/// cost is on the messages and in the ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    /// `cmp_...`
    pub id: String,
    pub account_id: String,
    pub name: String,
    #[schema(example = "sms")]
    pub channel: String,
    /// The line it is sent from, if one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub body: String,
    /// `scheduled`, `queued` (held by a suspension), `sending`,
    /// `completed`, `stopped` (see `stop_reason`), `canceled` or `deleted`.
    #[schema(example = "scheduled")]
    pub status: &'static str,
    /// Why a `stopped` campaign ended early: `insufficient_funds`,
    /// `account_not_active`, `channel_disabled`, `no_price`,
    /// `line_not_held` or `currency_changed`.
    pub stop_reason: Option<String>,
    /// Recipients.
    pub total: i64,
    /// Recipients sent (and charged) so far.
    pub sent: i64,
    pub failed: i64,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Campaign> for CampaignView {
    fn from(k: Campaign) -> CampaignView {
        CampaignView {
            id: k.id,
            account_id: k.account_id,
            name: k.name,
            channel: k.channel,
            from: (!k.line.is_empty()).then_some(k.line),
            body: k.body,
            status: k.status.as_str(),
            stop_reason: k.stop_reason,
            total: k.total,
            sent: k.sent,
            failed: k.failed,
            scheduled_at: k.scheduled_at,
            created_at: k.created_at,
            started_at: k.started_at,
            finished_at: k.finished_at,
        }
    }
}

fn page(p: Paged<Campaign>) -> Json<List<CampaignView>> {
    Json(List {
        data: p.items.into_iter().map(CampaignView::from).collect(),
        next_cursor: cursor(p.next_after),
    })
}

/// Schedule a campaign: one charged message to each recipient at `scheduled_at`.
#[utoipa::path(post, path = "/v1/accounts/{id}/campaigns", tag = "campaigns", request_body = NewCampaign,
    responses((status = 201, body = CampaignView), (status = "4XX", body = Problem)))]
async fn create_campaign(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewCampaign>,
) -> Result<(StatusCode, Json<CampaignView>)> {
    let (campaign, _view) = s.canopy.create_campaign(&p, &id, req).await?;
    Ok((StatusCode::CREATED, Json(campaign.into())))
}

/// The account's campaigns, newest first.
#[utoipa::path(get, path = "/v1/accounts/{id}/campaigns", tag = "campaigns", params(Pagination),
    responses((status = 200, body = List<CampaignView>), (status = "4XX", body = Problem)))]
async fn list_campaigns(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<CampaignView>>> {
    let (paged, _view) = s.canopy.list_campaigns(&p, &id, &q.page()?).await?;
    Ok(page(paged))
}

/// One campaign and its progress (`sent` grows while it is `sending`).
#[utoipa::path(get, path = "/v1/accounts/{id}/campaigns/{campaign_id}", tag = "campaigns",
    responses((status = 200, body = CampaignView), (status = "4XX", body = Problem)))]
async fn get_campaign(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, campaign_id)): Path<(String, String)>,
) -> Result<Json<CampaignView>> {
    let (campaign, _view) = s.canopy.get_campaign(&p, &id, &campaign_id).await?;
    Ok(Json(campaign.into()))
}

/// Cancel a campaign: nothing more is sent; what was sent stays sent.
#[utoipa::path(post, path = "/v1/accounts/{id}/campaigns/{campaign_id}/cancel", tag = "campaigns",
    responses((status = 200, body = CampaignView), (status = "4XX", body = Problem)))]
async fn cancel_campaign(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, campaign_id)): Path<(String, String)>,
) -> Result<Json<CampaignView>> {
    let (campaign, _view) = s.canopy.cancel_campaign(&p, &id, &campaign_id).await?;
    Ok(Json(campaign.into()))
}

/// A tree's campaigns (a parent: its whole tree's; a sub-account: its own), also while it is suspended.
#[utoipa::path(get, path = "/v1/operator/accounts/{id}/campaigns", tag = "operator", params(Pagination),
    responses((status = 200, body = List<CampaignView>), (status = "4XX", body = Problem)))]
async fn operator_list_campaigns(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<CampaignView>>> {
    Ok(page(
        s.canopy.operator_list_campaigns(&id, &q.page()?).await?,
    ))
}
