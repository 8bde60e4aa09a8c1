//! Signing in and out, the account switcher, and an account's overview.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{self, Form, Viewer};
use super::form::{Problems, field};
use super::layout::{self, Here, Place};
use super::{Failure, Page};
use crate::domain::Amount;
use crate::http::AppState;
use crate::http::members::ClientAddr;
use crate::http::views::AccountView;
use crate::ops::members::Credentials;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(start))
        .route("/console/", get(start))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-in/operator", post(operator_sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/accounts", get(switcher))
        .route("/console/accounts/{id}", get(overview))
        .route("/console/{*rest}", axum::routing::any(not_found))
}

/// A console address that is no page: an HTML 404 (the API's are JSON).
async fn not_found() -> Response {
    layout::failure(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no console page at this address. Follow a link from the console's navigation.",
    )
}

/// Where a signed-in user acts in `account_id`, or the page that says why
/// they cannot (404 for an account they do not reach, as in the API).
pub async fn here(s: &AppState, viewer: &Viewer, account_id: &str) -> Result<Here, Failure> {
    let actor = s.canopy.enter(&viewer.principal, account_id).await?;
    Ok(Here {
        account: actor.target,
        parent: actor.parent,
        role: actor.role,
        relation: actor.relation,
    })
}

/// `/console`: the operator's pages, the user's one account, or the
/// switcher; signed out, the sign-in page.
async fn start(State(s): State<AppState>, viewer: Option<Viewer>) -> Page {
    let Some(viewer) = viewer else {
        return Ok(auth::to_sign_in());
    };
    if viewer.is_operator() {
        return Ok(Redirect::to("/console/operator").into_response());
    }
    let accounts = s.canopy.reachable_accounts(&viewer.principal).await?;
    Ok(match accounts.as_slice() {
        [only] => Redirect::to(&format!("/console/accounts/{}", only.account.id)).into_response(),
        _ => Redirect::to("/console/accounts").into_response(),
    })
}

impl axum::extract::OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Option<Viewer>, std::convert::Infallible> {
        use axum::extract::FromRequestParts;
        Ok(
            <Viewer as FromRequestParts<AppState>>::from_request_parts(parts, s)
                .await
                .ok(),
        )
    }
}

#[derive(Default, Deserialize)]
struct SignIn {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Default, Deserialize)]
struct OperatorSignIn {
    #[serde(default)]
    token: String,
}

fn sign_in_view(csrf_token: &str, email: &str, user: &Problems, operator: &Problems) -> Markup {
    let csrf = html! { input type="hidden" name=(auth::CSRF_FIELD) value=(csrf_token); };
    let body = html! {
        div.columns {
            section aria-labelledby="user-sign-in" {
                h2 #user-sign-in { "Account users" }
                (user.summary())
                form method="post" action="/console/sign-in" {
                    (csrf)
                    (field("email", "E-mail", "email", email, user, None))
                    (field("password", "Password", "password", "", user, None))
                    button type="submit" { "Sign in" }
                }
            }
            section aria-labelledby="operator-sign-in" {
                h2 #operator-sign-in { "Platform operator" }
                (operator.summary())
                form method="post" action="/console/sign-in/operator" {
                    (csrf)
                    (field("token", "Operator token", "password", "", operator,
                        Some("The token the server was started with (--operator-token).")))
                    button type="submit" { "Sign in as operator" }
                }
            }
        }
    };
    layout::page(None, Place::Outside, "Sign in", body)
}

async fn sign_in_page(parts: axum::http::request::Parts) -> Response {
    let token = auth::csrf_token(&parts.extensions, &parts.headers);
    layout::respond(
        StatusCode::OK,
        sign_in_view(&token, "", &Problems::default(), &Problems::default()),
    )
}

/// Signed in: the cookie, then `/console`.
fn signed_in(headers: &HeaderMap, value: &str) -> Response {
    let mut response = Redirect::to("/console").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, auth::sign_in_cookie(headers, value));
    response
}

async fn sign_in(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    parts: axum::http::request::Parts,
    Form(f): Form<SignIn>,
) -> Page {
    let req = Credentials {
        email: f.email.clone(),
        password: f.password,
    };
    match s.canopy.create_session(req, client).await {
        Ok(session) => Ok(signed_in(&parts.headers, &session.token)),
        Err(e) => {
            let mut problems = match e {
                crate::Error::Unauthenticated(m) => Problems {
                    status: Some(StatusCode::UNAUTHORIZED),
                    summary: Some(m),
                    fields: Vec::new(),
                },
                other => Problems::of(other)?,
            };
            if problems.fields.is_empty() {
                problems.fields.push(crate::error::FieldError::new(
                    "password",
                    "check the e-mail and password and try again",
                ));
            }
            let token = auth::csrf_token(&parts.extensions, &parts.headers);
            Ok(layout::respond(
                problems.status(),
                sign_in_view(&token, &f.email, &problems, &Problems::default()),
            ))
        }
    }
}

