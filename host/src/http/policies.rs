//! Policies (a parent's tree, or the platform's) and the decision log.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Pagination, Path, Query, cursor};
use super::policy_upload::{ComponentBytes, PolicyUpload, RawUploadQuery, UploadForm};
use super::views::List;
use super::{AppState, Problem};
use crate::clock::from_us;
use crate::ops::policies::{Activation, PolicyInfo, PolicySettings, Upload, Uploaded};
use crate::ops::{Page, Principal};
use crate::store::decisions::{DecisionRow, Filter};
use crate::{Error, Result};

/// Largest policy upload request (API.md): a 4 MiB component in base64.
pub const UPLOAD_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_policy, list_policies))
        .routes(routes!(get_policy))
        .routes(routes!(activate_policy))
        .routes(routes!(deactivate_policy))
        .routes(routes!(upload_platform_policy, list_platform_policies))
        .routes(routes!(get_platform_policy))
        .routes(routes!(activate_platform_policy))
        .routes(routes!(deactivate_platform_policy))
        .routes(routes!(get_policy_settings, put_policy_settings))
        .routes(routes!(list_decisions))
        .routes(routes!(list_platform_decisions))
        .merge(super::policy_versions::router())
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES_MAX))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadedView {
    pub id: String,
    pub name: String,
    pub hook: &'static str,
    pub version: i64,
    pub runtime: String,
    pub sha256: String,
    /// Always `inactive`: activate the version to put it in force.
    pub status: &'static str,
}

impl From<Uploaded> for UploadedView {
    fn from(u: Uploaded) -> UploadedView {
        UploadedView {
            id: u.id,
            name: u.name,
            hook: u.hook.name(),
            version: u.version,
            runtime: u.runtime,
            sha256: u.sha256,
            status: "inactive",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub version: i64,
    pub runtime: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub id: String,
    pub name: String,
    pub hook: String,
    /// `enforce`, `shadow` or `inactive`; `suspended_by_operator` when the
    /// operator closed the policy's hook to customers (it runs nowhere
    /// until the hook is open again; `mode` keeps what was set).
    #[schema(example = "enforce")]
    pub status: String,
    /// The enforced version, or the only version when it runs in shadow
    /// alone.
    pub active_version: Option<i64>,
    /// The mode `active_version` runs in (`enforce` or `shadow`), `null`
    /// when inactive.
    pub mode: Option<String>,
    /// The version evaluated in shadow (logged, never deciding): a canary
    /// beside the enforced version, or `active_version` itself when it runs
    /// in shadow alone. Promote it with `POST .../promote`.
    pub shadow_version: Option<i64>,
    pub versions: Vec<VersionView>,
    /// The active version's circuit breaker on this host, when it is not
    /// closed: after repeated failures the policy fails closed without
    /// being evaluated until `until`, then gets one trial evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakerView {
    /// `open` (refusing) or `half_open` (one trial evaluation running).
    pub state: &'static str,
    pub until: Option<DateTime<Utc>>,
    /// Consecutive failures.
    pub failures: u32,
}

impl From<PolicyInfo> for PolicyView {
    fn from(i: PolicyInfo) -> PolicyView {
        let status = match (&i.policy.mode, i.suspended_by_operator) {
            (Some(_), true) => "suspended_by_operator".to_string(),
            (Some(mode), false) => mode.clone(),
            (None, _) => "inactive".to_string(),
        };
        PolicyView {
            status,
            shadow_version: i.slots().shadow,
            mode: i.policy.mode.clone(),
            id: i.policy.id,
            name: i.policy.name,
            hook: i.policy.hook,
            active_version: i.policy.active_version,
            versions: i
                .versions
                .into_iter()
                .map(|v| VersionView {
                    version: v.version,
                    runtime: v.runtime,
                    sha256: v.sha256,
                    size_bytes: v.size_bytes,
                    created_at: from_us(v.created_at_us),
                })
                .collect(),
            breaker: i.breaker.map(|b| BreakerView {
                state: b.state,
                until: b.until.map(DateTime::<Utc>::from),
                failures: b.failures,
            }),
            created_at: from_us(i.policy.created_at_us),
            updated_at: from_us(i.policy.updated_at_us),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyList {
    pub data: Vec<PolicyView>,
}

async fn upload(
    s: &AppState,
    p: &Principal,
    parent: Option<&str>,
    req: Upload,
) -> Result<(StatusCode, Json<UploadedView>)> {
    let uploaded = s.canopy.upload_policy(p, parent, req).await?;
    Ok((StatusCode::CREATED, Json(uploaded.into())))
}

async fn list(s: &AppState, p: &Principal, parent: Option<&str>) -> Result<Json<PolicyList>> {
    let policies = s.canopy.list_policies(p, parent).await?;
    Ok(Json(PolicyList {
        data: policies.into_iter().map(Into::into).collect(),
    }))
}

/// Upload a policy version for the tree (Rhai `source` or base64 Wasm
/// `module`; or multipart/form-data with a `module` or `source` file; or
/// the component's bytes as `application/wasm` with `?name=&hook=`); it is
/// compiled and run on the hook's samples before it is stored, inactive.
#[utoipa::path(post, path = "/v1/accounts/{parent_id}/policies", tag = "policies",
    request_body(content((Upload = "application/json"), (UploadForm = "multipart/form-data"), (ComponentBytes = "application/wasm"))),
    params(RawUploadQuery),
    responses((status = 201, body = UploadedView), (status = "4XX", body = Problem)))]
async fn upload_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(parent_id): Path<String>,
    PolicyUpload(req): PolicyUpload,
) -> Result<(StatusCode, Json<UploadedView>)> {
    upload(&s, &p, Some(&parent_id), req).await
}

/// The tree's policies and their versions.
#[utoipa::path(get, path = "/v1/accounts/{parent_id}/policies", tag = "policies",
    responses((status = 200, body = PolicyList), (status = "4XX", body = Problem)))]
