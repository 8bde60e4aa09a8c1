//! Operator routes: parent accounts, their switches and status, the clock
//! under `--test-clock`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Operator, Pagination, Path, Query, cursor};
use super::views::{AccountView, InvitationView, List, SecretKeyView, UserView};
use super::{AppState, Problem};
use crate::domain::Status;
use crate::ops::parents::{NewParent, ParentChanges};
use crate::store::accounts::{ParentFilter, SubaccountFilter};
use crate::{Error, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_parent, list_parents))
        .routes(routes!(get_parent, update_parent, delete_parent))
        .routes(routes!(list_parent_subaccounts))
        .routes(routes!(suspend_parent))
        .routes(routes!(unsuspend_parent))
        .routes(routes!(set_clock))
}

/// A parent as the `visibility` hook lets the operator see it.
async fn shown(s: &AppState, account: crate::domain::Account) -> Result<Json<AccountView>> {
    let view = s.canopy.parent_view(&account).await?;
    let mut shown = AccountView::new(&account, &view);
    shown.offers = super::billing::offers(s, &account, &view).await?;
    Ok(Json(shown))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedParentView {
    pub account: AccountView,
    pub admin: UserView,
    pub api_key: SecretKeyView,
    /// Lets the admin set a password for sessions.
    pub invitation: InvitationView,
    /// What the parent still lacks to work (e.g. no `prices`: every charged
    /// message would be refused until the operator sets them); absent when
    /// nothing is missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ParentWarning>,
}

/// Something a new parent lacks, with a stable `code`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParentWarning {
    #[schema(example = "no_prices")]
    pub code: &'static str,
    pub message: String,
}

fn parent_warnings(account: &crate::domain::Account) -> Vec<ParentWarning> {
    let mut warnings = Vec::new();
    if account.prices.is_empty() {
        warnings.push(ParentWarning {
            code: "no_prices",
            message: "the parent has no prices, so sending a message is refused until the operator sets them (`PATCH /v1/operator/accounts/{id}` with `prices`)".into(),
        });
    }
    warnings
}

/// Create a parent account and its first admin.
#[utoipa::path(post, path = "/v1/operator/accounts", tag = "operator", request_body = NewParent,
    responses((status = 201, body = CreatedParentView), (status = "4XX", body = Problem)))]
async fn create_parent(
    State(s): State<AppState>,
    _: Operator,
    Body(req): Body<NewParent>,
) -> Result<(StatusCode, Json<CreatedParentView>)> {
    let created = s.canopy.create_parent(req).await?;
    let view = s.canopy.parent_view(&created.account).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedParentView {
            account: AccountView::new(&created.account, &view),
            admin: (&created.admin).into(),
            api_key: created.api_key.into(),
            invitation: created.invitation.into(),
            warnings: parent_warnings(&created.account),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ParentSearch {
    /// Only parents in this status (default: every status).
    pub status: Option<String>,
    /// Only parents whose name contains this text, compared without case
    /// (as names are for uniqueness).
    pub name: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl ParentSearch {
    fn parts(&self) -> Result<(ParentFilter, crate::ops::Page)> {
        let filter = parent_filter(self.status.as_deref(), self.name.as_deref())?;
        let page = Pagination {
            limit: self.limit,
            cursor: self.cursor.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
        }
        .page()?;
        Ok((filter, page))
    }
}

/// The filter of a parent search, checked as the API checks it (the console
/// uses it too).
pub fn parent_filter(status: Option<&str>, name: Option<&str>) -> Result<ParentFilter> {
    let status = status
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                Error::invalid("status", "must be invited, active, suspended or deleted")
            })
        })
        .transpose()?;
    if let Some(n) = name
        && (n.is_empty() || n.chars().count() > SEARCH_LEN_MAX)
    {
        return Err(Error::invalid(
            "name",
            format!("must be 1 to {SEARCH_LEN_MAX} characters"),
        ));
    }
    Ok(ParentFilter {
        status,
        name: name.map(crate::domain::NameKey::of),
    })
}

/// List parent accounts, newest first; `?name=` finds them by a part of
/// the name, `?status=` by status.
#[utoipa::path(get, path = "/v1/operator/accounts", tag = "operator", params(ParentSearch),
    responses((status = 200, body = List<AccountView>), (status = "4XX", body = Problem)))]
