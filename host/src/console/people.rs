//! An account's people: its members (role, whether they accepted, a role
//! change, removal after a confirmation) and its open invitations (invite
//! by e-mail with a role, resend under a new token, revoke). Each action
//! calls the `ops` function of the API's members routes with the viewer's
//! principal, so `authorize` decides as in the API; an invitation's token
//! is shown once, on the page that answers the form that made it.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{Form, Viewer};
use super::form::{Problems, field, select};
use super::home::here;
use super::layout::{self, Here, Place};
use super::{Failure, Page, Params, Query};
use crate::Error;
use crate::http::AppState;
use crate::ops::members::NewMember;
use crate::ops::membership::RoleChange;

/// Members per page of the list.
const MEMBERS_PER_PAGE: i64 = 50;
/// Open invitations the page lists at most (newest first).
const INVITATIONS_SHOWN: i64 = 50;

/// The roles a member may have, as the role fields offer them.
pub const ROLES: &[(&str, &str)] = &[
    ("basic", "Basic (sends, reads own messages)"),
    ("advanced", "Advanced (sends, reads all messages)"),
    ("admin", "Admin (manages the account)"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/accounts/{id}/members", get(members).post(invite))
        .route(
            "/console/accounts/{id}/members/{user_id}/role",
            post(change_role),
        )
        .route(
            "/console/accounts/{id}/members/{user_id}/remove",
            get(confirm_remove).post(remove),
        )
        .route(
            "/console/accounts/{id}/invitations/{invitation_id}/resend",
            post(resend),
        )
        .route(
            "/console/accounts/{id}/invitations/{invitation_id}/revoke",
            post(revoke),
        )
}

/// A page about the account `here`, in its `section` of the navigation.
pub fn account_page(
    viewer: &Viewer,
    here: &Here,
    status: StatusCode,
    section: &'static str,
    title: &str,
    body: Markup,
) -> Page {
    Ok(layout::respond(
        status,
        layout::page(Some(viewer), Place::Account(here, section), title, body),
    ))
}

/// The notice a fixed `?done=` code stands for (never free text).
pub fn notice(done: &str) -> Markup {
    let text = match done {
        "role" => "The member's role was changed.",
        "removed" => "The member was removed; the account's data stays.",
        "revoked-invitation" => "The invitation was revoked: its token no longer works.",
        "revoked-key" => "The API key was revoked: it no longer works.",
        "sent" => "The message was sent.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

/// `?after=` (a position a list gave) and `?done=` (what was just done).
#[derive(Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub after: String,
    #[serde(default)]
    pub done: String,
}

impl ListQuery {
    /// The page of `limit` rows this query asks for.
    pub fn page(&self, limit: i64) -> Result<crate::ops::Page, Failure> {
        crate::ops::Page::newest_first(self.after.clone(), limit, None, None)
            .ok_or_else(|| Failure(Error::invalid("after", "is not a position this page gave")))
    }
}

/// The link to the next (older) page of a list, when there is one.
pub fn older_link(base: &str, next_after: Option<&String>, label: &str) -> Markup {
    html! {
        @if let Some(after) = next_after {
            @let query = form_urlencoded::Serializer::new(String::new()).append_pair("after", after).finish();
            p { a href=(format!("{base}?{query}")) rel="next" { (label) } }
        }
    }
}

/// A date and time as pages show them.
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A secret shown once: what it is, for whom, and that it will not be
/// shown again.
pub fn shown_once(heading: &str, explain: Markup, secret: &str) -> Markup {
    html! {
        section aria-labelledby="shown-once" {
            h2 #shown-once { (heading) }
            (explain)
            p { strong { "It is shown only now" } ": copy it before you leave this page; the console cannot show it again." }
            p.secret { (secret) }
        }
    }
}

#[derive(Default, Deserialize, Clone)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// What the members page shows besides its lists: a token just issued, a
/// refused invitation (with what was typed), a refused row action.
#[derive(Default)]
struct Shown {
    done: String,
    issued: Option<(String, crate::ops::parents::IssuedInvitation)>,
    invite: InviteForm,
    invite_problems: Problems,
    row_problems: Problems,
}

impl Shown {
    fn status(&self) -> StatusCode {
        match (
            &self.issued,
            self.invite_problems.status,
            self.row_problems.status,
        ) {
            (Some(_), _, _) => StatusCode::CREATED,
            (_, Some(s), _) | (_, _, Some(s)) => s,
            _ => StatusCode::OK,
        }
    }
}

fn invitation_explained(email: &str, expires_at: &DateTime<Utc>) -> Markup {
    html! {
        p { "Pass this invitation token to "
            @if email.is_empty() { "the invitee" } @else { strong { (email) } }
            " over a channel you trust. "
            "They accept it with " code { "POST /v1/invitations/accept" } " (the token, their name and a password), "
            "then sign in to this console with their e-mail and that password. It works once, until "
            (when(expires_at)) "." }
    }
}

fn member_row(viewer: &Viewer, base: &str, m: &crate::store::credentials::Member) -> Markup {
    let id = &m.user.id;
    let select_id = format!("role-{id}");
    html! {
        tr {
            th scope="row" {
                (m.user.name.as_deref().unwrap_or("—"))
                br;
                span.muted { (m.user.email) }
            }
            td {
                form.inline-form method="post" action=(format!("{base}/members/{id}/role")) {
                    (layout::csrf(viewer))
                    label.visually-hidden for=(select_id) { "Role of " (m.user.email) }
                    select id=(select_id) name="role" {
                        @for (value, text) in ROLES {
                            option value=(value) selected[*value == m.role.as_str()] { (text.split(' ').next().unwrap_or(text)) }
                        }
                    }
                    button.secondary type="submit" { "Change" span.visually-hidden { " the role of " (m.user.email) } }
                }
            }
            td {
                @if m.accepted {
                    span.badge.active { "active" }
                } @else {
                    span.badge.invited { "not accepted yet" }
                }
            }
            td { (when(&m.joined_at)) }
            td { a href=(format!("{base}/members/{id}/remove")) { "Remove" span.visually-hidden { " " (m.user.email) } "…" } }
        }
    }
}

async fn members_page(
    s: &AppState,
    viewer: &Viewer,
    id: &str,
    q: &ListQuery,
    shown: &Shown,
) -> Page {
    let here = here(s, viewer, id).await?;
    let base = format!("/console/accounts/{}", here.id());
    let members = s
        .canopy
        .list_members(&viewer.principal, id, &q.page(MEMBERS_PER_PAGE)?)
        .await?;
    let first_invitations =
        crate::ops::Page::newest_first(String::new(), INVITATIONS_SHOWN, None, None)
            .ok_or_else(|| Error::internal("the first page of invitations"))?;
    let invitations = s
        .canopy
        .list_invitations(&viewer.principal, id, &first_invitations)
        .await?;
    let role = if shown.invite.role.is_empty() {
        "basic"
    } else {
        shown.invite.role.as_str()
    };
    let body = html! {
        (notice(&shown.done))
        @if let Some((email, inv)) = &shown.issued {
            (shown_once("The invitation token", invitation_explained(email, &inv.expires_at), &inv.token))
        }
        section aria-labelledby="members" {
            h2 #members { "Members" }
            (shown.row_problems.summary())
            @if members.items.is_empty() {
                p { "This account has no members on this page." }
            } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Members of " (here.account.name) }
                        thead { tr {
                            th scope="col" { "Member" }
                            th scope="col" { "Role" }
                            th scope="col" { "Status" }
                            th scope="col" { "Joined" }
                            th scope="col" { "Remove" }
                        } }
                        tbody { @for m in &members.items { (member_row(viewer, &base, m)) } }
                    }
                }
            }
            (older_link(&format!("{base}/members"), members.next_after.as_ref(), "More members"))
        }
        section aria-labelledby="invitations" {
            h2 #invitations { "Open invitations" }
            @if invitations.items.is_empty() {
                p { "No invitation is waiting to be accepted." }
            } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Invitations not accepted yet, newest first" }
                        thead { tr {
                            th scope="col" { "E-mail" }
                            th scope="col" { "Role" }
                            th scope="col" { "Expires" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for inv in &invitations.items {
                                tr {
                                    th scope="row" { (inv.email) }
                                    td { (inv.role.as_str()) }
                                    td { (when(&inv.expires_at)) }
                                    td.actions {
                                        form.inline-form method="post" action=(format!("{base}/invitations/{}/resend", inv.id)) {
                                            (layout::csrf(viewer))
                                            button.secondary type="submit" { "Resend" span.visually-hidden { " the invitation of " (inv.email) } }
                                        }
                                        " "
                                        form.inline-form method="post" action=(format!("{base}/invitations/{}/revoke", inv.id)) {
                                            (layout::csrf(viewer))
                                            button.danger type="submit" { "Revoke" span.visually-hidden { " the invitation of " (inv.email) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if invitations.next_after.is_some() {
                    p.muted { "Only the newest " (INVITATIONS_SHOWN) " open invitations are listed." }
                }
            }
            p.hint { "Resending gives a new token (the old one stops working) and a fresh expiry." }
        }
        section aria-labelledby="invite" {
            h2 #invite { "Invite a member" }
            (shown.invite_problems.summary())
            form #invite-member method="post" action=(format!("{base}/members")) {
                (layout::csrf(viewer))
                (field("email", "E-mail", "email", &shown.invite.email, &shown.invite_problems, None))
                (select("role", "Role", ROLES, role, &shown.invite_problems))
                button type="submit" { "Invite" }
            }
        }
    };
    account_page(viewer, &here, shown.status(), "members", "Members", body)
}

async fn members(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<ListQuery>,
) -> Page {
    let shown = Shown {
        done: q.done.clone(),
        ..Shown::default()
    };
    members_page(&s, &viewer, &id, &q, &shown).await
}

async fn invite(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<InviteForm>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let req = NewMember {
        email: f.email.trim().to_string(),
        role: f.role.clone(),
    };
    let shown = match s.canopy.invite_member(&viewer.principal, &id, req).await {
        Ok(invited) => Shown {
            issued: Some((invited.email, invited.invitation)),
            ..Shown::default()
        },
        Err(e) => Shown {
            invite_problems: Problems::of(e)?,
            invite: f,
            ..Shown::default()
        },
    };
    members_page(&s, &viewer, &id, &ListQuery::default(), &shown).await
}

/// Back to the members page with `done`, or the page again with the
/// refusal of a row's action.
async fn after_row(
    s: &AppState,
    viewer: &Viewer,
    id: &str,
    done: &str,
    result: Result<(), Error>,
) -> Page {
    match result {
        Ok(()) => Ok(
            Redirect::to(&format!("/console/accounts/{id}/members?done={done}")).into_response(),
        ),
        Err(e) => {
            let shown = Shown {
                row_problems: Problems::of(e)?,
                ..Shown::default()
            };
            members_page(s, viewer, id, &ListQuery::default(), &shown).await
        }
    }
}

#[derive(Default, Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn change_role(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, user_id)): Params<(String, String)>,
    Form(f): Form<RoleForm>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let result = s
        .canopy
        .change_member_role(
            &viewer.principal,
            &id,
            &user_id,
            RoleChange { role: f.role },
        )
        .await
        .map(|_| ());
    after_row(&s, &viewer, &id, "role", result).await
}

async fn confirm_remove(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, user_id)): Params<(String, String)>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    // The member as the API's list shows it: one this viewer may list.
    let member = s.canopy.member(&viewer.principal, &id, &user_id).await?;
    let base = format!("/console/accounts/{}", here.id());
    let who = member.user.email.clone();
    let body = html! {
        p { "Removing " strong { (who) } " ends their membership of " (here.account.name)
            ": their API keys for it are revoked and they can no longer act in it. "
            "The account's data (messages, money, resources) stays as it is. "
            "The account's last admin cannot be removed." }
        form method="post" action=(format!("{base}/members/{user_id}/remove")) {
            (layout::csrf(&viewer))
            button.danger type="submit" { "Remove " (who) }
            " "
            a.button.secondary href=(format!("{base}/members")) { "Cancel" }
        }
    };
    account_page(
        &viewer,
        &here,
        StatusCode::OK,
        "members",
        &format!("Remove {who}?"),
        body,
    )
}

async fn remove(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, user_id)): Params<(String, String)>,
    Form(()): Form<()>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let result = s
        .canopy
        .remove_member(&viewer.principal, &id, &user_id)
        .await;
    after_row(&s, &viewer, &id, "removed", result).await
}

async fn resend(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, invitation_id)): Params<(String, String)>,
    Form(()): Form<()>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let listed = s
        .canopy
        .list_invitations(
            &viewer.principal,
            &id,
            &crate::ops::Page {
                limit: INVITATIONS_SHOWN,
                ..crate::ops::Page::default()
            },
        )
        .await?;
    let email = listed
        .items
        .iter()
        .find(|i| i.id == invitation_id)
        .map(|i| i.email.clone())
        .unwrap_or_default();
    match s
        .canopy
        .resend_invitation(&viewer.principal, &id, &invitation_id)
        .await
    {
        Ok(issued) => {
            let shown = Shown {
                issued: Some((email, issued)),
                ..Shown::default()
            };
            members_page(&s, &viewer, &id, &ListQuery::default(), &shown).await
        }
        Err(e) => after_row(&s, &viewer, &id, "", Err(e)).await,
    }
}

async fn revoke(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, invitation_id)): Params<(String, String)>,
    Form(()): Form<()>,
) -> Page {
    here(&s, &viewer, &id).await?;
    let result = s
        .canopy
        .revoke_invitation(&viewer.principal, &id, &invitation_id)
        .await;
    after_row(&s, &viewer, &id, "revoked-invitation", result).await
}
