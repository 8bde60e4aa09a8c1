//! Offers, their assignment, the billing summary, adjustments and
//! invoices (JSON and CSV). Offers and fees are in visibility group `plan`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Operator, Pagination, Path, Query, cursor};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::clock::from_us;
use crate::domain::Amount;
use crate::domain::billing::{Bill, Group, Item};
use crate::ops::billing::{NewAdjustment, NewOffer, OfferAssignment, PlaceOffers};
use crate::store::billing::{Adjustment, Invoice, Offer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_offer, list_offers))
        .routes(routes!(assign_offer))
        .routes(routes!(create_adjustment))
        .routes(routes!(billing_summary))
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
}

fn money(micros: i64) -> String {
    Amount::from_micros(micros).to_api_string()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfferView {
    pub id: String,
    pub name: String,
    #[schema(example = "line")]
    pub kind: &'static str,
    pub monthly_fee: String,
    pub currency: String,
    /// Units included each month, such as `{"sms": 100}`.
    pub included: BTreeMap<String, i64>,
    pub created_at: DateTime<Utc>,
}

impl From<&Offer> for OfferView {
    fn from(o: &Offer) -> OfferView {
        OfferView {
            id: o.id.clone(),
            name: o.name.clone(),
            kind: o.kind.as_str(),
            monthly_fee: money(o.monthly_fee_micros),
            currency: o.currency.clone(),
            included: serde_json::from_str(&o.included).unwrap_or_default(),
            created_at: from_us(o.created_at),
        }
    }
}

/// Create an offer (rate plan).
#[utoipa::path(post, path = "/v1/operator/offers", tag = "billing", request_body = NewOffer,
    responses((status = 201, body = OfferView), (status = "4XX", body = Problem)))]
async fn create_offer(
    State(s): State<AppState>,
    _: Operator,
    Body(req): Body<NewOffer>,
) -> Result<(StatusCode, Json<OfferView>)> {
    let offer = s.canopy.create_offer(req).await?;
    Ok((StatusCode::CREATED, Json((&offer).into())))
}

/// Offers, newest first.
#[utoipa::path(get, path = "/v1/operator/offers", tag = "billing", params(Pagination),
    responses((status = 200, body = List<OfferView>), (status = "4XX", body = Problem)))]
