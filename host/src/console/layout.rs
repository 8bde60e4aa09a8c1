//! The page shell every console page shares: head, navigation for where
//! the viewer is, the account switcher and sign-out, and the error page.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::auth::{CSRF_FIELD, Viewer};
use crate::domain::{Account, Relation, Role};

/// The console's Content-Security-Policy: its own script and stylesheet,
/// no inline script or style, forms that post only to it, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A signed-in user in one account: what the navigation shows.
#[derive(Debug, Clone)]
pub struct Here {
    pub account: Account,
    /// The account's parent, when it is a sub-account.
    pub parent: Option<Account>,
    pub role: Role,
    pub relation: Relation,
}

impl Here {
    pub fn id(&self) -> &str {
        &self.account.id
    }
    pub fn admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Where a page is: what its navigation shows and marks current.
pub enum Place<'a> {
    /// Signed out (sign-in pages).
    Outside,
    /// The operator's pages; the section's link is marked current.
    Operator(&'static str),
    /// A user's page about one account.
    Account(&'a Here, &'static str),
    /// A signed-in user's pages about no one account (the switcher).
    User,
}

/// The CSRF field every form carries.
pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(viewer.csrf); }
}

fn nav_link(href: &str, label: &str, current: bool) -> Markup {
    html! {
        li { a href=(href) aria-current=[current.then_some("page")] { (label) } }
    }
}

fn navigation(viewer: Option<&Viewer>, place: &Place) -> Markup {
    html! {
        @match place {
            Place::Outside => {},
            Place::User => {
                nav aria-label="Console" { ul { (nav_link("/console/accounts", "Accounts", true)) } }
            },
            Place::Operator(section) => {
                nav aria-label="Operator" {
                    ul {
                        (nav_link("/console/operator", "Parent accounts", *section == "parents"))
                        (nav_link("/console/operator/policies", "Platform policies", *section == "policies"))
                        (nav_link("/console/operator/ledger", "Ledger check", *section == "ledger"))
                    }
                }
            },
            Place::Account(here, section) => {
                @let base = format!("/console/accounts/{}", here.id());
                nav aria-label="Account" {
                    ul {
                        (nav_link(&base, "Overview", *section == "overview"))
                        @if here.account.is_parent() && here.admin() {
                            (nav_link(&format!("{base}/subaccounts"), "Sub-accounts", *section == "subaccounts"))
                        }
                        @if here.admin() {
                            (nav_link(&format!("{base}/members"), "Members", *section == "members"))
                            (nav_link(&format!("{base}/keys"), "API keys", *section == "keys"))
                        }
                        (nav_link(&format!("{base}/messages"), "Messages", *section == "messages"))
                        @if here.admin() {
                            (nav_link(&format!("{base}/usage"), "Usage", *section == "usage"))
                        }
                        @if here.account.is_parent() && here.admin() {
                            (nav_link(&format!("{base}/policies"), "Policies", *section == "policies"))
                        }
                    }
                }
            },
        }
        @if let Some(viewer) = viewer {
            div.session {
                @if !viewer.is_operator() {
                    a href="/console/accounts" { "Switch account" }
                }
                form method="post" action="/console/sign-out" {
                    (csrf(viewer))
                    button.link type="submit" { "Sign out" }
                }
            }
        }
    }
}

/// A whole page.
pub fn page(viewer: Option<&Viewer>, place: Place, title: &str, body: Markup) -> Markup {
    let context = match &place {
        Place::Operator(_) => Some("Operator".to_string()),
        Place::Account(here, _) => Some(match (&here.parent, here.relation) {
            (Some(parent), Relation::ParentOf) => {
                format!("{} (sub-account of {})", here.account.name, parent.name)
            }
            _ => here.account.name.clone(),
        }),
        _ => None,
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx without inline styles or eval, as the CSP requires.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true}"#;
                title { (title) " · Canopy console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/htmx.min.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "Canopy" }
                    @if let Some(context) = &context { span.context { (context) } }
                    (navigation(viewer, &place))
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page as a response: HTML that is never cached (pages show secrets
/// once, and balances that change).
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// An error page: what went wrong and a way back.
pub fn failure(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = html! {
        p.problem role="alert" { (detail) }
        p { a href="/console" { "Back to the console" } }
    };
    respond(status, page(None, Place::Outside, title, body))
}
