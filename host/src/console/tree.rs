//! A parent admin's tree: the sub-accounts with their status, budget or
//! usage and lines and SIMs, the parent's money and Available pool;
//! creating a sub-account; one sub-account's page with budget add/remove;
//! suspend, unsuspend and delete after a confirmation that says what the
//! cascade will do. Each calls the same `ops` function as the API route
//! (`/v1/accounts/{id}/subaccounts`, `/budget`, `/suspend`, `/unsuspend`,
//! `DELETE /v1/accounts/{id}`), so policies decide as they do there.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{Form, Viewer};
use super::form::{Problems, field, select};
use super::home::here;
use super::layout::{self, Here, Place};
use super::{Failure, Page, Params, Query};
use crate::Error;
use crate::domain::{Account, Amount, BillingType, CreditMode, MoneyText, Status};
use crate::http::AppState;
use crate::http::views::AccountView;
use crate::ops::money::{AmountRequest, Balance};
use crate::ops::status::{Change, Preview};
use crate::ops::subaccounts::{Credit, NewSubaccount};
use crate::policy::output::{Campaigns, Resources};
use crate::store::accounts::SubaccountFilter;

/// Sub-accounts per page of the list.
const SUBACCOUNTS_PER_PAGE: i64 = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/accounts/{id}/subaccounts", get(list).post(create))
        .route("/console/accounts/{id}/subaccounts/{sub}", get(one))
        .route(
            "/console/accounts/{id}/subaccounts/{sub}/budget",
            axum::routing::post(budget),
        )
        // `suspend`, `unsuspend` or `delete`: the confirmation, then the change.
        .route(
            "/console/accounts/{id}/subaccounts/{sub}/{change}",
            get(confirm_change).post(make_change),
        )
}

fn respond(viewer: &Viewer, here: &Here, status: StatusCode, title: &str, body: Markup) -> Page {
    Ok(layout::respond(
        status,
        layout::page(
            Some(viewer),
            Place::Account(here, "subaccounts"),
            title,
            body,
        ),
    ))
}

fn base(parent_id: &str) -> String {
    format!("/console/accounts/{parent_id}/subaccounts")
}

fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("badge {status}")) { (status) } }
}

