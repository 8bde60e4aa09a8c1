//! An account's API keys: the list (never a secret), a new key for the
//! viewer's own membership with its secret shown once on the page that
//! answers the form (never again, never in an address), and revocation.
//! The same `ops` calls as the API's key routes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use maud::html;
use serde::Deserialize;

use super::auth::{Form, Viewer};
use super::form::{Problems, field};
use super::home::here;
use super::layout;
use super::people::{ListQuery, account_page, notice, older_link, shown_once, when};
use super::{Page, Params, Query};
use crate::Error;
use crate::http::AppState;
use crate::ops::members::NewApiKey;
use crate::ops::parents::IssuedKey;

/// Keys per page of the list.
const KEYS_PER_PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/accounts/{id}/keys", get(keys).post(create))
        .route("/console/accounts/{id}/keys/{key_id}/revoke", post(revoke))
}

#[derive(Default, Deserialize, Clone)]
struct NewKeyForm {
    #[serde(default)]
    name: String,
    /// A date (`YYYY-MM-DD`): the key stops working at its start (UTC).
    #[serde(default)]
    expires_on: String,
}

/// The expiry a form's date stands for; `None` for an empty field.
fn expiry(text: &str) -> Result<Option<chrono::DateTime<Utc>>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| Error::invalid("expires_on", "must be a date such as 2030-01-31"))
}

#[derive(Default)]
struct Shown {
    done: String,
    issued: Option<(String, IssuedKey)>,
    form: NewKeyForm,
    problems: Problems,
}

async fn keys_page(s: &AppState, viewer: &Viewer, id: &str, q: &ListQuery, shown: &Shown) -> Page {
    let here = here(s, viewer, id).await?;
    let base = format!("/console/accounts/{}", here.id());
    let listed = s
        .canopy
        .list_api_keys(&viewer.principal, id, &q.page(KEYS_PER_PAGE)?)
        .await?;
    let now = s.canopy.clock.now();
    let body = html! {
        (notice(&shown.done))
        @if let Some((name, key)) = &shown.issued {
            (shown_once("Your new API key", html! {
                p { "The secret of " strong { (name) } " (" code { (key.id) } "). Send it as "
                    code { "Authorization: Bearer <secret>" } "; it acts as you, with your role in this account." }
            }, &key.secret))
        }
        section aria-labelledby="keys" {
            h2 #keys { "API keys" }
            @if listed.items.is_empty() {
                p { "This account has no API keys." }
            } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "API keys of " (here.account.name) ", newest first" }
                        thead { tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Key id" }
                            th scope="col" { "Created" }
                            th scope="col" { "Expires" }
                            th scope="col" { "Last used" }
                            th scope="col" { "Status" }
                        } }
                        tbody {
                            @for k in &listed.items {
                                @let expired = k.expires_at.is_some_and(|t| t <= now);
                                tr {
                                    th scope="row" { (k.name) }
                                    td { code { (k.id) } }
                                    td { (when(&k.created_at)) }
                                    td { @if let Some(t) = &k.expires_at { (when(t)) } @else { "never" } }
                                    td { @if let Some(t) = &k.last_used_at { (when(t)) } @else { "never" } }
                                    td {
                                        @if let Some(t) = &k.revoked_at {
                                            span.badge.deleted { "revoked" } " " span.muted { (when(t)) }
                                        } @else if expired {
                                            span.badge.invited { "expired" }
                                        } @else {
                                            form.inline-form method="post" action=(format!("{base}/keys/{}/revoke", k.id)) {
                                                (layout::csrf(viewer))
                                                span.badge.active { "live" }
                                                button.danger type="submit" { "Revoke" span.visually-hidden { " " (k.name) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (older_link(&format!("{base}/keys"), listed.next_after.as_ref(), "Older keys"))
        }
        section aria-labelledby="create-key" {
            h2 #create-key { "Create an API key" }
            p { "A key acts as you in this account, with your role; its secret is shown once." }
            (shown.problems.summary())
            form #create-key-form method="post" action=(format!("{base}/keys")) {
                (layout::csrf(viewer))
                (field("name", "Name", "text", &shown.form.name, &shown.problems, Some("What the key is for, e.g. billing export.")))
                (field("expires_on", "Expires on (optional)", "date", &shown.form.expires_on, &shown.problems,
                    Some("The key stops working at the start of this day (UTC). Leave empty for a key that does not expire.")))
                button type="submit" { "Create API key" }
            }
        }
    };
    let status = match (&shown.issued, shown.problems.status) {
        (Some(_), _) => StatusCode::CREATED,
        (None, Some(s)) => s,
        _ => StatusCode::OK,
    };
    account_page(viewer, &here, status, "keys", "API keys", body)
}

async fn keys(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<ListQuery>,
) -> Page {
    let shown = Shown {
        done: q.done.clone(),
        ..Shown::default()
    };
    keys_page(&s, &viewer, &id, &q, &shown).await
}

async fn create(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<NewKeyForm>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let created = match expiry(&f.expires_on) {
        Ok(expires_at) => {
            let req = NewApiKey {
                name: f.name.clone(),
                expires_at,
            };
            s.canopy.create_api_key(&viewer.principal, &id, req).await
        }
        Err(e) => Err(e),
    };
    let shown = match created {
        Ok(key) => Shown {
            issued: Some((f.name.trim().to_string(), key)),
            ..Shown::default()
        },
        Err(e) => {
            let mut problems = Problems::of(e)?;
            // The API names the field `expires_at`; the form's is a date.
            for p in &mut problems.fields {
                if p.field == "expires_at" {
                    p.field = "expires_on".into();
                }
            }
            Shown {
                problems,
                form: f,
                ..Shown::default()
            }
        }
    };
    keys_page(&s, &viewer, &id, &ListQuery::default(), &shown).await
}

async fn revoke(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, key_id)): Params<(String, String)>,
    Form(()): Form<()>,
) -> Page {
    here(&s, &viewer, &id).await?;
    match s
        .canopy
        .revoke_api_key(&viewer.principal, &id, &key_id)
        .await
    {
        Ok(()) => Ok(
            Redirect::to(&format!("/console/accounts/{id}/keys?done=revoked-key")).into_response(),
        ),
        Err(e) => {
            let shown = Shown {
                problems: Problems::of(e)?,
                ..Shown::default()
            };
            keys_page(&s, &viewer, &id, &ListQuery::default(), &shown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_a_date_or_nothing() {
        assert_eq!(expiry(" ").unwrap(), None);
        assert_eq!(
            expiry("2030-01-31").unwrap().unwrap().to_rfc3339(),
            "2030-01-31T00:00:00+00:00"
        );
        assert!(matches!(expiry("tomorrow"), Err(Error::Validation { .. })));
    }
}
