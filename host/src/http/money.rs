//! Money routes: top-ups, budgets, balances, statements, messages,
//! notifications and the operator's reconciliation check.

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
use crate::domain::Amount;
use crate::ops::messages::NewMessage;
use crate::ops::money::{AmountRequest, Moved, statement_balance, statement_direction};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operator_topup))
        .routes(routes!(ledger_check))
        .routes(routes!(topup))
        .routes(routes!(change_budget))
        .routes(routes!(balance))
        .routes(routes!(transactions))
        .routes(routes!(send_message, list_messages))
        .routes(routes!(list_notifications))
}

fn money(a: Amount) -> String {
    a.to_api_string()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MovedView {
    /// The transfer's id (`txn_...`).
    pub id: String,
    #[schema(example = "allocation")]
    pub kind: &'static str,
    pub amount: String,
    pub currency: String,
    /// The balance or budget the transfer left.
    pub balance_after: String,
}

impl From<Moved> for MovedView {
    fn from(m: Moved) -> MovedView {
        MovedView {
            id: m.transfer_id,
            kind: m.kind.as_str(),
            amount: money(m.amount),
            currency: m.currency,
            balance_after: money(m.balance_after),
        }
    }
}

/// Top up a prepaid parent.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/topups", tag = "operator", request_body = AmountRequest,
    responses((status = 201, body = MovedView), (status = "4XX", body = Problem)))]
async fn operator_topup(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<AmountRequest>,
) -> Result<(StatusCode, Json<MovedView>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.canopy.topup_by_operator(&id, req).await?.into()),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerCheckView {
    pub balanced: bool,
    /// Sum of every ledger account per currency; always "0" when balanced.
    pub sums: std::collections::BTreeMap<String, String>,
    pub accounts: i64,
    pub violations: Vec<String>,
}

/// Recompute every balance from the transfers and check every invariant.
#[utoipa::path(get, path = "/v1/operator/ledger/check", tag = "operator",
    responses((status = 200, body = LedgerCheckView), (status = "4XX", body = Problem)))]
async fn ledger_check(State(s): State<AppState>, _: Operator) -> Result<Json<LedgerCheckView>> {
    let r = s.canopy.ledger_check().await?;
    Ok(Json(LedgerCheckView {
        balanced: r.violations.is_empty(),
        sums: r
            .sums
            .into_iter()
            .map(|(c, v)| (c, Amount::from_micros(v).decimal().to_string()))
            .collect(),
        accounts: r.accounts,
        violations: r.violations,
    }))
}

/// Top up your prepaid parent account (its admin).
#[utoipa::path(post, path = "/v1/accounts/{id}/topups", tag = "money", request_body = AmountRequest,
    responses((status = 201, body = MovedView), (status = "4XX", body = Problem)))]
async fn topup(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<AmountRequest>,
) -> Result<(StatusCode, Json<MovedView>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.canopy.topup_by_admin(&p, &id, req).await?.into()),
    ))
}

/// Allocate budget to a sub-account (positive) or take it back (negative).
#[utoipa::path(post, path = "/v1/accounts/{id}/budget", tag = "money", request_body = AmountRequest,
    responses((status = 201, body = MovedView), (status = "4XX", body = Problem)))]
async fn change_budget(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<AmountRequest>,
) -> Result<(StatusCode, Json<MovedView>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.canopy.change_budget(&p, &id, req).await?.into()),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    pub currency: String,
    /// Prepaid parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// Assigned-budget sub-account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Postpaid parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_credit_limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent_this_month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_this_month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned_this_month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_credit: Option<String>,
    /// Shared-usage sub-account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_this_month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_usage_limit: Option<String>,
}

/// The account's balance, budget, credit or usage this month.
#[utoipa::path(get, path = "/v1/accounts/{id}/balance", tag = "money",
    responses((status = 200, body = BalanceView), (status = "4XX", body = Problem)))]