async fn operator_sign_in(
    State(s): State<AppState>,
    parts: axum::http::request::Parts,
    Form(f): Form<OperatorSignIn>,
) -> Page {
    match s.canopy.operator_pass(&f.token).await {
        Ok(pass) => Ok(signed_in(&parts.headers, &pass)),
        Err(e) => {
            let wrong = matches!(e, crate::Error::Unauthenticated(_));
            let problems = Problems {
                status: StatusCode::from_u16(e.status()).ok(),
                summary: Some(e.to_string()),
                fields: wrong
                    .then(|| crate::error::FieldError::new("token", "not the operator token"))
                    .into_iter()
                    .collect(),
            };
            let token = auth::csrf_token(&parts.extensions, &parts.headers);
            Ok(layout::respond(
                problems.status(),
                sign_in_view(&token, "", &Problems::default(), &problems),
            ))
        }
    }
}

/// Signs out: a user's session ends on the server; the cookie goes.
async fn sign_out(
    State(s): State<AppState>,
    viewer: Option<Viewer>,
    headers: HeaderMap,
    Form(()): Form<()>,
) -> Page {
    if let Some(token) = viewer.and_then(|v| v.session) {
        s.canopy.end_session(&token).await?;
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, auth::sign_out_cookie(&headers));
    Ok(response)
}

/// The accounts a user can switch to.
async fn switcher(State(s): State<AppState>, viewer: Viewer) -> Page {
    if viewer.is_operator() {
        return Ok(Redirect::to("/console/operator").into_response());
    }
    let accounts = s.canopy.reachable_accounts(&viewer.principal).await?;
    let body = html! {
        @if accounts.is_empty() {
            p { "You are not a member of any account yet. Accept an invitation first." }
        } @else {
            p { "You are a member of these accounts. A parent's admin also reaches its sub-accounts from the parent's Sub-accounts page." }
            ul.cards {
                @for r in &accounts {
                    li {
                        a href=(format!("/console/accounts/{}", r.account.id)) { (r.account.name) }
                        " "
                        span.muted { (r.account.kind.as_str()) " · " (r.role.as_str()) " · " (r.account.status.as_str()) }
                    }
                }
            }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page(Some(&viewer), Place::User, "Switch account", body),
    ))
}

/// Labels of the account fields an overview shows, in order.
const ACCOUNT_FIELDS: &[(&str, &str)] = &[
    ("id", "Account id"),
    ("kind", "Kind"),
    ("status", "Status"),
    ("email", "E-mail"),
    ("company_name", "Company"),
    ("external_id", "External id"),
    ("currency", "Currency"),
    ("timezone", "Time zone"),
    ("channels", "Channels"),
    ("billing_type", "Billing"),
    ("subaccounts_enabled", "Sub-accounts enabled"),
    ("subaccount_module", "Sub-account module"),
    ("credit_mode", "Credit mode"),
    ("monthly_credit_limit", "Monthly credit limit"),
    ("monthly_usage_limit", "Monthly usage limit"),
    ("prices", "Prices"),
    ("created_at", "Created"),
];

/// A JSON value as text for a definition list.
pub fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", shown(v)))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Bool(true) => "yes".into(),
        serde_json::Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

fn money(label: &str, amount: Option<Amount>, currency: &str) -> Markup {
    html! {
        @if let Some(a) = amount {
            div { dt { (label) } dd { (a.to_api_string()) " " (currency) } }
        }
    }
}

/// One account as its viewer may see it: the fields `visibility` leaves,
/// and its money if it may see that.
async fn overview(
    State(s): State<AppState>,
    viewer: Viewer,
    super::Params(id): super::Params<String>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let (account, view) = s.canopy.get_account(&viewer.principal, &id).await?;
    let doc =
        serde_json::to_value(AccountView::new(&account, &view)).map_err(crate::Error::internal)?;
    // A role without `balance.read` simply sees no money.
    let balance = s.canopy.balance(&viewer.principal, &id).await.ok();
    let body = html! {
        section aria-labelledby="details" {
            h2 #details { "Details" }
            dl.details {
                @for (key, label) in ACCOUNT_FIELDS {
                    @if let Some(v) = doc.get(*key).filter(|v| !v.is_null()) {
                        div { dt { (label) } dd { (shown(v)) } }
                    }
                }
            }
        }
        @if let Some(b) = &balance {
            section aria-labelledby="money" {
                h2 #money { "Money" }
                dl.details {
                    (money("Balance", b.balance, &b.currency))
                    (money("Budget", b.budget, &b.currency))
                    (money("Monthly credit limit", b.monthly_credit_limit, &b.currency))
                    (money("Available credit", b.available_credit, &b.currency))
                    (money("Spent this month", b.spent_this_month, &b.currency))
                    (money("Used this month", b.used_this_month, &b.currency))
                    (money("Monthly usage limit", b.monthly_usage_limit, &b.currency))
                }
            }
        }
        @if here.relation == crate::domain::Relation::ParentOf {
            @if let Some(parent) = &here.parent {
                p { a href=(format!("/console/accounts/{}/subaccounts", parent.id)) { "Back to " (parent.name) "'s sub-accounts" } }
            }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page(
            Some(&viewer),
            Place::Account(&here, "overview"),
            &account.name,
            body,
        ),
    ))
}
