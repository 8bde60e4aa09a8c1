//! Account routes: the account itself and its sub-accounts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Path, Query, cursor};
use super::operator::StatusFilter;
use super::views::{AccountView, InvitationView, List};
use super::{AppState, Problem};
use crate::Result;
use crate::ops::subaccounts::{AccountChanges, NewSubaccount};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_account, update_account, delete_subaccount))
        .routes(routes!(create_subaccount, list_subaccounts))
        .routes(routes!(suspend_subaccount))
        .routes(routes!(unsuspend_subaccount))
}

/// An account, with the fields its viewer may see.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn get_account(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    let (account, view) = s.canopy.get_account(&p, &id).await?;
    // Parents show theirs in the resource summary.
    let counts = if account.is_parent() {
        Default::default()
    } else {
        s.canopy
            .resource_counts(std::slice::from_ref(&account.id))
            .await?
    };
    let mut shown = AccountView::new(&account, &view).with_counts(&counts);
    shown.offers = super::billing::offers(&s, &account, &view).await?;
    Ok(Json(shown))
}

/// Change an account's settings.
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", request_body = AccountChanges,
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn update_account(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<AccountChanges>,
) -> Result<Json<AccountView>> {
    let (account, view) = s.canopy.update_account(&p, &id, req).await?;
    Ok(Json(AccountView::new(&account, &view)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSubaccountView {
    #[serde(flatten)]
    pub account: AccountView,
    /// Present when an invitation was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<InvitationView>,
}

/// Create a sub-account.
#[utoipa::path(post, path = "/v1/accounts/{id}/subaccounts", tag = "subaccounts", request_body = NewSubaccount,
    responses((status = 201, body = CreatedSubaccountView), (status = "4XX", body = Problem)))]
async fn create_subaccount(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewSubaccount>,
) -> Result<(StatusCode, Json<CreatedSubaccountView>)> {
    let created = s.canopy.create_subaccount(&p, &id, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSubaccountView {
            account: AccountView::new(&created.account, &created.view),
            invitation: created.invitation.map(Into::into),
        }),
    ))
}

/// List a parent's sub-accounts.
#[utoipa::path(get, path = "/v1/accounts/{id}/subaccounts", tag = "subaccounts", params(StatusFilter),
    responses((status = 200, body = List<AccountView>), (status = "4XX", body = Problem)))]
async fn list_subaccounts(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(f): Query<StatusFilter>,
) -> Result<Json<List<AccountView>>> {
    let (filter, page) = f.parts()?;
    let (page, view) = s.canopy.list_subaccounts(&p, &id, &filter, &page).await?;
    let ids: Vec<String> = page.items.iter().map(|a| a.id.clone()).collect();
    let counts = s.canopy.resource_counts(&ids).await?;
    let data = page
        .items
        .iter()
        .map(|a| AccountView::new(a, &view).with_counts(&counts))
        .collect();
    Ok(Json(List {
        data,
        next_cursor: cursor(page.next_after),
    }))
}

/// Suspend a sub-account (its parent's admin).
#[utoipa::path(post, path = "/v1/accounts/{id}/suspend", tag = "subaccounts",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn suspend_subaccount(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    let (account, view) = s.canopy.suspend_subaccount(&p, &id).await?;
    Ok(Json(AccountView::new(&account, &view)))
}

/// Reactivate a sub-account (its parent's admin).
#[utoipa::path(post, path = "/v1/accounts/{id}/unsuspend", tag = "subaccounts",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn unsuspend_subaccount(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    let (account, view) = s.canopy.unsuspend_subaccount(&p, &id).await?;
    Ok(Json(AccountView::new(&account, &view)))
}

/// Delete a sub-account at once; its data is purged after retention.
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "subaccounts",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn delete_subaccount(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    let (account, view) = s.canopy.delete_subaccount(&p, &id).await?;
    Ok(Json(AccountView::new(&account, &view)))
}