async fn list_policies(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(parent_id): Path<String>,
) -> Result<Json<PolicyList>> {
    list(&s, &p, Some(&parent_id)).await
}

/// One policy and its versions.
#[utoipa::path(get, path = "/v1/accounts/{parent_id}/policies/{policy_id}", tag = "policies",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn get_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id)): Path<(String, String)>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .get_policy(&p, Some(&parent_id), &policy_id)
        .await?;
    Ok(Json(info.into()))
}

/// Activate a version in `enforce` or `shadow` mode (an older version rolls
/// back). A policy runs one version enforced and one in shadow beside it:
/// activating a version in one mode leaves the other mode's version running
/// (promote the shadow with `POST .../promote`). In force on every host
/// within seconds.
#[utoipa::path(post, path = "/v1/accounts/{parent_id}/policies/{policy_id}/versions/{version}/activate", tag = "policies",
    request_body = Activation,
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn activate_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id, version)): Path<(String, String, i64)>,
    Body(req): Body<Activation>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .set_policy_active(&p, Some(&parent_id), &policy_id, Some((version, req)))
        .await?;
    Ok(Json(info.into()))
}

/// Deactivate a policy; its versions are kept.
#[utoipa::path(post, path = "/v1/accounts/{parent_id}/policies/{policy_id}/deactivate", tag = "policies",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn deactivate_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((parent_id, policy_id)): Path<(String, String)>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .set_policy_active(&p, Some(&parent_id), &policy_id, None)
        .await?;
    Ok(Json(info.into()))
}

/// Upload a platform policy version (operator), in the same forms as a
/// tree's.
#[utoipa::path(post, path = "/v1/operator/policies", tag = "operator",
    request_body(content((Upload = "application/json"), (UploadForm = "multipart/form-data"), (ComponentBytes = "application/wasm"))),
    params(RawUploadQuery),
    responses((status = 201, body = UploadedView), (status = "4XX", body = Problem)))]
