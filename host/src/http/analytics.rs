//! Analytics routes (API.md, "Traffic"; definitions in docs/TRAFFIC.md).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, Pagination, Path, Query, cursor};
use super::{AppState, Problem};
use crate::Result;
use crate::domain::traffic::response_rate;
use crate::ops::analytics::{Report, Request, Row};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(analytics))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// First day (UTC, `YYYY-MM-DD`; by month also `YYYY-MM`), included.
    pub from: String,
    /// Last day, included (at most 366 days by day, 120 months by month).
    pub to: String,
    /// `day` (default) or `month`.
    pub granularity: Option<String>,
    /// `subaccount` (parents): one row per sub-account and the parent's own, over the range.
    pub by: Option<String>,
    /// With `by=subaccount`: sub-accounts per page (default 100, at most 1000).
    pub limit: Option<i64>,
    /// With `by=subaccount`: `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnalyticsRow {
    /// The period's first day (`YYYY-MM-DD`) or month (`YYYY-MM`); absent in rows by sub-account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Rows by sub-account: the account (the parent's own row first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `parent` or `subaccount`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub sent: i64,
    pub received: i64,
    pub conversations_new: i64,
    /// Conversations with an outbound message in the period.
    pub conversations_outbound: i64,
    pub conversations_responded: i64,
    /// responded / outbound conversations, 4 places.
    #[schema(example = "0.5000")]
    pub response_rate: String,
    /// The prices of the period's messages (group `usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<String>,
    /// Share of the sub-account's monthly usage limit its messages used (rows of one month; group `usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_limit_used: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnalyticsView {
    /// `day` or `month`.
    pub granularity: String,
    pub from: String,
    pub to: String,
    /// Group `usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub series: Vec<AnalyticsRow>,
    /// Sums of the rows (of this page, by sub-account); response_rate = summed responded / summed outbound.
    pub totals: AnalyticsRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn row_view(r: Row) -> AnalyticsRow {
    let c = r.counts;
    AnalyticsRow {
        start: r.start,
        account_id: r.account.as_ref().map(|a| a.account_id.clone()),
        name: r.account.as_ref().map(|a| a.name.clone()),
        kind: r.account.as_ref().map(|a| a.kind.clone()),
        sent: c.sent,
        received: c.received,
        conversations_new: c.conversations_new,
        conversations_outbound: c.conversations_outbound,
        conversations_responded: c.conversations_responded,
        response_rate: response_rate(c.conversations_responded, c.conversations_outbound),
        spend: r.spend.map(|a| a.to_api_string()),
        volume_limit_used: r.volume_limit_used,
    }
}

/// Messages and conversations by day or month, from the counters kept on write; for a parent, its whole tree or (`by=subaccount`) one row per sub-account.
#[utoipa::path(get, path = "/v1/accounts/{id}/analytics", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = AnalyticsView), (status = "4XX", body = Problem)))]
async fn analytics(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Result<Json<AnalyticsView>> {
    let page = Pagination {
        limit: Some(
            q.limit
                .unwrap_or(crate::ops::analytics::BY_SUBACCOUNT_PAGE_DEFAULT),
        ),
        cursor: q.cursor,
        ..Pagination::default()
    }
    .page()?;
    let report: Report = s
        .canopy
        .analytics(
            &p,
            &id,
            Request {
                from: q.from,
                to: q.to,
                granularity: q.granularity,
                by: q.by,
            },
            &page,
        )
        .await?;
    Ok(Json(AnalyticsView {
        granularity: report.granularity.as_str().to_string(),
        from: report.range.first,
        to: report.range.last,
        currency: report.usage_shown.then_some(report.currency),
        series: report.rows.into_iter().map(row_view).collect(),
        totals: row_view(report.totals),
        next_cursor: cursor(report.next_after),
    }))
}
