//! The platform operator's pages: parent accounts (search, paging, create),
//! one parent's settings (modules, prices, channels, credit limit, status,
//! top-ups), the platform policies with the hooks customers may use, and
//! the ledger check. Each calls the same `ops` function as the operator's
//! API route; a user's session is refused (403).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{Form, Viewer};
use super::form::{Problems, field, select};
use super::layout::{self, Place};
use super::{Failure, Page, Params, Query};
use crate::Error;
use crate::domain::{BillingType, MoneyText, Status};
use crate::http::AppState;
use crate::http::operator::parent_filter;
use crate::http::policies::PolicyView;
use crate::http::views::AccountView;
use crate::ops::money::AmountRequest;
use crate::ops::parents::{NewAdmin, NewParent, ParentChanges};
use crate::ops::policies::PolicySettings;
use crate::policy::Hook;

/// Parents per page of the list.
const PARENTS_PER_PAGE: i64 = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/operator", get(parents).post(create_parent))
        .route("/console/operator/parents/{id}", get(parent))
        .route(
            "/console/operator/parents/{id}/modules",
            axum::routing::post(set_modules),
        )
        .route(
            "/console/operator/parents/{id}/prices",
            axum::routing::post(set_prices),
        )
        .route(
            "/console/operator/parents/{id}/channels",
            axum::routing::post(set_channels),
        )
        .route(
            "/console/operator/parents/{id}/credit-limit",
            axum::routing::post(set_credit_limit),
        )
        .route(
            "/console/operator/parents/{id}/topup",
            axum::routing::post(topup),
        )
        .route(
            "/console/operator/parents/{id}/suspend",
            get(confirm_suspend).post(suspend),
        )
        .route(
            "/console/operator/parents/{id}/unsuspend",
            get(confirm_unsuspend).post(unsuspend),
        )
        .route(
            "/console/operator/policies",
            get(policies).post(set_customer_hooks),
        )
        .route("/console/operator/ledger", get(ledger))
}

/// Only the operator: a user's session gets a 403 page.
fn only_operator(viewer: &Viewer) -> Result<(), Failure> {
    if viewer.is_operator() {
        Ok(())
    } else {
        Err(Failure(Error::Forbidden(
            "these pages are the platform operator's; sign in with the operator token".into(),
        )))
    }
}

fn respond(
    viewer: &Viewer,
    status: StatusCode,
    section: &'static str,
    title: &str,
    body: Markup,
) -> Page {
    Ok(layout::respond(
        status,
        layout::page(Some(viewer), Place::Operator(section), title, body),
    ))
}

fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("badge {status}")) { (status) } }
}

/// The notice a fixed `?done=` code stands for (never free text).
fn notice(done: Option<&str>) -> Markup {
    let text = match done {
        Some("modules") => "The modules were saved.",
        Some("prices") => "The prices were saved.",
        Some("channels") => "The channels were saved.",
        Some("credit-limit") => "The monthly credit limit was saved.",
        Some("topup") => "The top-up was credited to the parent's balance.",
        Some("suspended") => "The parent account is suspended.",
        Some("unsuspended") => "The parent account is active again.",
        Some("hooks") => "The hooks customers may use were saved.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

// The list of parents, and creating one.

#[derive(Default, Deserialize)]
struct ParentsQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    /// The keyset position (`next_after` of the page before).
    #[serde(default)]
    after: String,
}

#[derive(Default, Deserialize, Clone)]
struct NewParentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    company_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    billing_type: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    monthly_credit_limit: String,
    #[serde(default, rename = "admin.email")]
    admin_email: String,
    #[serde(default, rename = "admin.name")]
    admin_name: String,
}

const STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("active", "Active"),
    ("suspended", "Suspended"),
    ("deleted", "Deleted"),
];

