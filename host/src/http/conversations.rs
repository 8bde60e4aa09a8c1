//! Conversation routes and the operator's inbound route (API.md, "Traffic").

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Operator, Pagination, Path, Query, cursor};
use super::money::{MessageView, message_view};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::conversations::InboundMessage;
use crate::store::conversations::Conversation;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(receive_inbound))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    /// `conv_...`
    pub id: String,
    pub channel: String,
    /// The account's line ('' when its messages named none).
    pub line: String,
    /// The other party.
    pub remote: String,
    /// `new` until an inbound message follows an outbound one, then `responded`.
    #[schema(example = "responded")]
    pub state: String,
    /// The user of the last outbound message.
    pub user_id: Option<String>,
    pub messages: i64,
    pub first_message_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub last_outbound_at: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// When it first became `responded`.
    pub responded_at: Option<DateTime<Utc>>,
}

impl From<Conversation> for ConversationView {
    fn from(c: Conversation) -> ConversationView {
        ConversationView {
            id: c.id,
            channel: c.channel,
            line: c.line,
            remote: c.remote,
            state: c.state,
            user_id: c.user_id,
            messages: c.messages,
            first_message_at: c.first_message_at,
            last_message_at: c.last_message_at,
            last_outbound_at: c.last_outbound_at,
            last_inbound_at: c.last_inbound_at,
            responded_at: c.responded_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// `new` or `responded`.
    pub state: Option<String>,
    /// Items per page (default 50, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// The account's conversations, newest first (basic users: those whose last outbound message is theirs).
#[utoipa::path(get, path = "/v1/accounts/{id}/conversations", tag = "messages", params(ConversationQuery),
    responses((status = 200, body = List<ConversationView>), (status = "4XX", body = Problem)))]
async fn list_conversations(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<ConversationQuery>,
) -> Result<Json<List<ConversationView>>> {
    let page = Pagination {
        limit: q.limit,
        cursor: q.cursor,
        created_after: q.created_after,
        created_before: q.created_before,
    }
    .page()?;
    let (page, _view) = s
        .canopy
        .list_conversations(&p, &id, q.state.as_deref(), &page)
        .await?;
    Ok(Json(List {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// A message that came to one of the platform's lines (the carrier gateway posts it): stored in the account holding the line.
#[utoipa::path(post, path = "/v1/operator/inbound", tag = "operator", request_body = InboundMessage,
    responses((status = 201, body = MessageView), (status = "4XX", body = Problem)))]
async fn receive_inbound(
    State(s): State<AppState>,
    _: Operator,
    Body(req): Body<InboundMessage>,
) -> Result<(StatusCode, Json<MessageView>)> {
    let message = s.canopy.receive_inbound(req).await?;
    let view = s
        .canopy
        .view_operator("message.inbound", "messages", None)
        .await?;
    Ok((StatusCode::CREATED, Json(message_view(&message, &view))))
}