async fn upload_platform_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PolicyUpload(req): PolicyUpload,
) -> Result<(StatusCode, Json<UploadedView>)> {
    upload(&s, &p, None, req).await
}

/// The platform's policies (operator).
#[utoipa::path(get, path = "/v1/operator/policies", tag = "operator",
    responses((status = 200, body = PolicyList), (status = "4XX", body = Problem)))]
async fn list_platform_policies(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<PolicyList>> {
    list(&s, &p, None).await
}

#[utoipa::path(get, path = "/v1/operator/policies/{policy_id}", tag = "operator",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn get_platform_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(policy_id): Path<String>,
) -> Result<Json<PolicyView>> {
    let info = s.canopy.get_policy(&p, None, &policy_id).await?;
    Ok(Json(info.into()))
}

#[utoipa::path(post, path = "/v1/operator/policies/{policy_id}/versions/{version}/activate", tag = "operator",
    request_body = Activation,
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn activate_platform_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((policy_id, version)): Path<(String, i64)>,
    Body(req): Body<Activation>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .set_policy_active(&p, None, &policy_id, Some((version, req)))
        .await?;
    Ok(Json(info.into()))
}

#[utoipa::path(post, path = "/v1/operator/policies/{policy_id}/deactivate", tag = "operator",
    responses((status = 200, body = PolicyView), (status = "4XX", body = Problem)))]
async fn deactivate_platform_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(policy_id): Path<String>,
) -> Result<Json<PolicyView>> {
    let info = s
        .canopy
        .set_policy_active(&p, None, &policy_id, None)
        .await?;
    Ok(Json(info.into()))
}

fn require_operator(p: &Principal) -> Result<()> {
    match p {
        Principal::Operator => Ok(()),
        _ => Err(Error::Forbidden(
            "this route takes the operator token".into(),
        )),
    }
}

/// Which hooks customers may attach policies to (operator).
#[utoipa::path(get, path = "/v1/operator/policy-settings", tag = "operator",
    responses((status = 200, body = PolicySettingsView), (status = "4XX", body = Problem)))]