/// The notice a fixed `?done=` code stands for (never free text).
fn notice(done: &str) -> Markup {
    let text = match done {
        "budget-added" => "The budget was added.",
        "budget-removed" => "The budget was taken back to the parent.",
        "suspended" => "The sub-account is suspended.",
        "unsuspended" => "The sub-account is active again.",
        "deleted" => "The sub-account was deleted.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

fn money(a: Amount, currency: &str) -> String {
    format!("{} {currency}", a.to_api_string())
}

/// A sub-account's money in one line: its budget, or its usage this
/// month (and limit); `None` when the viewer may not see it.
fn money_line(b: &Balance) -> Option<String> {
    if let Some(budget) = b.budget {
        return Some(format!("Budget {}", money(budget, &b.currency)));
    }
    b.used_this_month.map(|used| {
        let limit = b
            .monthly_usage_limit
            .map(|l| format!(" of {}", money(l, &b.currency)))
            .unwrap_or_default();
        format!("Used {}{limit} this month", money(used, &b.currency))
    })
}

// The list and creating a sub-account.

#[derive(Default, Deserialize)]
struct ListQuery {
    /// The keyset position (`next_after` of the page before).
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
}

#[derive(Default, Deserialize, Clone)]
struct NewForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    external_id: String,
    #[serde(default, rename = "credit.mode")]
    mode: String,
    #[serde(default, rename = "credit.initial_credit")]
    initial_credit: String,
    #[serde(default, rename = "credit.monthly_usage_limit")]
    monthly_usage_limit: String,
    /// A checkbox: present when checked.
    #[serde(default)]
    invite: Option<String>,
    /// Set on a submitted form, so an unchecked `invite` reads as no.
    #[serde(default)]
    submitted: Option<String>,
}

fn create_form(viewer: &Viewer, parent: &Account, f: &NewForm, problems: &Problems) -> Markup {
    let postpaid = parent.billing_type == Some(BillingType::Postpaid);
    let mode = if f.mode.is_empty() {
        CreditMode::AssignedBudget.as_str()
    } else {
        f.mode.as_str()
    };
    let invite = f.submitted.is_none() || f.invite.is_some();
    let mut modes = vec![(
        CreditMode::AssignedBudget.as_str(),
        "Assigned budget (the parent allocates money to it)",
    )];
    if postpaid {
        modes.push((
            CreditMode::SharedUsage.as_str(),
            "Shared usage (it spends the parent's credit)",
        ));
    }
    html! {
        section aria-labelledby="create" {
            h2 #create { "Create a sub-account" }
            (problems.summary())
            form #create-subaccount method="post" action=(base(&parent.id)) {
                (layout::csrf(viewer))
                input type="hidden" name="submitted" value="1";
                (field("name", "Name", "text", &f.name, problems, None))
                (field("email", "E-mail", "email", &f.email, problems,
                    Some("A business address: the policies in force may refuse free-mail domains.")))
                (field("external_id", "External id (optional)", "text", &f.external_id, problems,
                    Some("Your own reference for it, such as a customer number.")))
                (select("credit.mode", "Funding", &modes, mode, problems))
                (field("credit.initial_credit", &format!("Initial budget ({}, optional)", parent.currency), "text",
                    &f.initial_credit, problems, Some("Assigned budgets only, e.g. 25.00; taken from the parent.")))
                @if postpaid && parent.tree.monthly_usage_limit_enabled {
                    (field("credit.monthly_usage_limit", &format!("Monthly usage limit ({}, optional)", parent.currency), "text",
                        &f.monthly_usage_limit, problems, Some("Shared usage only.")))
                }
                div.field.check {
                    input #f-invite type="checkbox" name="invite" value="true" checked[invite];
                    label for="f-invite" { "Send an invitation to this e-mail (the sub-account stays invited until it is accepted)" }
                }
                button type="submit" { "Create sub-account" }
            }
        }
    }
}

/// The tree's parent, entered as its admin: the page's `Here`, or 404/403
/// as the API answers.
async fn parent_here(s: &AppState, viewer: &Viewer, id: &str) -> Result<Here, Failure> {
    let here = here(s, viewer, id).await?;
    if !here.account.is_parent() {
        return Err(Failure(Error::Forbidden(
            "a sub-account has no sub-accounts".into(),
        )));
    }
    Ok(here)
}

