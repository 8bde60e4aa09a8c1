//! Membership chores: a member's role, invitations resent or revoked.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Path};
use super::views::{InvitationView, MemberView};
use super::{AppState, Problem};
use crate::Result;
use crate::ops::membership::RoleChange;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_role))
        .routes(routes!(resend_invitation))
        .routes(routes!(revoke_invitation))
}

/// Change a member's role (as inviting: never above your own role; the
/// last admin stays admin).
#[utoipa::path(patch, path = "/v1/accounts/{id}/members/{user_id}", tag = "members", request_body = RoleChange,
    responses((status = 200, body = MemberView), (status = "4XX", body = Problem)))]
async fn change_role(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user_id)): Path<(String, String)>,
    Body(req): Body<RoleChange>,
) -> Result<Json<MemberView>> {
    let member = s.canopy.change_member_role(&p, &id, &user_id, req).await?;
    Ok(Json((&member).into()))
}

/// Resend an open invitation under a new token (the old one stops working)
/// with a fresh expiry.
#[utoipa::path(post, path = "/v1/accounts/{id}/invitations/{invitation_id}/resend", tag = "members",
    responses((status = 201, body = InvitationView), (status = "4XX", body = Problem)))]
async fn resend_invitation(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<InvitationView>)> {
    let issued = s.canopy.resend_invitation(&p, &id, &invitation_id).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

/// Revoke an open invitation: its token is refused (410) from now on.
#[utoipa::path(delete, path = "/v1/accounts/{id}/invitations/{invitation_id}", tag = "members",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn revoke_invitation(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    s.canopy.revoke_invitation(&p, &id, &invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