fn create_form(viewer: &Viewer, f: &NewParentForm, problems: &Problems) -> Markup {
    let billing = if f.billing_type.is_empty() {
        "prepaid"
    } else {
        f.billing_type.as_str()
    };
    let currency = if f.currency.is_empty() {
        "USD"
    } else {
        f.currency.as_str()
    };
    html! {
        section aria-labelledby="create" {
            h2 #create { "Create a parent account" }
            (problems.summary())
            form #create-parent method="post" action="/console/operator" {
                (layout::csrf(viewer))
                (field("name", "Name", "text", &f.name, problems, None))
                (field("company_name", "Company", "text", &f.company_name, problems, None))
                (field("email", "Billing e-mail", "email", &f.email, problems, None))
                (select("billing_type", "Billing type", &[("prepaid", "Prepaid"), ("postpaid", "Postpaid")], billing, problems))
                (field("currency", "Currency", "text", currency, problems, Some("ISO 4217 code, e.g. USD or EUR.")))
                (field("monthly_credit_limit", "Monthly credit limit", "text", &f.monthly_credit_limit, problems,
                    Some("Postpaid parents only, e.g. 1000.00; leave empty for prepaid.")))
                (field("admin.email", "Admin's e-mail", "email", &f.admin_email, problems, None))
                (field("admin.name", "Admin's name", "text", &f.admin_name, problems, None))
                button type="submit" { "Create parent account" }
            }
        }
    }
}