async fn get_policy_settings(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<PolicySettingsView>> {
    require_operator(&p)?;
    let hooks = s.canopy.customer_hooks().await?;
    Ok(Json(PolicySettingsView::of(&hooks)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicySettingsView {
    /// Hooks customers may attach policies to (`cascade` lets a customer's
    /// plan replace the default).
    pub customer_hooks: Vec<String>,
}

impl PolicySettingsView {
    fn of(hooks: &[crate::policy::Hook]) -> PolicySettingsView {
        PolicySettingsView {
            customer_hooks: hooks.iter().map(|h| h.name().to_string()).collect(),
        }
    }
}

/// Set which hooks customers may attach policies to; customer policies on
/// other hooks stop applying on every host.
#[utoipa::path(put, path = "/v1/operator/policy-settings", tag = "operator", request_body = PolicySettings,
    responses((status = 200, body = PolicySettingsView), (status = "4XX", body = Problem)))]
async fn put_policy_settings(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(req): Body<PolicySettings>,
) -> Result<Json<PolicySettingsView>> {
    require_operator(&p)?;
    let hooks = s.canopy.set_customer_hooks(req).await?;
    Ok(Json(PolicySettingsView::of(&hooks)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// Only this hook.
    pub hook: Option<String>,
    /// `allow`, `deny` or `error`.
    pub outcome: Option<String>,
    /// Only this action (`subaccount.create`, ...).
    pub action: Option<String>,
    /// Only decisions this policy took part in.
    pub policy_id: Option<String>,
    /// Only decisions where a shadow policy disagreed (`true`) or not.
    pub shadow_disagrees: Option<bool>,
    /// Only decisions in this account (a parent: one of its tree's).
    pub account_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl DecisionQuery {
    /// The store's filter and the page, checked as the route checks them.
    pub(crate) fn split(self) -> Result<(Filter, Page)> {
        if let Some(h) = &self.hook
            && crate::policy::Hook::parse(h).is_none()
        {
            return Err(Error::invalid(
                "hook",
                "must be one of authorize, subaccount.validate, visibility, cascade",
            ));
        }
        if let Some(o) = &self.outcome
            && !["allow", "deny", "error"].contains(&o.as_str())
        {
            return Err(Error::invalid("outcome", "must be allow, deny or error"));
        }
        let page = Pagination {
            limit: self.limit,
            cursor: self.cursor,
            created_after: self.created_after,
            created_before: self.created_before,
        }
        .page()?;
        Ok((
            Filter {
                tree_id: None,
                account_id: self.account_id,
                hook: self.hook,
                outcome: self.outcome,
                action: self.action,
                policy_id: self.policy_id,
                shadow_disagrees: self.shadow_disagrees,
            },
            page,
        ))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionPolicyView {
    pub id: String,
    /// The policy's name (a shipped default's is its id).
    pub name: String,
    pub version: i64,
    pub mode: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub duration_us: u64,
    /// Shadow entries only: this version would have decided differently
    /// from the enforced result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagrees: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub id: String,
    pub hook: String,
    pub action: String,
    /// `allow`, `deny` or `error` (the enforced result).
    pub outcome: String,
    pub reason: Option<String>,
    pub account_id: Option<String>,
    pub tree_id: Option<String>,
    /// A shadow policy would have decided differently.
    pub shadow_disagrees: bool,
    pub policies: Vec<DecisionPolicyView>,
    pub created_at: DateTime<Utc>,
}

impl From<DecisionRow> for DecisionView {
    fn from(r: DecisionRow) -> DecisionView {
        let policies = r
            .policies
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| DecisionPolicyView {
                        id: p["id"].as_str().unwrap_or_default().to_string(),
                        // Records written before names were logged.
                        name: p["name"]
                            .as_str()
                            .or_else(|| p["id"].as_str())
                            .unwrap_or_default()
                            .to_string(),
                        version: p["version"].as_i64().unwrap_or_default(),
                        mode: p["mode"].as_str().unwrap_or_default().to_string(),
                        outcome: p["outcome"].as_str().unwrap_or_default().to_string(),
                        reason: p["reason"].as_str().map(str::to_string),
                        duration_us: p["duration_us"].as_u64().unwrap_or_default(),
                        disagrees: p["disagrees"].as_bool(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        DecisionView {
            id: r.id,
            hook: r.hook,
            action: r.action,
            outcome: r.outcome,
            reason: r.reason,
            account_id: r.account_id,
            tree_id: r.tree_id,
            shadow_disagrees: r.shadow_disagrees,
            policies,
            created_at: from_us(r.created_at_us),
        }
    }
}

/// The decision log: for a parent, its whole tree; newest first.
#[utoipa::path(get, path = "/v1/accounts/{id}/decisions", tag = "policies", params(DecisionQuery),
    responses((status = 200, body = List<DecisionView>), (status = "4XX", body = Problem)))]
async fn list_decisions(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<DecisionQuery>,
) -> Result<Json<List<DecisionView>>> {
    decisions(&s, &p, Some(&id), q).await
}

/// Every decision on the platform (operator); newest first.
#[utoipa::path(get, path = "/v1/operator/decisions", tag = "operator", params(DecisionQuery),
    responses((status = 200, body = List<DecisionView>), (status = "4XX", body = Problem)))]
async fn list_platform_decisions(
    State(s): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<DecisionQuery>,
) -> Result<Json<List<DecisionView>>> {
    decisions(&s, &p, None, q).await
}

async fn decisions(
    s: &AppState,
    p: &Principal,
    account: Option<&str>,
    q: DecisionQuery,
) -> Result<Json<List<DecisionView>>> {
    let (filter, page) = q.split()?;
    let page = s.canopy.list_decisions(p, account, filter, &page).await?;
    Ok(Json(List {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: cursor(page.next_after),
    }))
}
