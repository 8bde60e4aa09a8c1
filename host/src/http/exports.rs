//! CSV exports (admins): `GET .../transactions/export.csv` and
//! `GET .../messages/export.csv`, newest first, at most
//! `EXPORT_ROWS_MAX` rows per answer; `Canopy-Next-Cursor` names the rest.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::billing::csv_text;
use super::extract::{Caller, Pagination, Path, Query, cursor};
use super::money::message_view;
use super::{AppState, Problem};
use crate::ops::Page;
use crate::ops::exports::EXPORT_ROWS_MAX;
use crate::ops::money::{statement_balance, statement_direction};
use crate::{Error, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_transactions))
        .routes(routes!(export_messages))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Rows (default and most: 10,000).
    pub limit: Option<i64>,
    /// `Canopy-Next-Cursor` of the previous export.
    pub cursor: Option<String>,
    /// Only rows created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only rows created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl ExportQuery {
    fn page(&self) -> Result<Page> {
        let limit = self.limit.unwrap_or(EXPORT_ROWS_MAX);
        if !(1..=EXPORT_ROWS_MAX).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {EXPORT_ROWS_MAX}"),
            ));
        }
        // The list rules (cursor, window), then the export's own limit.
        let mut page = Pagination {
            limit: Some(1),
            cursor: self.cursor.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
        }
        .page()?;
        page.limit = limit;
        Ok(page)
    }
}

const NEXT_CURSOR: HeaderName = HeaderName::from_static("canopy-next-cursor");

fn csv_response(name: &str, body: String, next: Option<String>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response();
    if let Some(c) = cursor(next).and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(NEXT_CURSOR, c);
    }
    response
}

/// The account's transactions as CSV (admins), from its side: signed
/// amounts and its balance after, money as exact decimals.
#[utoipa::path(get, path = "/v1/accounts/{id}/transactions/export.csv", tag = "money", params(ExportQuery),
    responses((status = 200, description = "CSV, newest first", content((String = "text/csv"))),
        (status = "4XX", body = Problem)))]
async fn export_transactions(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response> {
    let (page, account_id) = s.canopy.export_transactions(&p, &id, &q.page()?).await?;
    let mut out = String::from(
        "id,created_at,kind,direction,amount,signed_amount,currency,balance_after,account_id,from,to,reference\r\n",
    );
    for t in &page.items {
        let direction = statement_direction(t, &account_id);
        let row = [
            csv_text(&t.id),
            csv_text(
                &t.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
            csv_text(&t.kind),
            csv_text(direction.as_str()),
            t.amount.to_api_string(),
            direction.signed(t.amount),
            csv_text(&t.currency),
            statement_balance(t, &account_id)
                .map(|b| b.to_api_string())
                .unwrap_or_default(),
            csv_text(&t.subject_id),
            csv_text(&t.debit_id),
            csv_text(&t.credit_id),
            csv_text(t.reference.as_deref().unwrap_or("")),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    Ok(csv_response("transactions.csv", out, page.next_after))
}

/// The account's messages as CSV (admins); prices only where visibility
/// shows them.
#[utoipa::path(get, path = "/v1/accounts/{id}/messages/export.csv", tag = "messages", params(ExportQuery),
    responses((status = 200, description = "CSV, newest first", content((String = "text/csv"))),
        (status = "4XX", body = Problem)))]
async fn export_messages(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response> {
    let (page, view) = s.canopy.export_messages(&p, &id, &q.page()?).await?;
    let mut out = String::from(
        "id,created_at,direction,channel,from,to,status,price,currency,user_id,conversation_id,campaign_id,body\r\n",
    );
    for m in &page.items {
        let v = message_view(m, &view);
        let row = [
            csv_text(&v.id),
            csv_text(
                &v.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
            csv_text(m.direction.as_str()),
            csv_text(&v.channel),
            csv_text(v.from.as_deref().unwrap_or("")),
            csv_text(&v.to),
            csv_text(&v.status),
            v.price.clone().unwrap_or_default(),
            csv_text(v.currency.as_deref().unwrap_or("")),
            csv_text(v.user_id.as_deref().unwrap_or("")),
            csv_text(v.conversation_id.as_deref().unwrap_or("")),
            csv_text(v.campaign_id.as_deref().unwrap_or("")),
            csv_text(&v.body),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    Ok(csv_response("messages.csv", out, page.next_after))
}