async fn parents_page(
    s: &AppState,
    viewer: &Viewer,
    q: &ParentsQuery,
    form: &NewParentForm,
    problems: &Problems,
) -> Page {
    let name = Some(q.name.trim()).filter(|n| !n.is_empty());
    let status = Some(q.status.as_str()).filter(|s| !s.is_empty());
    let search_problems = Problems::default();
    let (listed, search_problems) = match parent_filter(status, name) {
        Ok(filter) => {
            let page =
                crate::ops::Page::newest_first(q.after.clone(), PARENTS_PER_PAGE, None, None)
                    .ok_or_else(|| Error::invalid("after", "is not a position this page gave"))?;
            (
                Some(s.canopy.list_parents(&filter, &page).await?),
                search_problems,
            )
        }
        Err(e) => (None, Problems::of(e)?),
    };
    let older = listed
        .as_ref()
        .and_then(|(p, _)| p.next_after.clone())
        .map(|after| {
            let mut url = form_urlencoded::Serializer::new(String::new());
            if let Some(n) = name {
                url.append_pair("name", n);
            }
            if let Some(st) = status {
                url.append_pair("status", st);
            }
            url.append_pair("after", &after);
            format!("/console/operator?{}", url.finish())
        });
    let body = html! {
        section aria-labelledby="parents" {
            h2 #parents { "Find a parent account" }
            (search_problems.summary())
            form.inline-form method="get" action="/console/operator" role="search"
                hx-get="/console/operator" hx-target="#parent-list" hx-select="#parent-list" hx-swap="outerHTML" hx-push-url="true" {
                @let bad_name = search_problems.on("name");
                div.field {
                    label for="search-name" { "Name contains" }
                    input #search-name name="name" type="search" value=(name.unwrap_or(""))
                        aria-invalid=[bad_name.map(|_| "true")]
                        aria-describedby=[bad_name.map(|_| "search-name-error")];
                    @if let Some(reason) = bad_name { span.field-error #search-name-error { (reason) } }
                }
                (select("status", "Status", STATUSES, status.unwrap_or(""), &search_problems))
                button type="submit" { "Search parents" }
            }
            div #parent-list {
                @if let Some((page, view)) = &listed {
                    @if page.items.is_empty() {
                        p { "No parent account matches." }
                    } @else {
                        div.table-wrap {
                            table {
                                caption.visually-hidden { "Parent accounts, newest first" }
                                thead { tr {
                                    th scope="col" { "Name" }
                                    th scope="col" { "Status" }
                                    th scope="col" { "Billing" }
                                    th scope="col" { "Currency" }
                                    th scope="col" { "Sub-accounts" }
                                    th scope="col" { "Created" }
                                } }
                                tbody {
                                    @for a in &page.items {
                                        @let v = AccountView::new(a, view);
                                        tr {
                                            th scope="row" { a href=(format!("/console/operator/parents/{}", v.id)) { (v.name) } }
                                            td { (status_badge(v.status)) }
                                            td { (v.billing_type.unwrap_or("—")) }
                                            td { (v.currency) }
                                            td { (modules_text(&v)) }
                                            td { (v.created_at.format("%Y-%m-%d %H:%M")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(url) = &older {
                        p { a href=(url) rel="next" { "Older parent accounts" } }
                    }
                    @if !q.after.is_empty() {
                        p { a href="/console/operator" { "Back to the newest" } }
                    }
                }
            }
        }
        (create_form(viewer, form, problems))
    };
    respond(
        viewer,
        problems.status(),
        "parents",
        "Parent accounts",
        body,
    )
}

fn modules_text(v: &AccountView) -> String {
    match (v.subaccounts_enabled, v.subaccount_module) {
        (Some(true), Some(m)) => format!("enabled ({m})"),
        (Some(true), None) => "enabled".into(),
        (Some(false), _) => "off".into(),
        (None, _) => "—".into(),
    }
}

async fn parents(State(s): State<AppState>, viewer: Viewer, Query(q): Query<ParentsQuery>) -> Page {
    only_operator(&viewer)?;
    parents_page(
        &s,
        &viewer,
        &q,
        &NewParentForm::default(),
        &Problems::default(),
    )
    .await
}

fn money_text(field: &str, text: &str) -> Result<MoneyText, Error> {
    MoneyText::parse(text.trim()).map_err(|e| Error::invalid(field, e.to_string()))
}

async fn create_parent(
    State(s): State<AppState>,
    viewer: Viewer,
    Form(f): Form<NewParentForm>,
) -> Page {
    only_operator(&viewer)?;
    let limit = f.monthly_credit_limit.trim();
    let limit = if limit.is_empty() {
        Ok(None)
    } else {
        money_text("monthly_credit_limit", limit).map(Some)
    };
    let request = match limit {
        Ok(monthly_credit_limit) => Ok(NewParent {
            name: f.name.clone(),
            company_name: f.company_name.clone(),
            email: f.email.clone(),
            billing_type: f.billing_type.clone(),
            currency: f.currency.trim().to_string(),
            timezone: None,
            region: None,
            monthly_credit_limit,
            prices: BTreeMap::new(),
            channels: None,
            admin: NewAdmin {
                email: f.admin_email.clone(),
                name: f.admin_name.clone(),
            },
        }),
        Err(e) => Err(e),
    };
    let created = match request {
        Ok(r) => s.canopy.create_parent(r).await,
        Err(e) => Err(e),
    };
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let problems = Problems::of(e)?;
            return parents_page(&s, &viewer, &ParentsQuery::default(), &f, &problems).await;
        }
    };
    let inv = &created.invitation;
    let body = html! {
        p.notice role="status" { "The parent account " strong { (created.account.name) } " was created." }
        section aria-labelledby="invitation" {
            h2 #invitation { "The admin's invitation" }
            p { "This token is shown only now. Pass it on to " strong { (created.admin.email) }
                " over a channel you trust (not in the same message as anything else about the account). "
                "They accept it with " code { "POST /v1/invitations/accept" } " (the token, their name and a password), "
                "then sign in to this console with their e-mail and that password. It expires at "
                (inv.expires_at.format("%Y-%m-%d %H:%M UTC")) "." }
            p { "Invitation token:" }
            p.secret { (inv.token) }
            p.muted { "The admin's initial API key was made too; its secret is not shown here. The admin can create keys from the console once signed in." }
        }
        @if created.account.prices.is_empty() {
            p.warning { strong { "Not ready to send: " } "the parent has no prices yet, so every charged message would be refused. Set them on its settings page." }
        }
        p {
            a href=(format!("/console/operator/parents/{}", created.account.id)) { "Open " (created.account.name) "'s settings" }
            " · "
            a href="/console/operator" { "Back to the parent accounts" }
        }
    };
    respond(
        &viewer,
        StatusCode::CREATED,
        "parents",
        "Parent account created",
        body,
    )
}

// One parent's settings.

#[derive(Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// A submitted form of the parent page that was refused: which one, and
/// what was typed, so it shows again with its problems.
#[derive(Default)]
struct Refused {
    form: &'static str,
    values: BTreeMap<String, String>,
    problems: Problems,
}

impl Refused {
    fn problems(&self, form: &str) -> Problems {
        if self.form == form {
            self.problems.clone()
        } else {
            Problems::default()
        }
    }
    fn value(&self, form: &str, name: &str, current: &str) -> String {
        if self.form == form {
            self.values.get(name).cloned().unwrap_or_default()
        } else {
            current.to_string()
        }
    }
}

fn checkbox(name: &str, label: &str, checked: bool) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field.check {
            input id=(id) type="checkbox" name=(name) value="true" checked[checked];
            label for=(id) { (label) }
        }
    }
}

async fn parent_page(
    s: &AppState,
    viewer: &Viewer,
    id: &str,
    done: Option<&str>,
    refused: &Refused,
) -> Page {
    let account = s.canopy.get_parent(id).await?;
    let view = s.canopy.parent_view(&account).await?;
    let v = AccountView::new(&account, &view);
    let base = format!("/console/operator/parents/{}", v.id);
    let doc = serde_json::to_value(&v).map_err(Error::internal)?;
    let prepaid = account.billing_type == Some(BillingType::Prepaid);
    let postpaid = account.billing_type == Some(BillingType::Postpaid);
    // Prices: one field per channel the parent has or prices.
    let prices = v.prices.clone().unwrap_or_default();
    let mut price_channels: Vec<String> = v.channels.clone();
    for c in prices.keys() {
        if !price_channels.contains(c) {
            price_channels.push(c.clone());
        }
    }
    let module_p = refused.problems("modules");
    let prices_p = refused.problems("prices");
    let channels_p = refused.problems("channels");
    let limit_p = refused.problems("credit-limit");
    let topup_p = refused.problems("topup");
    let module_value = refused.value(
        "modules",
        "subaccount_module",
        v.subaccount_module.unwrap_or("enterprise"),
    );
    let flag = |name: &str, current: Option<bool>| -> bool {
        if refused.form == "modules" {
            refused.values.contains_key(name)
        } else {
            current.unwrap_or(false)
        }
    };
    let status = account.status;
    let body = html! {
        (notice(done))
        @for (form, p) in [("modules", &module_p), ("prices", &prices_p), ("channels", &channels_p), ("credit-limit", &limit_p), ("topup", &topup_p)] {
            @if refused.form == form { (p.summary()) }
        }
        section aria-labelledby="details" {
            h2 #details { "Details" }
            dl.details {
                div { dt { "Status" } dd { (status_badge(v.status)) } }
                @for (key, label) in [("id", "Account id"), ("email", "E-mail"), ("company_name", "Company"), ("billing_type", "Billing"),
                    ("currency", "Currency"), ("timezone", "Time zone"), ("region", "Region"), ("created_at", "Created")] {
                    @if let Some(value) = doc.get(key).filter(|x| !x.is_null()) {
                        div { dt { (label) } dd { (super::home::shown(value)) } }
                    }
                }
            }
        }
        section aria-labelledby="modules" {
            h2 #modules { "Modules" }
            form method="post" action=(format!("{base}/modules")) {
                (layout::csrf(viewer))
                fieldset {
                    legend { "Switches of " (v.name) "'s tree" }
                    (checkbox("subaccounts_enabled", "Sub-accounts enabled", flag("subaccounts_enabled", v.subaccounts_enabled)))
                    (select("subaccount_module", "Sub-account module", &[("enterprise", "Enterprise (the parent's own teams)"), ("reseller", "Reseller (the parent's customers)")], &module_value, &module_p))
                    (checkbox("monthly_usage_limit_enabled", "Monthly usage limits for sub-accounts", flag("monthly_usage_limit_enabled", v.monthly_usage_limit_enabled)))
                    (checkbox("self_topups_enabled", "The parent's admin may top up (prepaid only)", flag("self_topups_enabled", v.self_topups_enabled)))
                }
                button type="submit" { "Save the modules of " (v.name) }
            }
        }
        section aria-labelledby="prices" {
            h2 #prices { "Prices" }
            p { "Price per message by channel, in " (v.currency) ". Leave a field empty to remove the channel's price." }
            form method="post" action=(format!("{base}/prices")) {
                (layout::csrf(viewer))
                @for c in &price_channels {
                    @let name = format!("prices.{c}");
                    (field(&name, &format!("Price per {c} message"), "text",
                        &refused.value("prices", &name, prices.get(c).map(String::as_str).unwrap_or("")), &prices_p, None))
                }
                (field("prices.new_channel", "Another channel", "text", &refused.value("prices", "prices.new_channel", ""), &prices_p,
                    Some("Optional: a channel name, such as rcs, to price too.")))
                (field("prices.new_price", "Its price", "text", &refused.value("prices", "prices.new_price", ""), &prices_p, None))
                button type="submit" { "Save the prices of " (v.name) }
            }
        }
        section aria-labelledby="channels" {
            h2 #channels { "Channels" }
            form method="post" action=(format!("{base}/channels")) {
                (layout::csrf(viewer))
                (field("channels", "Channels", "text", &refused.value("channels", "channels", &v.channels.join(", ")), &channels_p,
                    Some("Lower-case names separated by commas, e.g. sms, whatsapp. A channel removed here is removed from every sub-account.")))
                button type="submit" { "Save the channels of " (v.name) }
            }
        }
        @if postpaid {
            section aria-labelledby="credit" {
                h2 #credit { "Monthly credit limit" }
                form method="post" action=(format!("{base}/credit-limit")) {
                    (layout::csrf(viewer))
                    (field("monthly_credit_limit", &format!("Monthly credit limit ({})", v.currency), "text",
                        &refused.value("credit-limit", "monthly_credit_limit", v.monthly_credit_limit.as_deref().unwrap_or("")), &limit_p, None))
                    button type="submit" { "Save the credit limit of " (v.name) }
                }
            }
        }
        @if prepaid {
            section aria-labelledby="topup" {
                h2 #topup { "Top up" }
                p { "Credits the parent's prepaid balance (Canopy takes no payment: record one you received)." }
                form method="post" action=(format!("{base}/topup")) {
                    (layout::csrf(viewer))
                    (field("amount", &format!("Amount ({})", v.currency), "text", &refused.value("topup", "amount", ""), &topup_p, None))
                    button type="submit" { "Top up " (v.name) }
                }
            }
        }
        section aria-labelledby="status" {
            h2 #status { "Status" }
            @match status {
                Status::Active => { p { a.button.danger href=(format!("{base}/suspend")) { "Suspend " (v.name) "…" } } }
                Status::Suspended => { p { a.button href=(format!("{base}/unsuspend")) { "Unsuspend " (v.name) "…" } } }
                _ => { p { "The account is " (v.status) "; its status cannot change here." } }
            }
        }
        p { a href="/console/operator" { "Back to the parent accounts" } }
    };
    respond(
        viewer,
        refused.problems.status(),
        "parents",
        &account.name,
        body,
    )
}

async fn parent(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<DoneQuery>,
) -> Page {
    only_operator(&viewer)?;
    parent_page(&s, &viewer, &id, Some(q.done.as_str()), &Refused::default()).await
}

/// Applies `changes` (or the error building them gave) to the parent;
/// back to its page with `done`, or the page again with the refusal on
/// `form`.
async fn change(
    s: &AppState,
    viewer: &Viewer,
    id: &str,
    form: &'static str,
    values: BTreeMap<String, String>,
    changes: Result<ParentChanges, Error>,
) -> Page {
    let result = match changes {
        Ok(c) => s.canopy.update_parent(id, c).await.map(|_| ()),
        Err(e) => Err(e),
    };
    after(s, viewer, id, form, values, result).await
}

async fn after(
    s: &AppState,
    viewer: &Viewer,
    id: &str,
    form: &'static str,
    values: BTreeMap<String, String>,
    result: Result<(), Error>,
) -> Page {
    match result {
        Ok(()) => Ok(
            Redirect::to(&format!("/console/operator/parents/{id}?done={form}")).into_response(),
        ),
        Err(e) => {
            let refused = Refused {
                form,
                values,
                problems: Problems::of(e)?,
            };
            parent_page(s, viewer, id, None, &refused).await
        }
    }
}

async fn set_modules(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Page {
    only_operator(&viewer)?;
    let on = |name: &str| f.get(name).is_some_and(|v| v == "true");
    let changes = ParentChanges {
        subaccounts_enabled: Some(on("subaccounts_enabled")),
        subaccount_module: f.get("subaccount_module").cloned(),
        monthly_usage_limit_enabled: Some(on("monthly_usage_limit_enabled")),
        self_topups_enabled: Some(on("self_topups_enabled")),
        ..ParentChanges::default()
    };
    change(&s, &viewer, &id, "modules", f, Ok(changes)).await
}

fn price_changes(f: &BTreeMap<String, String>) -> Result<ParentChanges, Error> {
    let mut prices = BTreeMap::new();
    for (name, value) in f {
        let value = value.trim();
        let Some(channel) = name.strip_prefix("prices.") else {
            continue;
        };
        if value.is_empty() || channel == "new_channel" || channel == "new_price" {
            continue;
        }
        prices.insert(channel.to_string(), money_text(name, value)?);
    }
    let new_channel = f.get("prices.new_channel").map(|c| c.trim()).unwrap_or("");
    let new_price = f.get("prices.new_price").map(|c| c.trim()).unwrap_or("");
    match (new_channel.is_empty(), new_price.is_empty()) {
        (true, true) => {}
        (false, false) => {
            crate::ops::parents::channels("prices.new_channel", &[new_channel.to_string()])?;
            prices.insert(
                new_channel.to_string(),
                money_text("prices.new_price", new_price)?,
            );
        }
        (true, false) => {
            return Err(Error::invalid(
                "prices.new_channel",
                "name the channel this price is for",
            ));
        }
        (false, true) => {
            return Err(Error::invalid(
                "prices.new_price",
                "give the channel's price",
            ));
        }
    }
    Ok(ParentChanges {
        prices: Some(prices),
        ..ParentChanges::default()
    })
}

async fn set_prices(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Page {
    only_operator(&viewer)?;
    let changes = price_changes(&f);
    change(&s, &viewer, &id, "prices", f, changes).await
}

/// The channels typed in one field, split on commas and spaces.
fn channel_list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

async fn set_channels(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Page {
    only_operator(&viewer)?;
    let list = channel_list(f.get("channels").map(String::as_str).unwrap_or(""));
    let changes = ParentChanges {
        channels: Some(list),
        ..ParentChanges::default()
    };
    change(&s, &viewer, &id, "channels", f, Ok(changes)).await
}

async fn set_credit_limit(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Page {
    only_operator(&viewer)?;
    let text = f
        .get("monthly_credit_limit")
        .map(String::as_str)
        .unwrap_or("");
    let changes = money_text("monthly_credit_limit", text).map(|limit| ParentChanges {
        monthly_credit_limit: Some(limit),
        ..ParentChanges::default()
    });
    change(&s, &viewer, &id, "credit-limit", f, changes).await
}

async fn topup(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Page {
    only_operator(&viewer)?;
    let text = f.get("amount").map(String::as_str).unwrap_or("");
    let result = match money_text("amount", text) {
        Ok(amount) => s
            .canopy
            .topup_by_operator(&id, AmountRequest { amount })
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    after(&s, &viewer, &id, "topup", f, result).await
}

// Suspending and unsuspending, each after a confirmation.

async fn confirm(s: &AppState, viewer: &Viewer, id: &str, suspend: bool) -> Page {
    let account = s.canopy.get_parent(id).await?;
    let base = format!("/console/operator/parents/{}", account.id);
    let (title, action, what) = if suspend {
        (
            format!("Suspend {}?", account.name),
            "suspend",
            "Suspending the parent stops its tree: its members, sessions and API keys can no longer act, \
             and the cascade policy suspends its active sub-accounts with it. Money and resources stay where they are. \
             Unsuspending brings back each sub-account this suspension took.",
        )
    } else {
        (
            format!("Unsuspend {}?", account.name),
            "unsuspend",
            "Unsuspending makes the parent active again, and each sub-account its suspension took comes back \
             to the status it had before; sub-accounts suspended on their own stay suspended.",
        )
    };
    let body = html! {
        p { (what) }
        form method="post" action=(format!("{base}/{action}")) {
            (layout::csrf(viewer))
            button class=(if suspend { "danger" } else { "" }) type="submit" {
                @if suspend { "Suspend " } @else { "Unsuspend " } (account.name)
            }
            " "
            a.button.secondary href=(base) { "Cancel" }
        }
    };
    respond(viewer, StatusCode::OK, "parents", &title, body)
}

async fn confirm_suspend(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
) -> Page {
    only_operator(&viewer)?;
    confirm(&s, &viewer, &id, true).await
}

async fn confirm_unsuspend(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
) -> Page {
    only_operator(&viewer)?;
    confirm(&s, &viewer, &id, false).await
}

async fn suspend(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(()): Form<()>,
) -> Page {
    only_operator(&viewer)?;
    s.canopy.suspend_parent(&id).await?;
    Ok(Redirect::to(&format!("/console/operator/parents/{id}?done=suspended")).into_response())
}

async fn unsuspend(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(()): Form<()>,
) -> Page {
    only_operator(&viewer)?;
    s.canopy.unsuspend_parent(&id).await?;
    Ok(Redirect::to(&format!("/console/operator/parents/{id}?done=unsuspended")).into_response())
}

// Platform policies and the hooks customers may use.

async fn policies_page(
    s: &AppState,
    viewer: &Viewer,
    done: Option<&str>,
    problems: &Problems,
) -> Page {
    let list: Vec<PolicyView> = s
        .canopy
        .list_policies(&viewer.principal, None)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let hooks = s.canopy.customer_hooks().await?;
    let body = html! {
        (notice(done))
        section aria-labelledby="platform" {
            h2 #platform { "Platform policies" }
            @if list.is_empty() {
                p { "No platform policy was uploaded: the shipped defaults decide." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Hook" }
                            th scope="col" { "Status" }
                            th scope="col" { "Enforced version" }
                            th scope="col" { "Shadow version" }
                            th scope="col" { "Versions" }
                        } }
                        tbody {
                            @for p in &list {
                                tr {
                                    th scope="row" { (p.name) }
                                    td { code { (p.hook) } }
                                    td { span class=(format!("badge {}", p.status)) { (p.status) } }
                                    td { @if let (Some(v), Some("enforce")) = (p.active_version, p.mode.as_deref()) { (v) } @else { "—" } }
                                    td { @if let Some(v) = p.shadow_version { (v) } @else { "—" } }
                                    td { (p.versions.iter().map(|v| format!("v{} ({})", v.version, v.runtime)).collect::<Vec<_>>().join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="customer-hooks" {
            h2 #customer-hooks { "Hooks customers may use" }
            (problems.summary())
            form method="post" action="/console/operator/policies" {
                (layout::csrf(viewer))
                fieldset {
                    legend { "Parents may attach their own policies to" }
                    @for h in Hook::ALL {
                        @let id = format!("f-hook-{}", h.name().replace('.', "-"));
                        div.field.check {
                            input id=(id) type="checkbox" name="customer_hooks" value=(h.name()) checked[hooks.contains(&h)];
                            label for=(id) { code { (h.name()) } }
                        }
                    }
                }
                p.hint { "Closing a hook suspends the customers' policies on it (they keep their versions); " code { "cascade" } " lets a customer's plan replace the default." }
                button type="submit" { "Save the hooks customers may use" }
            }
        }
    };
    respond(
        viewer,
        problems.status(),
        "policies",
        "Platform policies",
        body,
    )
}

async fn policies(State(s): State<AppState>, viewer: Viewer, Query(q): Query<DoneQuery>) -> Page {
    only_operator(&viewer)?;
    policies_page(&s, &viewer, Some(q.done.as_str()), &Problems::default()).await
}

async fn set_customer_hooks(
    State(s): State<AppState>,
    viewer: Viewer,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    only_operator(&viewer)?;
    let customer_hooks = f
        .into_iter()
        .filter(|(k, _)| k == "customer_hooks")
        .map(|(_, v)| v)
        .collect();
    match s
        .canopy
        .set_customer_hooks(PolicySettings { customer_hooks })
        .await
    {
        Ok(_) => Ok(Redirect::to("/console/operator/policies?done=hooks").into_response()),
        Err(e) => {
            let problems = Problems::of(e)?;
            policies_page(&s, &viewer, None, &problems).await
        }
    }
}

// The ledger check.

async fn ledger(State(s): State<AppState>, viewer: Viewer) -> Page {
    only_operator(&viewer)?;
    let r = s.canopy.ledger_check().await?;
    let balanced = r.violations.is_empty();
    let checked = s.canopy.clock.now();
    let body = html! {
        @if balanced {
            p.notice role="status" { strong { "Balanced. " } "Every balance matches its transfers and every invariant holds." }
        } @else {
            div.problem role="alert" {
                p { strong { "Not balanced: " } (r.violations.len()) " violation(s) found." }
            }
        }
        dl.details {
            div { dt { "Checked at" } dd { (checked.format("%Y-%m-%d %H:%M:%S UTC")) } }
            div { dt { "Ledger accounts checked" } dd { (r.accounts) } }
        }
        section aria-labelledby="sums" {
            h2 #sums { "Sum of all balances per currency" }
            p { "Every currency must sum to zero: money only moves between accounts." }
            @if r.sums.is_empty() {
                p { "No money has moved yet." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Currency" } th scope="col" class="num" { "Sum" } th scope="col" { "Result" } } }
                        tbody {
                            @for (currency, micros) in &r.sums {
                                tr {
                                    th scope="row" { (currency) }
                                    td.num { (crate::domain::Amount::from_micros(*micros).decimal()) }
                                    td { @if *micros == 0 { "zero (correct)" } @else { strong { "not zero" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !balanced {
            section aria-labelledby="violations" {
                h2 #violations { "Violations" }
                ul { @for v in &r.violations { li { code { (v) } } } }
            }
        }
        form method="get" action="/console/operator/ledger" {
            button type="submit" { "Run the ledger check again" }
        }
    };
    respond(&viewer, StatusCode::OK, "ledger", "Ledger check", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_split_on_commas_and_spaces() {
        assert_eq!(
            channel_list("sms, whatsapp  rcs,,"),
            vec!["sms", "whatsapp", "rcs"]
        );
        assert!(channel_list("  ").is_empty());
    }

    #[test]
    fn prices_name_the_field_of_a_bad_price() {
        let mut f = BTreeMap::new();
        f.insert("prices.sms".to_string(), "0.01".to_string());
        f.insert("prices.whatsapp".to_string(), "cheap".to_string());
        let e = price_changes(&f).unwrap_err();
        assert!(
            matches!(&e, Error::Validation { errors, .. } if errors[0].field == "prices.whatsapp"),
            "{e:?}"
        );
        f.insert("prices.whatsapp".to_string(), "".to_string());
        f.insert("prices.new_channel".to_string(), "rcs".to_string());
        f.insert("prices.new_price".to_string(), "0.02".to_string());
        let prices = price_changes(&f).unwrap().prices.unwrap();
        assert_eq!(prices.keys().collect::<Vec<_>>(), vec!["rcs", "sms"]);
        f.insert("prices.new_price".to_string(), "".to_string());
        let e = price_changes(&f).unwrap_err();
        assert!(
            matches!(&e, Error::Validation { errors, .. } if errors[0].field == "prices.new_price"),
            "{e:?}"
        );
    }
}