async fn list_offers(
    State(s): State<AppState>,
    _: Operator,
    Query(p): Query<Pagination>,
) -> Result<Json<List<OfferView>>> {
    let page = s.canopy.list_offers(&p.page()?).await?;
    Ok(Json(List {
        data: page.items.iter().map(OfferView::from).collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// A place's offer per kind (absent: the parent's default applies).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OffersView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim: Option<String>,
}

impl From<PlaceOffers> for OffersView {
    fn from(o: PlaceOffers) -> OffersView {
        OffersView {
            line: o.line,
            sim: o.sim,
        }
    }
}

/// A place's offers for an account read: absent where `visibility`
/// hides group `plan`.
pub async fn offers(
    s: &AppState,
    account: &crate::domain::Account,
    view: &crate::policy::View,
) -> Result<Option<OffersView>> {
    if view.hides("plan") {
        return Ok(None);
    }
    Ok(Some(s.canopy.offers_of(&account.id).await?.into()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssignedView {
    pub account_id: String,
    pub offers: OffersView,
}

/// Assign an offer to a sub-account (its parent's admin).
#[utoipa::path(put, path = "/v1/accounts/{id}/offer", tag = "billing", request_body = OfferAssignment,
    responses((status = 200, body = AssignedView), (status = "4XX", body = Problem)))]
async fn assign_offer(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<OfferAssignment>,
) -> Result<Json<AssignedView>> {
    let offers = s.canopy.assign_offer(&p, &id, req).await?;
    Ok(Json(AssignedView {
        account_id: id,
        offers: offers.into(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdjustmentView {
    pub id: String,
    /// The group it applies to (the parent's id: Available).
    pub account_id: String,
    #[schema(example = "credit")]
    pub kind: String,
    pub amount: String,
    pub currency: String,
    pub reason: String,
    pub period: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Adjustment> for AdjustmentView {
    fn from(a: &Adjustment) -> AdjustmentView {
        AdjustmentView {
            id: a.id.clone(),
            account_id: a.account_id.clone().unwrap_or_else(|| a.tree_id.clone()),
            kind: a.kind.clone(),
            amount: money(a.amount_micros),
            currency: a.currency.clone(),
            reason: a.reason.clone(),
            period: a.period.clone(),
            created_at: from_us(a.created_at),
        }
    }
}

/// A credit or discount on a period's bill; it lowers that group's total
/// (never below zero). A closed period is 409.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/adjustments", tag = "billing", request_body = NewAdjustment,
    responses((status = 201, body = AdjustmentView), (status = "4XX", body = Problem)))]
async fn create_adjustment(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<NewAdjustment>,
) -> Result<(StatusCode, Json<AdjustmentView>)> {
    let a = s.canopy.create_adjustment(&id, req).await?;
    Ok((StatusCode::CREATED, Json((&a).into())))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    /// A sub-account, or the parent's id for the Available pool.
    pub account_id: String,
    pub name: String,
    pub lines: u64,
    pub sims: u64,
    pub resource_days: u64,
    /// Group `plan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring: Option<String>,
    pub usage: String,
    pub discounts: String,
    pub credits: String,
    pub total: String,
    /// Invoices: what the ledger could not take at close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
}

impl GroupView {
    fn new(g: &Group, plan_hidden: bool, closed: bool) -> GroupView {
        GroupView {
            account_id: g.account_id.clone(),
            name: g.name.clone(),
            lines: g.lines,
            sims: g.sims,
            resource_days: g.resource_days,
            recurring: (!plan_hidden).then(|| money(g.recurring)),
            usage: money(g.usage),
            discounts: money(g.discounts),
            credits: money(g.credits),
            total: money(g.total),
            due: closed.then(|| money(g.due)),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryView {
    #[schema(example = "2026-11")]
    pub period: String,
    pub currency: String,
    pub groups: Vec<GroupView>,
    pub total: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PeriodFilter {
    /// `YYYY-MM` (default: the current UTC month, live).
    pub period: Option<String>,
}

/// A period's bill, grouped by sub-account and the Available pool: live
/// for the current period, the invoice's for a closed one.
#[utoipa::path(get, path = "/v1/accounts/{id}/billing/summary", tag = "billing", params(PeriodFilter),
    responses((status = 200, body = SummaryView), (status = "4XX", body = Problem)))]
async fn billing_summary(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(f): Query<PeriodFilter>,
) -> Result<Json<SummaryView>> {
    let (bill, plan_hidden) = s
        .canopy
        .billing_summary(&p, &id, f.period.as_deref())
        .await?;
    Ok(Json(SummaryView {
        period: bill.period.clone(),
        currency: bill.currency.clone(),
        groups: bill
            .groups
            .iter()
            .map(|g| GroupView::new(g, plan_hidden, false))
            .collect(),
        total: money(bill.total),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub resource_id: String,
    #[schema(example = "line")]
    pub kind: String,
    pub identifier: String,
    /// The group it is billed in.
    pub account_id: String,
    pub days: u32,
    pub amount: String,
}

impl From<&Item> for ItemView {
    fn from(i: &Item) -> ItemView {
        ItemView {
            resource_id: i.resource_id.clone(),
            kind: i.kind.clone(),
            identifier: i.identifier.clone(),
            account_id: i.account_id.clone(),
            days: i.days,
            amount: money(i.amount),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceView {
    pub id: String,
    pub period: String,
    pub currency: String,
    pub groups: Vec<GroupView>,
    pub items: Vec<ItemView>,
    pub total: String,
    /// Recurring charges the ledger took at close.
    pub charged: String,
    /// Recurring charges it could not take (a prepaid balance never goes
    /// below zero, a postpaid parent never passes its credit limit).
    pub due: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Invoice> for InvoiceView {
    fn from(i: &Invoice) -> InvoiceView {
        let b: &Bill = &i.bill;
        InvoiceView {
            id: i.id.clone(),
            period: i.period.clone(),
            currency: b.currency.clone(),
            groups: b
                .groups
                .iter()
                .map(|g| GroupView::new(g, false, true))
                .collect(),
            items: b.items.iter().map(ItemView::from).collect(),
            total: money(b.total),
            charged: money(b.charged),
            due: money(b.due),
            created_at: from_us(i.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceSummaryView {
    pub id: String,
    pub period: String,
    pub currency: String,
    pub total: String,
    pub due: String,
    pub created_at: DateTime<Utc>,
}

/// A tree's invoices, newest period first (periods that ended are closed
/// first).
#[utoipa::path(get, path = "/v1/accounts/{id}/invoices", tag = "billing", params(Pagination),
    responses((status = 200, body = List<InvoiceSummaryView>), (status = "4XX", body = Problem)))]
async fn list_invoices(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(page): Query<Pagination>,
) -> Result<Json<List<InvoiceSummaryView>>> {
    let page = s.canopy.list_invoices(&p, &id, &page.page()?).await?;
    Ok(Json(List {
        data: page
            .items
            .iter()
            .map(|i| InvoiceSummaryView {
                id: i.id.clone(),
                period: i.period.clone(),
                currency: i.bill.currency.clone(),
                total: money(i.bill.total),
                due: money(i.bill.due),
                created_at: from_us(i.created_at),
            })
            .collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// One invoice: `inv_...` as JSON, `inv_....csv` as CSV (a header, then
/// one row per group; the rows' totals sum to the invoice's).
#[utoipa::path(get, path = "/v1/accounts/{id}/invoices/{invoice}", tag = "billing",
    responses((status = 200, description = "The invoice: JSON, or CSV for `{invoice}.csv`",
        content((InvoiceView = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem)))]
async fn get_invoice(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, invoice)): Path<(String, String)>,
) -> Result<Response> {
    let (invoice_id, csv) = match invoice.strip_suffix(".csv") {
        Some(stem) => (stem, true),
        None => (invoice.as_str(), false),
    };
    let invoice = s.canopy.get_invoice(&p, &id, invoice_id).await?;
    if !csv {
        return Ok(Json(InvoiceView::from(&invoice)).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"invoice.csv\"",
            ),
        ],
        invoice_csv(&invoice.bill),
    )
        .into_response())
}

/// The CSV of a bill: one row per group.
fn invoice_csv(b: &Bill) -> String {
    let mut out = String::from(
        "account_id,name,lines,sims,resource_days,recurring,usage,discounts,credits,total,due,currency\r\n",
    );
    for g in &b.groups {
        let row = [
            csv_text(&g.account_id),
            csv_text(&g.name),
            g.lines.to_string(),
            g.sims.to_string(),
            g.resource_days.to_string(),
            money(g.recurring),
            money(g.usage),
            money(g.discounts),
            money(g.credits),
            money(g.total),
            money(g.due),
            csv_text(&b.currency),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A text cell: quoted, quotes doubled, and a leading `=`, `+`, `-`, `@`
/// or control character defused with `'` so no spreadsheet runs it as a
/// formula.
pub(crate) fn csv_text(s: &str) -> String {
    let risky = s
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let s = if risky {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_text("Acme, \"Inc\""), "\"Acme, \"\"Inc\"\"\"");
        assert_eq!(csv_text("=SUM(A1)"), "\"'=SUM(A1)\"");
        let mut g = Group::new("acct_1", "A");
        g.recurring = 1_500_000;
        g.total = 1_500_000;
        let bill = Bill {
            period: "2026-11".into(),
            currency: "USD".into(),
            groups: vec![g],
            items: vec![],
            total: 1_500_000,
            charged: 0,
            due: 0,
        };
        let csv = invoice_csv(&bill);
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.contains("\"acct_1\",\"A\",0,0,0,1.50,0.00,0.00,0.00,1.50,0.00,\"USD\""));
    }
}