async fn list_page(
    s: &AppState,
    viewer: &Viewer,
    here: &Here,
    q: &ListQuery,
    form: &NewForm,
    problems: &Problems,
) -> Page {
    let parent = &here.account;
    let page = crate::ops::Page::newest_first(q.after.clone(), SUBACCOUNTS_PER_PAGE, None, None)
        .ok_or_else(|| Error::invalid("after", "is not a position this page gave"))?;
    let (listed, view) = s
        .canopy
        .list_subaccounts(
            &viewer.principal,
            &parent.id,
            &SubaccountFilter::default(),
            &page,
        )
        .await?;
    let ids: Vec<String> = listed.items.iter().map(|a| a.id.clone()).collect();
    let counts = s.canopy.resource_counts(&ids).await?;
    let rows: Vec<AccountView> = listed
        .items
        .iter()
        .map(|a| AccountView::new(a, &view).with_counts(&counts))
        .collect();
    // Each sub-account's money as `GET .../balance` shows it to this
    // viewer; none where visibility hides it.
    let mut monies = Vec::with_capacity(rows.len());
    for a in &listed.items {
        monies.push(s.canopy.balance(&viewer.principal, &a.id).await.ok());
    }
    let own = s.canopy.balance(&viewer.principal, &parent.id).await.ok();
    // Lines and SIMs: the Available pool first, as the summary route.
    let summary = s
        .canopy
        .resource_summary(&viewer.principal, &parent.id)
        .await
        .ok();
    let resources_total = summary.as_ref().map_or(0, |groups| {
        groups.iter().map(|g| g.counts.line + g.counts.sim).sum()
    });
    let with_resources = resources_total > 0;
    let older = listed.next_after.as_ref().map(|after| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("after", after);
        format!("{}?{}", base(&parent.id), url.finish())
    });
    let body = html! {
        (notice(&q.done))
        section aria-labelledby="pool" {
            h2 #pool { "The parent's pool" }
            dl.details {
                @if let Some(b) = &own {
                    @if let Some(v) = b.balance { div { dt { "Balance (funds budgets)" } dd { (money(v, &b.currency)) } } }
                    @if let Some(v) = b.available_credit { div { dt { "Available credit this month" } dd { (money(v, &b.currency)) } } }
                    @if let Some(v) = b.monthly_credit_limit { div { dt { "Monthly credit limit" } dd { (money(v, &b.currency)) } } }
                }
                @if let Some(groups) = &summary {
                    @if let Some(available) = groups.first() {
                        div { dt { "Available lines" } dd { (available.counts.line) } }
                        div { dt { "Available SIMs" } dd { (available.counts.sim) } }
                    }
                }
            }
        }
        section aria-labelledby="subaccounts" {
            h2 #subaccounts { "Sub-accounts" }
            @if rows.is_empty() {
                p { "No sub-account yet. Create one below." }
            } @else {
                div.table-wrap tabindex="0" role="region" aria-label="Sub-accounts table" {
                    table #subaccount-list {
                        caption.visually-hidden { "Sub-accounts of " (parent.name) ", newest first" }
                        thead { tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Status" }
                            th scope="col" { "Funding" }
                            th scope="col" { "Budget or usage" }
                            @if with_resources {
                                th scope="col" class="num" { "Lines" }
                                th scope="col" class="num" { "SIMs" }
                            }
                        } }
                        tbody {
                            @for (v, b) in rows.iter().zip(&monies) {
                                tr {
                                    th scope="row" { a href=(format!("{}/{}", base(&parent.id), v.id)) { (v.name) } }
                                    td { (status_badge(v.status)) }
                                    td { (v.credit_mode.map(|m| m.replace('_', " ")).unwrap_or_else(|| "—".into())) }
                                    td { (b.as_ref().and_then(money_line).unwrap_or_else(|| "—".into())) }
                                    @if with_resources {
                                        @let c = v.resource_counts;
                                        td.num { (c.map_or(0, |c| c.line)) }
                                        td.num { (c.map_or(0, |c| c.sim)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(url) = &older {
                p { a href=(url) rel="next" { "Older sub-accounts" } }
            }
            @if !q.after.is_empty() {
                p { a href=(base(&parent.id)) { "Back to the newest" } }
            }
        }
        (create_form(viewer, parent, form, problems))
    };
    respond(viewer, here, problems.status(), "Sub-accounts", body)
}

async fn list(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<ListQuery>,
) -> Page {
    let here = parent_here(&s, &viewer, &id).await?;
    list_page(
        &s,
        &viewer,
        &here,
        &q,
        &NewForm::default(),
        &Problems::default(),
    )
    .await
}

fn money_text(field: &str, text: &str) -> Result<MoneyText, Error> {
    MoneyText::parse(text.trim()).map_err(|e| Error::invalid(field, e.to_string()))
}

/// An optional amount field: empty is none.
fn optional_money(field: &str, text: &str) -> Result<Option<MoneyText>, Error> {
    let text = text.trim();
    if text.is_empty() {
        Ok(None)
    } else {
        money_text(field, text).map(Some)
    }
}

/// The API's request for what the form says.
fn new_subaccount(f: &NewForm) -> Result<NewSubaccount, Error> {
    let external_id = Some(f.external_id.trim().to_string()).filter(|e| !e.is_empty());
    let mode = if f.mode.is_empty() {
        CreditMode::AssignedBudget.as_str().to_string()
    } else {
        f.mode.clone()
    };
    Ok(NewSubaccount {
        name: f.name.clone(),
        email: f.email.trim().to_string(),
        external_id,
        invite: Some(f.invite.is_some()),
        channels: None,
        timezone: None,
        credit: Some(Credit {
            mode,
            initial_credit: optional_money("credit.initial_credit", &f.initial_credit)?,
            low_balance_alert: None,
            monthly_usage_limit: optional_money(
                "credit.monthly_usage_limit",
                &f.monthly_usage_limit,
            )?,
        }),
    })
}

async fn create(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<NewForm>,
) -> Page {
    let here = parent_here(&s, &viewer, &id).await?;
    let created = match new_subaccount(&f) {
        Ok(r) => s.canopy.create_subaccount(&viewer.principal, &id, r).await,
        Err(e) => Err(e),
    };
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let problems = Problems::of(e)?;
            return list_page(&s, &viewer, &here, &ListQuery::default(), &f, &problems).await;
        }
    };
    let a = &created.account;
    let body = html! {
        p.notice role="status" { "The sub-account " strong { (a.name) } " was created; it is " (a.shown_status()) "." }
        @if let Some(inv) = &created.invitation {
            section aria-labelledby="invitation" {
                h2 #invitation { "Its invitation" }
                p { "This token is shown only now. Pass it on to " strong { (a.email) }
                    " over a channel you trust. They accept it with " code { "POST /v1/invitations/accept" }
                    " (the token, their name and a password), then sign in to this console. It expires at "
                    (inv.expires_at.format("%Y-%m-%d %H:%M UTC")) "." }
                p { "Invitation token:" }
                p.secret { (inv.token) }
            }
        }
        p {
            a href=(format!("{}/{}", base(&id), a.id)) { "Open " (a.name) }
            " · "
            a href=(base(&id)) { "Back to the sub-accounts" }
        }
    };
    respond(
        &viewer,
        &here,
        StatusCode::CREATED,
        "Sub-account created",
        body,
    )
}

// One sub-account: its details, money, budget form and status actions.

/// The tree's parent and one of its sub-accounts, entered as the API
/// enters them: 404 for a sub-account of another tree, or an address
/// whose parent is not the sub-account's.
async fn sub_here(
    s: &AppState,
    viewer: &Viewer,
    parent_id: &str,
    sub_id: &str,
) -> Result<(Here, Account, crate::policy::View), Failure> {
    let here = parent_here(s, viewer, parent_id).await?;
    let (sub, view) = s.canopy.get_account(&viewer.principal, sub_id).await?;
    if sub.parent_id.as_deref() != Some(here.id()) {
        return Err(Failure(Error::not_found("account", sub_id)));
    }
    Ok((here, sub, view))
}

#[derive(Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
}

#[derive(Default, Deserialize)]
struct BudgetForm {
    #[serde(default)]
    amount: String,
    /// `add` or `remove`: the button pressed.
    #[serde(default)]
    direction: String,
}

async fn sub_page(
    s: &AppState,
    viewer: &Viewer,
    (parent_id, sub_id): (&str, &str),
    done: &str,
    budget_form: (&str, &Problems),
) -> Page {
    let (here, sub, view) = sub_here(s, viewer, parent_id, sub_id).await?;
    let counts = s
        .canopy
        .resource_counts(std::slice::from_ref(&sub.id))
        .await?;
    let v = AccountView::new(&sub, &view).with_counts(&counts);
    let balance = s.canopy.balance(&viewer.principal, &sub.id).await.ok();
    let (typed, problems) = budget_form;
    let url = format!("{}/{}", base(parent_id), sub.id);
    let budgeted = sub.credit_mode == Some(CreditMode::AssignedBudget);
    let body = html! {
        (notice(done))
        section aria-labelledby="details" {
            h2 #details { "Details" }
            dl.details {
                div { dt { "Status" } dd { (status_badge(v.status)) } }
                div { dt { "E-mail" } dd { (v.email) } }
                @if let Some(e) = &v.external_id { div { dt { "External id" } dd { (e) } } }
                div { dt { "Funding" } dd { (v.credit_mode.map(|m| m.replace('_', " ")).unwrap_or_else(|| "—".into())) } }
                div { dt { "Channels" } dd { (v.channels.join(", ")) } }
                @if let Some(c) = v.resource_counts {
                    div { dt { "Lines" } dd { (c.line) } }
                    div { dt { "SIMs" } dd { (c.sim) } }
                }
                @if let Some(b) = &balance {
                    @if let Some(line) = money_line(b) { div { dt { "Money" } dd { (line) } } }
                }
                div { dt { "Created" } dd { (v.created_at.format("%Y-%m-%d %H:%M UTC")) } }
            }
            p { a href=(format!("/console/accounts/{}", sub.id)) { "Open " (sub.name) "'s own pages" } }
        }
        @if budgeted && sub.status != Status::Deleted {
            section aria-labelledby="budget" {
                h2 #budget { "Budget" }
                p { "Adding moves money from the parent to " (sub.name) "; removing takes it back to the parent." }
                (problems.summary())
                form #budget-form method="post" action=(format!("{url}/budget")) {
                    (layout::csrf(viewer))
                    (field("amount", &format!("Amount ({})", sub.currency), "text", typed, problems,
                        Some("A positive amount, e.g. 25.00.")))
                    div.buttons {
                        button type="submit" name="direction" value="add" { "Add budget" }
                        " "
                        button.secondary type="submit" name="direction" value="remove" { "Remove budget" }
                    }
                }
            }
        }
        section aria-labelledby="status" {
            h2 #status { "Status" }
            p {
                @match sub.status {
                    Status::Active => { a.button href=(format!("{url}/suspend")) { "Suspend " (sub.name) "…" } " " }
                    Status::Suspended => { a.button href=(format!("{url}/unsuspend")) { "Unsuspend " (sub.name) "…" } " " }
                    _ => {}
                }
                @if sub.status != Status::Deleted {
                    a.button.danger href=(format!("{url}/delete")) { "Delete " (sub.name) "…" }
                } @else {
                    "The sub-account is deleted; its data is purged after the retention period."
                }
            }
        }
        p { a href=(base(parent_id)) { "Back to the sub-accounts" } }
    };
    respond(viewer, &here, problems.status(), &sub.name, body)
}

async fn one(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, sub)): Params<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Page {
    sub_page(
        &s,
        &viewer,
        (&id, &sub),
        &q.done,
        ("", &Problems::default()),
    )
    .await
}

/// The API's budget request for the form: a positive amount, negated to
/// remove.
fn budget_request(f: &BudgetForm) -> Result<(AmountRequest, bool), Error> {
    let text = f.amount.trim();
    if text.starts_with(['-', '+']) {
        return Err(Error::invalid(
            "amount",
            "give the amount without a sign, then choose Add or Remove",
        ));
    }
    let remove = match f.direction.as_str() {
        "add" => false,
        "remove" => true,
        _ => {
            return Err(Error::invalid(
                "amount",
                "choose Add budget or Remove budget",
            ));
        }
    };
    let signed = if remove {
        format!("-{text}")
    } else {
        text.to_string()
    };
    money_text("amount", &signed).map(|amount| (AmountRequest { amount }, remove))
}

async fn budget(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, sub)): Params<(String, String)>,
    Form(f): Form<BudgetForm>,
) -> Page {
    sub_here(&s, &viewer, &id, &sub).await?;
    let result = match budget_request(&f) {
        Ok((req, remove)) => s
            .canopy
            .change_budget(&viewer.principal, &sub, req)
            .await
            .map(|_| remove),
        Err(e) => Err(e),
    };
    match result {
        Ok(remove) => {
            let done = if remove {
                "budget-removed"
            } else {
                "budget-added"
            };
            Ok(Redirect::to(&format!("{}/{sub}?done={done}#budget", base(&id))).into_response())
        }
        Err(e) => {
            let mut problems = Problems::of(e)?;
            // A refusal that names no field is about the amount.
            if problems.fields.is_empty()
                && let Some(summary) = &problems.summary
            {
                problems
                    .fields
                    .push(crate::error::FieldError::new("amount", summary.clone()));
            }
            sub_page(&s, &viewer, (&id, &sub), "", (&f.amount, &problems)).await
        }
    }
}