async fn balance(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<BalanceView>> {
    let b = s.canopy.balance(&p, &id).await?;
    Ok(Json(BalanceView {
        currency: b.currency,
        balance: b.balance.map(money),
        budget: b.budget.map(money),
        monthly_credit_limit: b.monthly_credit_limit.map(money),
        spent_this_month: b.spent_this_month.map(money),
        allocated_this_month: b.allocated_this_month.map(money),
        returned_this_month: b.returned_this_month.map(money),
        available_credit: b.available_credit.map(money),
        used_this_month: b.used_this_month.map(money),
        monthly_usage_limit: b.monthly_usage_limit.map(money),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransactionView {
    pub id: String,
    #[schema(example = "usage")]
    pub kind: String,
    /// The amount moved, unsigned.
    pub amount: String,
    /// `in` when the transfer added to this account's money, `out` when it
    /// took from it (spending, budget returned, allocations to sub-accounts).
    #[schema(example = "out")]
    pub direction: &'static str,
    /// `amount` signed from this account's side: negative when `out`.
    #[schema(example = "-0.0075")]
    pub signed_amount: String,
    pub currency: String,
    /// Ledger account debited.
    pub from: String,
    /// Ledger account credited.
    pub to: String,
    /// What the transfer left in this account's own ledger account (the
    /// viewer's balance or budget, whichever side of the transfer it was
    /// on); absent when the account has none in it (shared usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_after: Option<String>,
    /// The account the transfer was for.
    pub account_id: String,
    pub reference: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Ledger transfers touching the account.
#[utoipa::path(get, path = "/v1/accounts/{id}/transactions", tag = "money", params(Pagination),
    responses((status = 200, body = List<TransactionView>), (status = "4XX", body = Problem)))]
async fn transactions(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<TransactionView>>> {
    let (page, account_id) = s.canopy.transactions(&p, &id, &q.page()?).await?;
    let data = page
        .items
        .iter()
        .map(|t| TransactionView {
            id: t.id.clone(),
            kind: t.kind.clone(),
            amount: money(t.amount),
            direction: statement_direction(t, &account_id).as_str(),
            signed_amount: statement_direction(t, &account_id).signed(t.amount),
            currency: t.currency.clone(),
            from: t.debit_id.clone(),
            to: t.credit_id.clone(),
            balance_after: statement_balance(t, &account_id).map(money),
            account_id: t.subject_id.clone(),
            reference: t.reference.clone(),
            created_at: t.created_at,
        })
        .collect();
    Ok(Json(List {
        data,
        next_cursor: cursor(page.next_after),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    #[schema(example = "sent")]
    pub status: String,
    pub channel: String,
    #[schema(example = "outbound")]
    pub direction: crate::store::messages::Direction,
    /// The account's line the message went from (outbound) or came to (inbound); absent when none was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub body: String,
    /// The sender (outbound); for an inbound message, the user who last wrote in its conversation.
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Group `pricing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) fn message_view(
    m: &crate::store::messages::Message,
    view: &crate::policy::View,
) -> MessageView {
    use crate::store::messages::Direction;
    let priced = !view.hides("pricing");
    MessageView {
        id: m.id.clone(),
        status: m.status.clone(),
        channel: m.channel.clone(),
        direction: m.direction,
        from: match m.direction {
            Direction::Outbound => (!m.line.is_empty()).then(|| m.line.clone()),
            Direction::Inbound => Some(m.remote.clone()),
        },
        to: match m.direction {
            Direction::Outbound => m.remote.clone(),
            Direction::Inbound => m.line.clone(),
        },
        body: m.body.clone(),
        user_id: m.user_id.clone(),
        conversation_id: m.conversation_id.clone(),
        campaign_id: m.campaign_id.clone(),
        price: priced.then(|| money(m.price)),
        currency: priced.then(|| m.currency.clone()),
        created_at: m.created_at,
    }
}

/// Send a message, charged to the right ledger account (no real message leaves the host).
#[utoipa::path(post, path = "/v1/accounts/{id}/messages", tag = "messages", request_body = NewMessage,
    responses((status = 201, body = MessageView), (status = "4XX", body = Problem)))]
async fn send_message(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewMessage>,
) -> Result<(StatusCode, Json<MessageView>)> {
    let (message, view) = s.canopy.send_message(&p, &id, req).await?;
    Ok((StatusCode::CREATED, Json(message_view(&message, &view))))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Items per page (default 50, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// The account's messages, newest first (basic users: only their own, and the replies to them).
#[utoipa::path(get, path = "/v1/accounts/{id}/messages", tag = "messages", params(MessageQuery),
    responses((status = 200, body = List<MessageView>), (status = "4XX", body = Problem)))]
async fn list_messages(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Result<Json<List<MessageView>>> {
    let direction = q
        .direction
        .as_deref()
        .map(|d| {
            crate::store::messages::Direction::parse(d).ok_or_else(|| {
                crate::Error::invalid("direction", "must be `inbound` or `outbound`")
            })
        })
        .transpose()?;
    let page = Pagination {
        limit: q.limit,
        cursor: q.cursor,
        created_after: q.created_after,
        created_before: q.created_before,
    }
    .page()?;
    let (page, view) = s.canopy.list_messages(&p, &id, direction, &page).await?;
    let data = page.items.iter().map(|m| message_view(m, &view)).collect();
    Ok(Json(List {
        data,
        next_cursor: cursor(page.next_after),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    #[schema(example = "low_balance")]
    pub kind: String,
    /// Group `balance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// The budget when the alert fired; group `balance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    pub emails: Vec<String>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What the account was notified of.
#[utoipa::path(get, path = "/v1/accounts/{id}/notifications", tag = "money", params(Pagination),
    responses((status = 200, body = List<NotificationView>), (status = "4XX", body = Problem)))]
async fn list_notifications(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<NotificationView>>> {
    let (page, view) = s.canopy.list_notifications(&p, &id, &q.page()?).await?;
    let shown = !view.hides("balance");
    let data = page
        .items
        .iter()
        .map(|n| NotificationView {
            id: n.id.clone(),
            kind: n.kind.clone(),
            threshold: n.threshold.filter(|_| shown).map(money),
            budget: n.budget.filter(|_| shown).map(money),
            emails: n.emails.clone(),
            delivered_at: n.delivered_at,
            created_at: n.created_at,
        })
        .collect();
    Ok(Json(List {
        data,
        next_cursor: cursor(page.next_after),
    }))
}
