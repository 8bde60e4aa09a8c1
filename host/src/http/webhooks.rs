//! Webhook routes (API.md, "Traffic"; docs/WEBHOOKS.md): an account's
//! webhooks and each one's delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller, Pagination, Path, Query, cursor};
use super::views::List;
use super::{AppState, Problem};
use crate::Result;
use crate::ops::webhooks::NewWebhook;
use crate::store::webhooks::{Delivery, Webhook};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// `wh_...`
    pub id: String,
    pub account_id: String,
    pub url: String,
    /// The event types it receives (`account.*` expanded).
    pub events: Vec<String>,
    /// The signing secret: only in the answer that created the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl WebhookView {
    fn of(w: Webhook, secret: Option<String>) -> WebhookView {
        WebhookView {
            id: w.id,
            account_id: w.account_id,
            url: w.url,
            events: w.events,
            secret,
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// `dlv_...`
    pub id: String,
    /// The event's id: the same on every attempt (for de-duplication).
    pub event_id: String,
    #[schema(example = "account.suspended")]
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub status: String,
    pub attempts: i64,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> DeliveryView {
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

/// Create a webhook (admins): its `secret` signs every delivery and is
/// shown in this answer only.
#[utoipa::path(post, path = "/v1/accounts/{id}/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = WebhookView), (status = "4XX", body = Problem)))]
async fn create_webhook(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookView>)> {
    let (webhook, secret) = s.canopy.create_webhook(&p, &id, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookView::of(webhook, Some(secret))),
    ))
}

/// An account's webhooks, newest first (no secrets).
#[utoipa::path(get, path = "/v1/accounts/{id}/webhooks", tag = "webhooks", params(Pagination),
    responses((status = 200, body = List<WebhookView>), (status = "4XX", body = Problem)))]
async fn list_webhooks(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<WebhookView>>> {
    let page = s.canopy.list_webhooks(&p, &id, &q.page()?).await?;
    Ok(Json(List {
        data: page
            .items
            .into_iter()
            .map(|w| WebhookView::of(w, None))
            .collect(),
        next_cursor: cursor(page.next_after),
    }))
}

/// One webhook (no secret).
#[utoipa::path(get, path = "/v1/accounts/{id}/webhooks/{webhook_id}", tag = "webhooks",
    responses((status = 200, body = WebhookView), (status = "4XX", body = Problem)))]
async fn get_webhook(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Result<Json<WebhookView>> {
    let webhook = s.canopy.get_webhook(&p, &id, &webhook_id).await?;
    Ok(Json(WebhookView::of(webhook, None)))
}

/// Delete a webhook: nothing more is delivered to it.
#[utoipa::path(delete, path = "/v1/accounts/{id}/webhooks/{webhook_id}", tag = "webhooks",
    responses((status = 204), (status = "4XX", body = Problem)))]
async fn delete_webhook(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    s.canopy.delete_webhook(&p, &id, &webhook_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's delivery log, newest first: each event's status, attempts,
/// last HTTP status or error, and when it is tried next.
#[utoipa::path(get, path = "/v1/accounts/{id}/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(Pagination),
    responses((status = 200, body = List<DeliveryView>), (status = "4XX", body = Problem)))]
async fn list_deliveries(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, webhook_id)): Path<(String, String)>,
    Query(q): Query<Pagination>,
) -> Result<Json<List<DeliveryView>>> {
    let page = s
        .canopy
        .list_deliveries(&p, &id, &webhook_id, &q.page()?)
        .await?;
    Ok(Json(List {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: cursor(page.next_after),
    }))
}