// Suspend, unsuspend and delete, each after a confirmation.

fn change_name(change: Change) -> &'static str {
    match change {
        Change::Suspend => "suspend",
        Change::Unsuspend => "unsuspend",
        Change::Delete => "delete",
    }
}

fn count(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What the confirmation says the change will do, one sentence a line.
fn consequences(p: &Preview) -> Vec<String> {
    let name = &p.account.name;
    let mut out = Vec::new();
    let people = format!(
        "{} and {}",
        count(p.members, "member", "members"),
        count(p.live_api_keys, "API key", "API keys")
    );
    match p.change {
        Change::Suspend => out.push(format!(
            "{name} becomes suspended: its {people} can no longer act until it is unsuspended."
        )),
        Change::Unsuspend => out.push(format!(
            "{name} becomes {} again: its {people} can act again.",
            p.account
                .previous_status
                .unwrap_or(Status::Active)
                .as_str()
        )),
        Change::Delete => out.push(format!(
            "{name} is deleted at once and for good: its {people} stop working; its data is purged after the retention period."
        )),
    }
    out.push(format!(
        "No other sub-account changes: the cascade concerns {name} only."
    ));
    let campaigns = count(p.campaigns_changed, "campaign", "campaigns");
    out.push(match p.campaigns {
        Campaigns::Keep => "Its campaigns stay as they are.".to_string(),
        Campaigns::Queue => {
            format!("{campaigns} scheduled or sending will be held (queued) and send nothing more.")
        }
        Campaigns::Submit => format!("{campaigns} held by the suspension will be scheduled again."),
        Campaigns::Delete => format!("{campaigns} not yet finished will be deleted."),
    });
    let held = format!(
        "It holds {} and {}",
        count(p.lines, "line", "lines"),
        count(p.sims, "SIM", "SIMs")
    );
    out.push(match p.resources {
        Resources::Keep => format!("{held}; they keep their status."),
        Resources::Suspend => format!(
            "{held}; {} will be suspended (lines keep their status).",
            count(p.sims_changed, "active SIM", "active SIMs")
        ),
        Resources::Resume => format!(
            "{held}; the SIMs its suspension suspended come back (at most {} suspended now).",
            p.sims_changed
        ),
    });
    match (p.budget, p.budget_returned) {
        (Some(b), true) => out.push(format!(
            "Its whole budget, {} now, returns to the parent.",
            money(b, &p.account.currency)
        )),
        (Some(b), false) => out.push(format!(
            "Its budget, {} now, stays with it.",
            money(b, &p.account.currency)
        )),
        (None, true) => out.push("Any budget it holds returns to the parent.".into()),
        (None, false) => {}
    }
    out
}

async fn confirm(
    s: &AppState,
    viewer: &Viewer,
    parent_id: &str,
    sub_id: &str,
    change: Change,
) -> Page {
    let (here, sub, _) = sub_here(s, viewer, parent_id, sub_id).await?;
    let url = format!("{}/{}", base(parent_id), sub.id);
    let verb = change_name(change);
    let title = format!(
        "{} {}?",
        match change {
            Change::Suspend => "Suspend",
            Change::Unsuspend => "Unsuspend",
            Change::Delete => "Delete",
        },
        sub.name
    );
    let preview = s
        .canopy
        .preview_subaccount_change(&viewer.principal, &sub.id, change)
        .await;
    let body = match preview {
        Ok(p) => html! {
            p { "What this will do, as the policies in force plan it now:" }
            ul #cascade { @for line in consequences(&p) { li { (line) } } }
            form method="post" action=(format!("{url}/{verb}")) {
                (layout::csrf(viewer))
                button class=(if change == Change::Unsuspend { "" } else { "danger" }) type="submit" {
                    (title.trim_end_matches('?'))
                }
                " "
                a.button.secondary href=(url) { "Cancel" }
            }
        },
        Err(e) => {
            let problems = Problems::of(e)?;
            html! {
                (problems.summary())
                p { a href=(url) { "Back to " (sub.name) } }
            }
        }
    };
    respond(viewer, &here, StatusCode::OK, &title, body)
}

/// The change a path segment names; any other is no page (404).
fn change_of(segment: &str) -> Result<Change, Failure> {
    match segment {
        "suspend" => Ok(Change::Suspend),
        "unsuspend" => Ok(Change::Unsuspend),
        "delete" => Ok(Change::Delete),
        _ => Err(Failure(Error::NotFound(format!(
            "there is no console page `{segment}` for a sub-account"
        )))),
    }
}

async fn confirm_change(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, sub, change)): Params<(String, String, String)>,
) -> Page {
    let change = change_of(&change)?;
    confirm(&s, &viewer, &id, &sub, change).await
}