async fn list_parents(
    State(s): State<AppState>,
    _: Operator,
    Query(q): Query<ParentSearch>,
) -> Result<Json<List<AccountView>>> {
    let (filter, page) = q.parts()?;
    let (page, view) = s.canopy.list_parents(&filter, &page).await?;
    Ok(Json(List {
        data: page
            .items
            .iter()
            .map(|a| AccountView::new(a, &view))
            .collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// One parent account.
#[utoipa::path(get, path = "/v1/operator/accounts/{id}", tag = "operator",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn get_parent(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    shown(&s, s.canopy.get_parent(&id).await?).await
}

/// Change a parent: modules, limits, prices, channels, currency, region.
#[utoipa::path(patch, path = "/v1/operator/accounts/{id}", tag = "operator", request_body = ParentChanges,
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn update_parent(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Body(req): Body<ParentChanges>,
) -> Result<Json<AccountView>> {
    shown(&s, s.canopy.update_parent(&id, req).await?).await
}

/// Delete a parent and all its sub-accounts.
#[utoipa::path(delete, path = "/v1/operator/accounts/{id}", tag = "operator",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn delete_parent(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    shown(&s, s.canopy.delete_parent(&id).await?).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatusFilter {
    /// Only sub-accounts in this status (default: all but deleted).
    pub status: Option<String>,
    /// Only sub-accounts whose name contains this text, compared without
    /// case (as names are for uniqueness).
    pub name: Option<String>,
    /// Only the sub-account with exactly this external id.
    pub external_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl StatusFilter {
    pub fn parts(&self) -> Result<(SubaccountFilter, crate::ops::Page)> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                Status::parse(s).ok_or_else(|| {
                    Error::invalid("status", "must be invited, active, suspended or deleted")
                })
            })
            .transpose()?;
        let bounded = |field: &str, text: &Option<String>| -> Result<()> {
            match text {
                Some(t) if t.is_empty() || t.chars().count() > SEARCH_LEN_MAX => Err(
                    Error::invalid(field, format!("must be 1 to {SEARCH_LEN_MAX} characters")),
                ),
                _ => Ok(()),
            }
        };
        bounded("name", &self.name)?;
        bounded("external_id", &self.external_id)?;
        let page = Pagination {
            limit: self.limit,
            cursor: self.cursor.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
        }
        .page()?;
        let filter = SubaccountFilter {
            status,
            name: self.name.as_deref().map(crate::domain::NameKey::of),
            external_id: self.external_id.clone(),
        };
        Ok((filter, page))
    }
}

/// Longest `?name=` or `?external_id=` a sub-account search takes.
pub(crate) const SEARCH_LEN_MAX: usize = 200;

/// A parent's sub-accounts, of every status.
#[utoipa::path(get, path = "/v1/operator/accounts/{id}/subaccounts", tag = "operator", params(StatusFilter),
    responses((status = 200, body = List<AccountView>), (status = "4XX", body = Problem)))]
async fn list_parent_subaccounts(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Query(f): Query<StatusFilter>,
) -> Result<Json<List<AccountView>>> {
    let (filter, page) = f.parts()?;
    let (page, view) = s
        .canopy
        .list_parent_subaccounts(&id, &filter, &page)
        .await?;
    let ids: Vec<String> = page.items.iter().map(|a| a.id.clone()).collect();
    let counts = s.canopy.resource_counts(&ids).await?;
    Ok(Json(List {
        data: page
            .items
            .iter()
            .map(|a| AccountView::new(a, &view).with_counts(&counts))
            .collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// Suspend a parent; the cascade policy says what follows.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/suspend", tag = "operator",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn suspend_parent(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    shown(&s, s.canopy.suspend_parent(&id).await?).await
}

/// Reactivate a parent; each sub-account its suspension took comes back.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/unsuspend", tag = "operator",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)))]
async fn unsuspend_parent(
    State(s): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountView>> {
    shown(&s, s.canopy.unsuspend_parent(&id).await?).await
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockSetting {
    /// RFC 3339.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Move the server's clock (only with `--test-clock`; 404 otherwise).
#[utoipa::path(post, path = "/v1/operator/clock", tag = "operator", request_body = ClockSetting,
    responses((status = 200, body = ClockSetting), (status = "4XX", body = Problem)))]
async fn set_clock(
    State(s): State<AppState>,
    _: Operator,
    Body(req): Body<ClockSetting>,
) -> Result<Json<ClockSetting>> {
    if !s.test_clock {
        return Err(Error::NotFound(
            "the clock can be moved only on a server started with --test-clock".into(),
        ));
    }
    s.canopy.clock.set(req.now);
    Ok(Json(ClockSetting {
        now: s.canopy.clock.now(),
    }))
}
