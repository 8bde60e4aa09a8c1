//! Proving an e-mail: password resets mailed through the outbox.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Body;
use super::views::UserView;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::identity::{ResetConfirmation, ResetRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetQueuedView {
    pub detail: &'static str,
}

/// Ask for a password reset: a token is mailed to the e-mail if a user has
/// it. The answer is the same either way.
#[utoipa::path(post, path = "/v1/password-resets", tag = "members", request_body = ResetRequest,
    responses((status = 202, body = ResetQueuedView), (status = "4XX", body = Problem)))]
async fn request_reset(
    State(s): State<AppState>,
    Body(req): Body<ResetRequest>,
) -> Result<(StatusCode, Json<ResetQueuedView>)> {
    s.canopy.request_password_reset(req).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetQueuedView {
            detail: "if a user has this e-mail, a token to set its password was mailed to it",
        }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetDoneView {
    pub user: UserView,
}

/// Use a mailed reset token: sets the password, verifies the e-mail and
/// ends the user's other sessions.
#[utoipa::path(post, path = "/v1/password-resets/confirm", tag = "members", request_body = ResetConfirmation,
    responses((status = 200, body = ResetDoneView), (status = "4XX", body = Problem)))]
async fn confirm_reset(
    State(s): State<AppState>,
    Body(req): Body<ResetConfirmation>,
) -> Result<Json<ResetDoneView>> {
    let user = s.canopy.confirm_password_reset(req).await?;
    Ok(Json(ResetDoneView {
        user: (&user).into(),
    }))
}