/// Makes the change the confirmation described; back to the sub-account
/// (the list, after a deletion), or the refusal on its own page.
async fn apply(
    s: &AppState,
    viewer: &Viewer,
    parent_id: &str,
    sub_id: &str,
    change: Change,
) -> Page {
    let (here, sub, _) = sub_here(s, viewer, parent_id, sub_id).await?;
    let p = &viewer.principal;
    let result = match change {
        Change::Suspend => s.canopy.suspend_subaccount(p, &sub.id).await,
        Change::Unsuspend => s.canopy.unsuspend_subaccount(p, &sub.id).await,
        Change::Delete => s.canopy.delete_subaccount(p, &sub.id).await,
    };
    match result {
        Ok(_) if change == Change::Delete => {
            Ok(Redirect::to(&format!("{}?done=deleted", base(parent_id))).into_response())
        }
        Ok(_) => {
            let done = format!("{}ed", change_name(change));
            Ok(
                Redirect::to(&format!("{}/{}?done={done}", base(parent_id), sub.id))
                    .into_response(),
            )
        }
        Err(e) => {
            let problems = Problems::of(e)?;
            let body = html! {
                (problems.summary())
                p { a href=(format!("{}/{}", base(parent_id), sub.id)) { "Back to " (sub.name) } }
            };
            respond(viewer, &here, problems.status(), "Not done", body)
        }
    }
}

async fn make_change(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, sub, change)): Params<(String, String, String)>,
    Form(()): Form<()>,
) -> Page {
    let change = change_of(&change)?;
    apply(&s, &viewer, &id, &sub, change).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_form_gives_the_api_a_signed_amount() {
        let form = |amount: &str, direction: &str| BudgetForm {
            amount: amount.into(),
            direction: direction.into(),
        };
        let (r, remove) = budget_request(&form(" 12.50 ", "add")).unwrap();
        assert_eq!((r.amount.as_str(), remove), ("12.50", false));
        let (r, remove) = budget_request(&form("3", "remove")).unwrap();
        assert_eq!((r.amount.as_str(), remove), ("-3", true));
        for bad in [
            form("-3", "remove"),
            form("3", "steal"),
            form("lots", "add"),
        ] {
            let e = budget_request(&bad).unwrap_err();
            assert!(
                matches!(&e, Error::Validation { errors, .. } if errors[0].field == "amount"),
                "{e:?}"
            );
        }
    }
}
