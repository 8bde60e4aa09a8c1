//! Sessions: the caller's own, listed and signed out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, Pagination, Path, Query, bearer, cursor};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::secrets::sha256_hex;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfoView {
    /// The session's id (`ses_...`); never its token.
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// This request came with this session's token.
    pub current: bool,
}

/// The token the request came with, hashed as sessions are stored.
struct TokenHash(Option<String>);

impl axum::extract::FromRequestParts<AppState> for TokenHash {
    type Rejection = crate::Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<TokenHash> {
        Ok(TokenHash(
            bearer(parts).ok().map(|t| sha256_hex(t.as_bytes())),
        ))
    }
}

/// Your own live sessions, newest first (any of your API keys or session
/// tokens lists them).
#[utoipa::path(get, path = "/v1/sessions", tag = "members", params(Pagination),
    responses((status = 200, body = List<SessionInfoView>), (status = "4XX", body = Problem)))]
async fn list_sessions(
    State(s): State<AppState>,
    Caller(p): Caller,
    TokenHash(hash): TokenHash,
    Query(q): Query<Pagination>,
) -> Result<Json<List<SessionInfoView>>> {
    let page = s.canopy.list_sessions(&p, &q.page()?).await?;
    let data = page
        .items
        .iter()
        .map(|x| SessionInfoView {
            id: x.id.clone(),
            created_at: x.created_at,
            expires_at: x.expires_at,
            current: hash.as_deref() == Some(x.token_hash.as_str()),
        })
        .collect();
    Ok(Json(List {
        data,
        next_cursor: cursor(page.next_after),
    }))
}

/// Sign a session out: its token is refused from the next request on.
#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "members",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn revoke_session(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(session_id): Path<String>,
) -> Result<StatusCode> {
    s.canopy.revoke_session(&p, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
