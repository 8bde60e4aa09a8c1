//! Members, invitations, sessions and API keys.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Pagination, Path, Query, cursor};
use super::views::{
    AcceptedView, ApiKeyView, InvitationView, List, MemberView, SecretKeyView, SessionView,
};
use super::{AppState, Problem};
use crate::Result;
use crate::ops::members::{Acceptance, Credentials, NewApiKey, NewMember};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, invite_member))
        .routes(routes!(remove_member))
        .routes(routes!(accept_invitation))
        .routes(routes!(create_session))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

/// The account's members.
#[utoipa::path(get, path = "/v1/accounts/{id}/members", tag = "members", params(Pagination),
    responses((status = 200, body = List<MemberView>), (status = "4XX", body = Problem)))]
async fn list_members(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<MemberView>>> {
    let page = s.canopy.list_members(&p, &id, &q.page()?).await?;
    Ok(Json(List {
        data: page.items.iter().map(Into::into).collect(),
        next_cursor: cursor(page.next_after),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitedMemberView {
    pub email: String,
    pub role: &'static str,
    pub invitation: InvitationView,
}

/// Invite a member with a role.
#[utoipa::path(post, path = "/v1/accounts/{id}/members", tag = "members", request_body = NewMember,
    responses((status = 201, body = InvitedMemberView), (status = "4XX", body = Problem)))]
async fn invite_member(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewMember>,
) -> Result<(StatusCode, Json<InvitedMemberView>)> {
    let invited = s.canopy.invite_member(&p, &id, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitedMemberView {
            email: invited.email,
            role: invited.role.as_str(),
            invitation: invited.invitation.into(),
        }),
    ))
}

/// Remove a member; the account's data stays.
#[utoipa::path(delete, path = "/v1/accounts/{id}/members/{user_id}", tag = "members",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn remove_member(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    s.canopy.remove_member(&p, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation (no authentication: the token travels in the body).
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "members", request_body = Acceptance,
    responses((status = 200, body = AcceptedView), (status = "4XX", body = Problem)))]
async fn accept_invitation(
    State(s): State<AppState>,
    caller: Option<Caller>,
    ClientAddr(client): ClientAddr,
    Body(req): Body<Acceptance>,
) -> Result<Json<AcceptedView>> {
    let proof = caller.map(|Caller(p)| p);
    Ok(Json(
        s.canopy.accept_invitation(req, proof, client).await?.into(),
    ))
}

/// The address a request came from, for login limits: the peer, or with
/// `--trust-forwarded-for` the last `X-Forwarded-For` entry (the one the
/// proxy in front added; earlier ones are the client's to invent).
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = crate::Error;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<ClientAddr> {
        let forwarded = || {
            let header = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()?;
            let last = header.to_str().ok()?.rsplit(',').next()?;
            last.trim().parse::<IpAddr>().ok()
        };
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        };
        Ok(ClientAddr(if s.canopy.settings.trust_forwarded_for {
            forwarded().or_else(peer)
        } else {
            peer()
        }))
    }
}

/// Sign in with e-mail and password. Repeated failures for an e-mail or
/// from an address are refused for a growing time (429 with `Retry-After`).
#[utoipa::path(post, path = "/v1/sessions", tag = "members", request_body = Credentials,
    responses((status = 201, body = SessionView), (status = "4XX", body = Problem)))]
async fn create_session(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    Body(req): Body<Credentials>,
) -> Result<(StatusCode, Json<SessionView>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.canopy.create_session(req, client).await?.into()),
    ))
}

/// Create an API key for your membership; the secret is shown once.
#[utoipa::path(post, path = "/v1/accounts/{id}/api-keys", tag = "api keys", request_body = NewApiKey,
    responses((status = 201, body = SecretKeyView), (status = "4XX", body = Problem)))]
async fn create_api_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewApiKey>,
) -> Result<(StatusCode, Json<SecretKeyView>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.canopy.create_api_key(&p, &id, req).await?.into()),
    ))
}

/// The account's API keys (never their secrets).
#[utoipa::path(get, path = "/v1/accounts/{id}/api-keys", tag = "api keys", params(Pagination),
    responses((status = 200, body = List<ApiKeyView>), (status = "4XX", body = Problem)))]
async fn list_api_keys(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<ApiKeyView>>> {
    let page = s.canopy.list_api_keys(&p, &id, &q.page()?).await?;
    Ok(Json(List {
        data: page.items.iter().map(Into::into).collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v1/accounts/{id}/api-keys/{key_id}", tag = "api keys",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn revoke_api_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    s.canopy.revoke_api_key(&p, &id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
