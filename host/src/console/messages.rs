//! An account's messages as the API's list gives them to this viewer: the
//! same `ops` call with the same principal (a basic user gets its own rows
//! only), rendered from the API's message view, so what `visibility` hides
//! (a reseller sub-account's prices) is simply absent. A send form calls
//! the API's send; `authorize` decides who may.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{Form, Viewer};
use super::form::{Problems, field, select};
use super::home::here;
use super::layout;
use super::people::{ListQuery, account_page, notice, older_link, when};
use super::{Page, Params, Query};
use crate::http::AppState;
use crate::http::money::{MessageView, message_view};
use crate::ops::messages::NewMessage;

/// Messages per page of the list.
const MESSAGES_PER_PAGE: i64 = 25;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/accounts/{id}/messages", get(messages).post(send))
}

#[derive(Default, Deserialize, Clone)]
struct SendForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    from: String,
}

/// The message body's labelled text area, with its refusal.
fn body_field(value: &str, problems: &Problems) -> Markup {
    let problem = problems.on("body");
    html! {
        div.field {
            label for="f-body" { "Message" }
            textarea #f-body.short name="body" rows="4" aria-invalid=[problem.map(|_| "true")]
                aria-describedby=[problem.map(|_| "f-body-error")] { (value) }
            @if let Some(reason) = problem { span.field-error #f-body-error { (reason) } }
        }
    }
}

fn table(views: &[MessageView], name: &str) -> Markup {
    // A column only for what the API's view of the rows carries.
    let priced = views.iter().any(|m| m.price.is_some());
    html! {
        div.table-wrap {
            table.messages {
                caption.visually-hidden { "Messages of " (name) ", newest first" }
                thead { tr {
                    th scope="col" { "Sent" }
                    th scope="col" { "Direction" }
                    th scope="col" { "Channel" }
                    th scope="col" { "From" }
                    th scope="col" { "To" }
                    th scope="col" { "Message" }
                    th scope="col" { "Status" }
                    @if priced { th scope="col" class="num" { "Price" } }
                } }
                tbody {
                    @for m in views {
                        tr {
                            th scope="row" { (when(&m.created_at)) }
                            td { (m.direction.as_str()) }
                            td { (m.channel) }
                            td { (m.from.as_deref().unwrap_or("—")) }
                            td { (m.to) }
                            td.message-body { (m.body) }
                            td { (m.status) }
                            @if priced {
                                td.num { @if let Some(p) = &m.price { (p) " " (m.currency.as_deref().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn messages_page(
    s: &AppState,
    viewer: &Viewer,
    id: &str,
    q: &ListQuery,
    form: &SendForm,
    problems: &Problems,
) -> Page {
    let here = here(s, viewer, id).await?;
    let base = format!("/console/accounts/{}/messages", here.id());
    let (listed, view) = s
        .canopy
        .list_messages(&viewer.principal, id, None, &q.page(MESSAGES_PER_PAGE)?)
        .await?;
    let views: Vec<MessageView> = listed
        .items
        .iter()
        .map(|m| message_view(m, &view))
        .collect();
    let channels: Vec<(&str, &str)> = here
        .account
        .channels
        .iter()
        .map(|c| (c.as_str(), c.as_str()))
        .collect();
    let channel = if form.channel.is_empty() {
        channels.first().map_or("", |c| c.0)
    } else {
        form.channel.as_str()
    };
    let body = html! {
        (notice(&q.done))
        section aria-labelledby="list" {
            h2 #list { "Messages" }
            @if view.own_rows_only {
                p.muted { "You see the messages you sent and the replies to them." }
            }
            @if views.is_empty() {
                p { "No messages yet." }
            } @else {
                (table(&views, &here.account.name))
            }
            (older_link(&base, listed.next_after.as_ref(), "Older messages"))
            @if !q.after.is_empty() {
                p { a href=(base) { "Back to the newest" } }
            }
        }
        section aria-labelledby="send" {
            h2 #send { "Send a message" }
            (problems.summary())
            form #send-message method="post" action=(base) {
                (layout::csrf(viewer))
                (select("channel", "Channel", &channels, channel, problems))
                (field("to", "To", "text", &form.to, problems, Some("For SMS, a number in E.164 form, e.g. +393471234567.")))
                (body_field(&form.body, problems))
                (field("from", "From line (optional)", "text", &form.from, problems, Some("One of the account's active lines; leave empty for none.")))
                button type="submit" { "Send" }
            }
        }
    };
    account_page(
        viewer,
        &here,
        problems.status(),
        "messages",
        "Messages",
        body,
    )
}

async fn messages(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<ListQuery>,
) -> Page {
    messages_page(
        &s,
        &viewer,
        &id,
        &q,
        &SendForm::default(),
        &Problems::default(),
    )
    .await
}

async fn send(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<SendForm>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let from = f.from.trim();
    let req = NewMessage {
        channel: f.channel.clone(),
        to: f.to.trim().to_string(),
        body: f.body.clone(),
        from: (!from.is_empty()).then(|| from.to_string()),
    };
    match s.canopy.send_message(&viewer.principal, &id, req).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/console/accounts/{id}/messages?done=sent")).into_response())
        }
        Err(e) => {
            let problems = Problems::of(e)?;
            messages_page(&s, &viewer, &id, &ListQuery::default(), &f, &problems).await
        }
    }
}
