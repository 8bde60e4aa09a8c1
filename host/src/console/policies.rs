//! A parent's own policies: the policies of its tree per hook beside the
//! platform's defaults, the Rhai editor and the component upload, one
//! policy's versions with shadow, enforce, rollback, deactivation and
//! deletion, and the tree's decision log. Each calls the same `ops`
//! function as the policy routes of the API (`http::policies`,
//! `http::policy_upload`, `http::policy_versions`), so a parent admin may
//! do here exactly what its API key may do there.

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{CSRF_FIELD, Form, Viewer, forged};
use super::form::{Problems, field, select};
use super::home::here;
use super::layout::{self, Here, Place};
use super::{Failure, Page, Params, Query};
use crate::Error;
use crate::http::AppState;
use crate::http::policies::{DecisionQuery, DecisionView, PolicyView, UPLOAD_BODY_BYTES_MAX};
use crate::ops::policies::{Activation, PolicyInfo, Upload};
use crate::ops::policy_versions::PolicySource;
use crate::policy::Hook;
use crate::secrets::hashes_equal;

/// What a new editor starts with: a policy that allows everything.
const STARTER_SOURCE: &str = "fn evaluate(hook, input) {\n    #{ decision: \"allow\" }\n}\n";

pub fn router() -> Router<AppState> {
    let base = "/console/accounts/{id}/policies";
    Router::new()
        .route(base, get(list))
        .route(
            &format!("{base}/new"),
            get(editor)
                .post(upload_rhai)
                // The API's limit for an upload request.
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES_MAX)),
        )
        .route(
            &format!("{base}/upload"),
            get(component_form)
                .post(upload_component)
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES_MAX)),
        )
        .route(&format!("{base}/decisions"), get(decisions))
        .route(&format!("{base}/{{policy}}"), get(policy))
        .route(
            &format!("{base}/{{policy}}/versions/{{version}}"),
            get(version_source),
        )
        .route(
            &format!("{base}/{{policy}}/versions/{{version}}/activate"),
            post(activate),
        )
        // `promote`, `clear-shadow` or `deactivate`.
        .route(&format!("{base}/{{policy}}/{{change}}"), post(change))
        .route(
            &format!("{base}/{{policy}}/delete"),
            get(confirm_delete).post(delete),
        )
}

fn base(here: &Here) -> String {
    format!("/console/accounts/{}/policies", here.id())
}

fn respond(viewer: &Viewer, here: &Here, status: StatusCode, title: &str, body: Markup) -> Page {
    Ok(layout::respond(
        status,
        layout::page(Some(viewer), Place::Account(here, "policies"), title, body),
    ))
}

#[derive(Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// The notice a fixed `?done=` code stands for (never free text).
fn notice(done: &str) -> Markup {
    let text = match done {
        "uploaded" => {
            "The version was uploaded. It is inactive until you run it in shadow or enforce it."
        }
        "uploaded-shadow" => {
            "The version was uploaded and runs in shadow: it is logged beside every decision of its hook and never changes one."
        }
        "shadow" => "The version runs in shadow.",
        "enforce" => "The version is enforced: it decides from now on.",
        "promoted" => {
            "The shadow version is enforced now; the version enforced until now is retired."
        }
        "shadow-cleared" => "The shadow version stopped.",
        "deactivated" => "The policy is inactive: no version of it runs. Its versions are kept.",
        "deleted" => "The policy and all its versions were deleted.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

fn status_badge(status: &str) -> Markup {
    let text = match status {
        "suspended_by_operator" => "suspended by the operator",
        other => other,
    };
    html! { span class=(format!("badge policy-{status}")) { (text) } }
}

/// How a hook's decisions combine, in the words of docs/POLICIES.md.
fn combination(hook: Hook) -> &'static str {
    match hook {
        Hook::Authorize => {
            "Allowed only if every policy allows: a deny from yours refuses what the defaults allow."
        }
        Hook::SubaccountValidate => {
            "The first deny is shown on the field it names: yours can only add refusals."
        }
        Hook::Visibility => {
            "Hidden fields add up and rows are the viewer's own if any policy says so: yours can only hide more."
        }
        Hook::Cascade => {
            "The most specific plan applies: yours replaces the platform's plan, after the host checks it."
        }
    }
}

fn version_text(v: Option<i64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("v{v}"))
}

// The list.

async fn list(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<DoneQuery>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let policies: Vec<PolicyView> = s
        .canopy
        .list_policies(&viewer.principal, Some(here.id()))
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let open = s.canopy.customer_hooks().await?;
    let base = base(&here);
    let body = html! {
        (notice(&q.done))
        p {
            "Your policies apply only inside this tree, after the platform's. "
            "Try a new version in shadow first: the decision log shows where it would have decided differently."
        }
        p.actions {
            a.button href=(format!("{base}/new")) { "Write a Rhai policy" }
            " "
            a.button.secondary href=(format!("{base}/upload")) { "Upload a Wasm component" }
            " "
            a.button.secondary href=(format!("{base}/decisions")) { "Decision log" }
        }
        @for hook in Hook::ALL {
            @let heading = format!("hook-{}", hook.name().replace('.', "-"));
            @let mine: Vec<&PolicyView> = policies.iter().filter(|p| p.hook == hook.name()).collect();
            section aria-labelledby=(heading) {
                h2 #(heading) { code { (hook.name()) } }
                dl.details {
                    div { dt { "Platform default" } dd { code { "default." (hook.name()) } ", then the platform's own policies" } }
                    div { dt { "Your policies" } dd {
                        @if open.contains(&hook) { "may run on this hook" }
                        @else { "may not run on this hook: the platform operator closed it to customers" }
                    } }
                }
                p.muted { (combination(hook)) }
                @if mine.is_empty() {
                    p { "None of yours: the platform's policies decide alone." }
                } @else {
                    div.table-wrap tabindex="0" role="region" aria-label=(format!("Your policies on {}", hook.name())) {
                        table {
                            caption.visually-hidden { "Your policies on " (hook.name()) }
                            thead { tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Status" }
                                th scope="col" { "Enforced" }
                                th scope="col" { "In shadow" }
                                th scope="col" { "Versions" }
                            } }
                            tbody {
                                @for p in &mine {
                                    tr {
                                        th scope="row" { a href=(format!("{base}/{}", p.id)) { (p.name) } }
                                        td { (status_badge(&p.status)) }
                                        td { (version_text(enforced(p))) }
                                        td { (version_text(p.shadow_version)) }
                                        td { (p.versions.len()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(&viewer, &here, StatusCode::OK, "Policies", body)
}

/// The enforced version (`active_version` is the shadow one when a
/// version runs in shadow alone).
fn enforced(p: &PolicyView) -> Option<i64> {
    match p.mode.as_deref() {
        Some("enforce") => p.active_version,
        _ => None,
    }
}

/// The hooks a customer's policy may attach to, as choices.
async fn hook_choices(s: &AppState) -> Result<Vec<(&'static str, &'static str)>, Failure> {
    Ok(s.canopy
        .customer_hooks()
        .await?
        .into_iter()
        .map(|h| (h.name(), h.name()))
        .collect())
}

// The Rhai editor.

#[derive(Default, Deserialize)]
struct EditorForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    hook: String,
    #[serde(default)]
    source: String,
    /// `shadow` to run the new version in shadow, anything else to keep it
    /// inactive.
    #[serde(default)]
    then: String,
}

/// Where a compile error is: its line and, when known, its column, as
/// Rhai ends its messages (`... (line 3, position 7)`).
pub fn error_at(reason: &str) -> Option<(usize, Option<usize>)> {
    let at = reason.rfind("(line ")?;
    let rest = &reason[at + "(line ".len()..];
    let digits = |text: &str| -> String { text.chars().take_while(char::is_ascii_digit).collect() };
    let line_digits = digits(rest);
    let line = line_digits.parse().ok().filter(|l| *l > 0)?;
    let column = rest[line_digits.len()..]
        .strip_prefix(", position ")
        .and_then(|r| digits(r).parse().ok())
        .filter(|c| *c > 0);
    Some((line, column))
}

/// [`error_at`], kept only where it points into `source`: the message may
/// quote what the policy returned, so its "position" is the author's text,
/// and a caret is never drawn past the end of the line it quotes.
fn error_in(reason: &str, source: &str) -> Option<(usize, Option<usize>, String)> {
    let (line, column) = error_at(reason)?;
    let text = source.lines().nth(line - 1)?;
    let column = column.filter(|c| *c <= text.chars().count() + 1);
    Some((line, column, text.to_string()))
}

/// The compile error beside the editor: where, why, and the line itself
/// with a caret under the column.
fn source_error(reason: &str, source: &str) -> Markup {
    let found = error_in(reason, source);
    let at = found.as_ref().map(|(line, column, _)| (*line, *column));
    let quoted = found.map(|(line, column, text)| {
        let caret = column.map(|c| format!("{}^", " ".repeat(c - 1)));
        (line, text, caret)
    });
    html! {
        div.field-error.source-error #f-source-error {
            p {
                @match at {
                    Some((line, Some(column))) => { "Line " (line) ", column " (column) ": " },
                    Some((line, None)) => { "Line " (line) ": " },
                    None => {},
                }
                (reason)
            }
            @if let Some((line, text, caret)) = quoted {
                pre.code-line { (line) " | " (text) @if let Some(caret) = caret { "\n" (" ".repeat(line.to_string().len() + 3)) (caret) } }
            }
        }
    }
}

fn editor_view(
    viewer: &Viewer,
    here: &Here,
    hooks: &[(&str, &str)],
    f: &EditorForm,
    problems: &Problems,
) -> Markup {
    let base = base(here);
    let hook = if f.hook.is_empty() {
        hooks.first().map_or("", |(h, _)| *h)
    } else {
        f.hook.as_str()
    };
    let then = if f.then.is_empty() {
        "shadow"
    } else {
        f.then.as_str()
    };
    let source_problem = problems.on("source");
    html! {
        p { "A policy defines " code { "fn evaluate(hook, input)" } " and returns the hook's document, e.g. "
            code { "#{ decision: \"deny\", reason: \"...\" }" } ". "
            "It is compiled and run on the hook's sample inputs before it is stored. docs/POLICIES.md describes every hook's input and output." }
        (problems.summary())
        form.editor method="post" action=(format!("{base}/new")) {
            (layout::csrf(viewer))
            (field("name", "Name", "text", &f.name, problems,
                Some("Uploading under a policy's name (any case) adds its next version.")))
            (select("hook", "Hook", hooks, hook, problems))
            div.field.source-field {
                label for="f-source" { "Rhai source" }
                @if let Some(reason) = source_problem { (source_error(reason, &f.source)) }
                // The leading line break is dropped by HTML, so a source
                // that starts with one keeps it.
                textarea.code #f-source name="source" rows="18" spellcheck="false" autocapitalize="off"
                    aria-invalid=[source_problem.map(|_| "true")]
                    aria-describedby=[source_problem.map(|_| "f-source-error")] {
                    "\n" (f.source)
                }
            }
            (select("then", "Then", &[("shadow", "Run it in shadow (logged, never deciding)"), ("inactive", "Keep it inactive")], then, problems))
            button type="submit" { "Upload the policy" }
            " "
            a.button.secondary href=(base) { "Cancel" }
        }
    }
}

#[derive(Default, Deserialize)]
struct StartFrom {
    /// Start from a version of this policy...
    #[serde(default)]
    policy: String,
    /// ...this one.
    #[serde(default)]
    version: Option<i64>,
}

async fn editor(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<StartFrom>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let mut f = EditorForm {
        source: STARTER_SOURCE.to_string(),
        ..EditorForm::default()
    };
    if !q.policy.is_empty() {
        let info = s
            .canopy
            .get_policy(&viewer.principal, Some(here.id()), &q.policy)
            .await?;
        let version = q
            .version
            .or_else(|| info.versions.last().map(|v| v.version))
            .unwrap_or(1);
        match s
            .canopy
            .policy_source(&viewer.principal, Some(here.id()), &q.policy, version)
            .await?
        {
            PolicySource::Rhai(text) => f.source = text,
            PolicySource::Wasm(_) => {
                return Err(Failure(Error::invalid(
                    "version",
                    "is a Wasm component; only a Rhai version opens in the editor",
                )));
            }
        }
        f.name = info.policy.name;
        f.hook = info.policy.hook;
    } else {
        // Who may not manage policies learns it here, not after typing.
        s.canopy
            .list_policies(&viewer.principal, Some(here.id()))
            .await?;
    }
    let hooks = hook_choices(&s).await?;
    let body = editor_view(&viewer, &here, &hooks, &f, &Problems::default());
    respond(&viewer, &here, StatusCode::OK, "Write a Rhai policy", body)
}

async fn upload_rhai(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Form(f): Form<EditorForm>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let upload = Upload {
        name: f.name.clone(),
        hook: f.hook.clone(),
        runtime: "rhai".into(),
        source: Some(f.source.clone()),
        module: None,
    };
    match s
        .canopy
        .upload_policy(&viewer.principal, Some(here.id()), upload)
        .await
    {
        Ok(up) => {
            let done = if f.then == "shadow" {
                s.canopy
                    .set_policy_active(
                        &viewer.principal,
                        Some(here.id()),
                        &up.id,
                        Some((
                            up.version,
                            Activation {
                                mode: "shadow".into(),
                            },
                        )),
                    )
                    .await?;
                "uploaded-shadow"
            } else {
                "uploaded"
            };
            Ok(Redirect::to(&format!("{}/{}?done={done}", base(&here), up.id)).into_response())
        }
        Err(e) => {
            let problems = Problems::of(e)?;
            let hooks = hook_choices(&s).await?;
            let body = editor_view(&viewer, &here, &hooks, &f, &problems);
            respond(
                &viewer,
                &here,
                problems.status(),
                "Write a Rhai policy",
                body,
            )
        }
    }
}

// The component upload.

fn component_view(
    viewer: &Viewer,
    here: &Here,
    hooks: &[(&str, &str)],
    name: &str,
    hook: &str,
    problems: &Problems,
) -> Markup {
    let base = base(here);
    let problem = problems.on("module");
    html! {
        p { "A Wasm component of the world " code { "canopy:policy/policy" } " (plugins/wit), up to 4 MiB. "
            "A core module built for " code { "wasm32-unknown-unknown" } " is not one: run "
            code { "canopy policy componentize MODULE.wasm -o COMPONENT.wasm" } " first. "
            "The version is uploaded inactive; run it in shadow from its page." }
        (problems.summary())
        form method="post" action=(format!("{base}/upload")) enctype="multipart/form-data" {
            // First, so the token is checked before the file is read.
            (layout::csrf(viewer))
            (field("name", "Name", "text", name, problems,
                Some("Uploading under a policy's name (any case) adds its next version.")))
            (select("hook", "Hook", hooks, hook, problems))
            div.field {
                label for="f-module" { "Component file (.wasm)" }
                input #f-module type="file" name="module" accept=".wasm,application/wasm"
                    aria-invalid=[problem.map(|_| "true")]
                    aria-describedby=[problem.map(|_| "f-module-error")];
                @if let Some(reason) = problem { span.field-error #f-module-error { (reason) } }
            }
            button type="submit" { "Upload the component" }
            " "
            a.button.secondary href=(base) { "Cancel" }
        }
    }
}

async fn component_form(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    s.canopy
        .list_policies(&viewer.principal, Some(here.id()))
        .await?;
    let hooks = hook_choices(&s).await?;
    let first = hooks.first().map_or("", |(h, _)| *h);
    let body = component_view(&viewer, &here, &hooks, "", first, &Problems::default());
    respond(
        &viewer,
        &here,
        StatusCode::OK,
        "Upload a Wasm component",
        body,
    )
}

/// The CSRF token a multipart form carries in its first field; `false`
/// when that field is not the token, or not this viewer's.
async fn multipart_token_ok(form: &mut Multipart, viewer: &Viewer) -> bool {
    let Ok(Some(first)) = form.next_field().await else {
        return false;
    };
    if first.name() != Some(CSRF_FIELD) {
        return false;
    }
    first
        .text()
        .await
        .is_ok_and(|token| hashes_equal(&token, &viewer.csrf))
}

async fn upload_component(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    req: Request,
) -> Page {
    let Ok(mut form) = Multipart::from_request(req, &s).await else {
        return Ok(forged());
    };
    if !multipart_token_ok(&mut form, &viewer).await {
        // Refused before anything is read; the rest (within the body
        // limit) is discarded so the browser gets the answer, not a reset.
        while let Ok(Some(mut rest)) = form.next_field().await {
            while let Ok(Some(_)) = rest.chunk().await {}
        }
        return Ok(forged());
    }
    let here = here(&s, &viewer, &id).await?;
    let upload = crate::http::policy_upload::from_multipart(form)
        .await
        .and_then(|u| match u.module.as_deref() {
            Some("") => Err(Error::invalid(
                "module",
                "is empty: choose the component file to upload",
            )),
            _ => Ok(u),
        });
    let (name, hook) = upload
        .as_ref()
        .map(|u| (u.name.clone(), u.hook.clone()))
        .unwrap_or_default();
    let result = match upload {
        Ok(u) => {
            s.canopy
                .upload_policy(&viewer.principal, Some(here.id()), u)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(up) => {
            Ok(Redirect::to(&format!("{}/{}?done=uploaded", base(&here), up.id)).into_response())
        }
        Err(e) => {
            let problems = Problems::of(e)?;
            let hooks = hook_choices(&s).await?;
            let body = component_view(&viewer, &here, &hooks, &name, &hook, &problems);
            respond(
                &viewer,
                &here,
                problems.status(),
                "Upload a Wasm component",
                body,
            )
        }
    }
}

// One policy.

async fn policy_page(
    s: &AppState,
    viewer: &Viewer,
    here: &Here,
    policy_id: &str,
    done: &str,
    problems: &Problems,
) -> Page {
    let info: PolicyInfo = s
        .canopy
        .get_policy(&viewer.principal, Some(here.id()), policy_id)
        .await?;
    let slots = info.slots();
    let view = PolicyView::from(info);
    let here_base = base(here);
    let base = format!("{here_base}/{}", view.id);
    let rhai = view.versions.iter().any(|v| v.runtime == "rhai");
    let body = html! {
        (notice(done))
        (problems.summary())
        section aria-labelledby="now" {
            h2 #now { "What runs now" }
            dl.details {
                div { dt { "Hook" } dd { code { (view.hook) } } }
                div { dt { "Status" } dd { (status_badge(&view.status)) } }
                div { dt { "Enforced" } dd { (version_text(slots.enforced)) } }
                div { dt { "In shadow" } dd { (version_text(slots.shadow)) } }
                div { dt { "Policy id" } dd { code { (view.id) } } }
            }
            @if view.status == "suspended_by_operator" {
                p.warning { "The platform operator closed " code { (view.hook) } " to customers: this policy runs nowhere until it opens again. Its versions and modes are kept." }
            }
            @if let Some(b) = &view.breaker {
                p.warning { "Its circuit breaker is " strong { (b.state) } " after " (b.failures) " failures in a row: it fails closed without being evaluated"
                    @if let Some(until) = b.until { " until " (until.format("%Y-%m-%d %H:%M:%S UTC")) } "." }
            }
            div.actions {
                @if let Some(v) = slots.shadow {
                    form.inline-form method="post" action=(format!("{base}/promote")) {
                        (layout::csrf(viewer))
                        button type="submit" { "Enforce v" (v) " (promote from shadow)" }
                    }
                    form.inline-form method="post" action=(format!("{base}/clear-shadow")) {
                        (layout::csrf(viewer))
                        button.secondary type="submit" { "Stop the shadow v" (v) }
                    }
                }
                @if !slots.is_inactive() {
                    form.inline-form method="post" action=(format!("{base}/deactivate")) {
                        (layout::csrf(viewer))
                        button.secondary type="submit" { "Deactivate (stop every version)" }
                    }
                }
                a.button.secondary href=(format!("{here_base}/decisions?policy_id={}", view.id)) { "Its decisions" }
                @if rhai {
                    a.button.secondary href=(format!("{here_base}/new?policy={}", view.id)) { "Edit as a new version" }
                }
                a.button.secondary href=(format!("{base}/delete")) { "Delete…" }
            }
        }
        section aria-labelledby="versions" {
            h2 #versions { "Versions" }
            p.muted { "Enforcing an older version rolls back to it; the version in shadow keeps running beside it." }
            div.table-wrap tabindex="0" role="region" aria-label="Versions" {
                table {
                    thead { tr {
                        th scope="col" { "Version" }
                        th scope="col" { "Runs" }
                        th scope="col" { "Runtime" }
                        th scope="col" class="num" { "Bytes" }
                        th scope="col" { "Uploaded" }
                        th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for v in view.versions.iter().rev() {
                            @let runs = if slots.enforced == Some(v.version) { "enforced" } else if slots.shadow == Some(v.version) { "in shadow" } else { "—" };
                            tr {
                                th scope="row" { a href=(format!("{base}/versions/{}", v.version)) { "v" (v.version) } }
                                td { (runs) }
                                td { (v.runtime) }
                                td.num { (v.size_bytes) }
                                td { (v.created_at.format("%Y-%m-%d %H:%M")) }
                                td.actions {
                                    @if slots.shadow != Some(v.version) {
                                        form.inline-form method="post" action=(format!("{base}/versions/{}/activate", v.version)) {
                                            (layout::csrf(viewer))
                                            input type="hidden" name="mode" value="shadow";
                                            button.secondary type="submit" { "Run v" (v.version) " in shadow" }
                                        }
                                    }
                                    @if slots.enforced != Some(v.version) {
                                        form.inline-form method="post" action=(format!("{base}/versions/{}/activate", v.version)) {
                                            (layout::csrf(viewer))
                                            input type="hidden" name="mode" value="enforce";
                                            button.secondary type="submit" {
                                                @if slots.enforced.is_some_and(|e| e > v.version) { "Roll back to v" (v.version) }
                                                @else { "Enforce v" (v.version) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href=(here_base) { "Back to the policies" } }
    };
    let title = format!("Policy {}", view.name);
    respond(viewer, here, problems.status(), &title, body)
}

async fn policy(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, policy_id)): Params<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    policy_page(
        &s,
        &viewer,
        &here,
        &policy_id,
        &q.done,
        &Problems::default(),
    )
    .await
}

/// After a change on a policy's page: back to it with the notice, or the
/// page again with the refusal.
async fn after(
    s: &AppState,
    viewer: &Viewer,
    here: &Here,
    policy_id: &str,
    done: &str,
    result: Result<PolicyInfo, Error>,
) -> Page {
    match result {
        Ok(_) => {
            Ok(Redirect::to(&format!("{}/{policy_id}?done={done}", base(here))).into_response())
        }
        Err(e) => {
            let problems = Problems::of(e)?;
            policy_page(s, viewer, here, policy_id, "", &problems).await
        }
    }
}

#[derive(Default, Deserialize)]
struct ModeForm {
    #[serde(default)]
    mode: String,
}

async fn activate(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, policy_id, version)): Params<(String, String, i64)>,
    Form(f): Form<ModeForm>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let done = if f.mode == "enforce" {
        "enforce"
    } else {
        "shadow"
    };
    let result = s
        .canopy
        .set_policy_active(
            &viewer.principal,
            Some(here.id()),
            &policy_id,
            Some((version, Activation { mode: f.mode })),
        )
        .await;
    after(&s, &viewer, &here, &policy_id, done, result).await
}

/// A change of which versions run, as a policy page's buttons post it.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Change {
    /// The shadow version is enforced (`POST .../promote` in the API).
    Promote,
    /// The shadow version stops (`DELETE .../shadow`).
    ClearShadow,
    /// No version runs (`POST .../deactivate`).
    Deactivate,
}

async fn change(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, policy_id, change)): Params<(String, String, Change)>,
    Form(()): Form<()>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let (p, parent) = (&viewer.principal, Some(here.id()));
    let (result, done) = match change {
        Change::Promote => (
            s.canopy.promote_policy(p, parent, &policy_id).await,
            "promoted",
        ),
        Change::ClearShadow => (
            s.canopy.clear_policy_shadow(p, parent, &policy_id).await,
            "shadow-cleared",
        ),
        Change::Deactivate => (
            s.canopy
                .set_policy_active(p, parent, &policy_id, None)
                .await,
            "deactivated",
        ),
    };
    after(&s, &viewer, &here, &policy_id, done, result).await
}

async fn confirm_delete(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, policy_id)): Params<(String, String)>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let info = s
        .canopy
        .get_policy(&viewer.principal, Some(here.id()), &policy_id)
        .await?;
    let slots = info.slots();
    let page = format!("{}/{}", base(&here), info.policy.id);
    let body = html! {
        @if slots.is_inactive() {
            p { "Deleting " strong { (info.policy.name) } " removes the policy and its "
                (info.versions.len()) " version(s) for good; its name becomes free for a new policy. "
                "Nothing changes in what is decided (no version of it runs). "
                "Decisions that named it stay in the decision log." }
            form method="post" action=(format!("{page}/delete")) {
                (layout::csrf(&viewer))
                button.danger type="submit" { "Delete " (info.policy.name) }
                " "
                a.button.secondary href=(page) { "Cancel" }
            }
        } @else {
            p.warning { strong { (info.policy.name) } " still runs ("
                @if let Some(v) = slots.enforced { "v" (v) " enforced" @if slots.shadow.is_some() { ", " } }
                @if let Some(v) = slots.shadow { "v" (v) " in shadow" }
                "), so it cannot be deleted. Deactivate it on its page first; then delete it." }
            p { a href=(page) { "Back to " (info.policy.name) } }
        }
    };
    let title = format!("Delete {}?", info.policy.name);
    respond(&viewer, &here, StatusCode::OK, &title, body)
}

async fn delete(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, policy_id)): Params<(String, String)>,
    Form(()): Form<()>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    match s
        .canopy
        .delete_policy(&viewer.principal, Some(here.id()), &policy_id)
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("{}?done=deleted", base(&here))).into_response()),
        Err(e) => {
            let problems = Problems::of(e)?;
            policy_page(&s, &viewer, &here, &policy_id, "", &problems).await
        }
    }
}

async fn version_source(
    State(s): State<AppState>,
    viewer: Viewer,
    Params((id, policy_id, version)): Params<(String, String, i64)>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let info = s
        .canopy
        .get_policy(&viewer.principal, Some(here.id()), &policy_id)
        .await?;
    let source = s
        .canopy
        .policy_source(&viewer.principal, Some(here.id()), &policy_id, version)
        .await?;
    let page = format!("{}/{}", base(&here), info.policy.id);
    let sha = info
        .versions
        .iter()
        .find(|v| v.version == version)
        .map(|v| v.sha256.clone())
        .unwrap_or_default();
    let body = html! {
        dl.details {
            div { dt { "Hook" } dd { code { (info.policy.hook) } } }
            div { dt { "SHA-256" } dd { code.hash { (sha) } } }
        }
        @match &source {
            PolicySource::Rhai(text) => {
                section aria-labelledby="source" {
                    h2 #source { "Rhai source" }
                    pre.code tabindex="0" { code { (text) } }
                    p { a href=(format!("{}/new?policy={}&version={version}", base(&here), info.policy.id)) { "Edit as a new version" } }
                }
            },
            PolicySource::Wasm(bytes) => {
                p { "A Wasm component of " (bytes.len()) " bytes. The API returns its bytes at "
                    code { "GET /v1/accounts/" (here.id()) "/policies/" (info.policy.id) "/versions/" (version) "/source" } "." }
            },
        }
        p { a href=(page) { "Back to " (info.policy.name) } }
    };
    let title = format!("{} v{version}", info.policy.name);
    respond(&viewer, &here, StatusCode::OK, &title, body)
}

// The decision log.

/// The decision log's filters as a plain GET form sends them: an empty
/// field is no filter.
#[derive(Default, Deserialize)]
struct DecisionFilter {
    #[serde(default)]
    hook: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    policy_id: String,
    /// `true` (the checkbox) for shadow disagreements only.
    #[serde(default)]
    shadow_disagrees: String,
    #[serde(default)]
    cursor: String,
}

impl DecisionFilter {
    fn given(text: &str) -> Option<String> {
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// The API route's query, checked by it.
    fn query(&self) -> DecisionQuery {
        DecisionQuery {
            hook: Self::given(&self.hook),
            outcome: Self::given(&self.outcome),
            action: Self::given(&self.action),
            policy_id: Self::given(&self.policy_id),
            shadow_disagrees: (self.shadow_disagrees == "true").then_some(true),
            account_id: None,
            limit: None,
            cursor: Self::given(&self.cursor),
            created_after: None,
            created_before: None,
        }
    }

    /// The address of these filters, at `cursor`.
    fn url(&self, base: &str, cursor: Option<&str>) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("hook", &self.hook),
            ("outcome", &self.outcome),
            ("action", &self.action),
            ("policy_id", &self.policy_id),
            ("shadow_disagrees", &self.shadow_disagrees),
        ] {
            if let Some(v) = Self::given(v) {
                url.append_pair(k, &v);
            }
        }
        if let Some(c) = cursor {
            url.append_pair("cursor", c);
        }
        let query = url.finish();
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{query}")
        }
    }
}

fn decision_row(d: &DecisionView) -> Markup {
    html! {
        tr class=[d.shadow_disagrees.then_some("disagrees")] {
            td data-label="When" { (d.created_at.format("%Y-%m-%d %H:%M:%S")) }
            td data-label="Action" { code { (d.action) } }
            td data-label="Hook" { code { (d.hook) } }
            td data-label="Account" { @if let Some(a) = &d.account_id { code.hash { (a) } } @else { "—" } }
            td data-label="Outcome" {
                span class=(format!("badge outcome-{}", d.outcome)) { (d.outcome) }
                @if d.shadow_disagrees { " " strong.marker { "Shadow disagrees" } }
                @if let Some(r) = &d.reason { div.muted { (r) } }
            }
            td data-label="Policies" {
                ul.policies {
                    @for p in &d.policies {
                        li class=[(p.disagrees == Some(true)).then_some("disagrees")] {
                            (p.name) " v" (p.version) " (" (p.mode) "): " strong { (p.outcome) }
                            @if p.disagrees == Some(true) { " " strong.marker { "disagrees" } }
                            @if let Some(r) = &p.reason { " — " (r) }
                        }
                    }
                }
            }
        }
    }
}

async fn decisions(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(f): Query<DecisionFilter>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let base = format!("{}/decisions", base(&here));
    // Naming policies is a help; a viewer who may not list them filters by id.
    let policies = s
        .canopy
        .list_policies(&viewer.principal, Some(here.id()))
        .await
        .unwrap_or_default();
    let (listed, problems) = match f.query().split() {
        Ok((filter, page)) => {
            let page = s
                .canopy
                .list_decisions(&viewer.principal, Some(here.id()), filter, &page)
                .await?;
            let next = crate::http::cursor(page.next_after);
            let items: Vec<DecisionView> = page.items.into_iter().map(Into::into).collect();
            (Some((items, next)), Problems::default())
        }
        Err(e) => (None, Problems::of(e)?),
    };
    let hooks: Vec<(&str, &str)> = std::iter::once(("", "Any hook"))
        .chain(Hook::ALL.iter().map(|h| (h.name(), h.name())))
        .collect();
    let mut policy_choices: Vec<(&str, &str)> = vec![("", "Any policy")];
    policy_choices.extend(
        policies
            .iter()
            .map(|p| (p.policy.id.as_str(), p.policy.name.as_str())),
    );
    let body = html! {
        p { "Every decision of this tree's hooks, newest first: the enforced outcome and what each policy said. "
            "A row marked " strong { "Shadow disagrees" } " is one where a version in shadow would have decided differently." }
        section aria-labelledby="filters" {
            h2 #filters { "Filters" }
            (problems.summary())
            form.inline-form.filters method="get" action=(base)
                hx-get=(base) hx-target="#decision-list" hx-select="#decision-list" hx-swap="outerHTML"
                hx-push-url="true" hx-trigger="change, submit" {
                (select("hook", "Hook", &hooks, &f.hook, &problems))
                (select("outcome", "Outcome", &[("", "Any outcome"), ("allow", "allow"), ("deny", "deny"), ("error", "error")], &f.outcome, &problems))
                @if policies.is_empty() {
                    (field("policy_id", "Policy id", "text", &f.policy_id, &problems, None))
                } @else {
                    (select("policy_id", "Policy", &policy_choices, &f.policy_id, &problems))
                }
                (field("action", "Action", "text", &f.action, &problems, None))
                div.field.check {
                    input #f-shadow_disagrees type="checkbox" name="shadow_disagrees" value="true" checked[f.shadow_disagrees == "true"];
                    label for="f-shadow_disagrees" { "Shadow disagreements only" }
                }
                button type="submit" { "Show decisions" }
            }
        }
        div #decision-list {
            @if let Some((items, next)) = &listed {
                @if items.is_empty() {
                    p { "No decision matches." }
                } @else {
                    div.table-wrap tabindex="0" role="region" aria-label="Decisions" {
                        table.decisions {
                            caption.visually-hidden { "Decisions, newest first" }
                            thead { tr {
                                th scope="col" { "When (UTC)" }
                                th scope="col" { "Action" }
                                th scope="col" { "Hook" }
                                th scope="col" { "Account" }
                                th scope="col" { "Outcome" }
                                th scope="col" { "Policies" }
                            } }
                            tbody { @for d in items { (decision_row(d)) } }
                        }
                    }
                }
                @if let Some(next) = next {
                    p { a href=(f.url(&base, Some(next))) rel="next" { "Older decisions" } }
                }
                @if !f.cursor.is_empty() {
                    p { a href=(f.url(&base, None)) { "Back to the newest" } }
                }
            }
        }
        p { a href=(format!("/console/accounts/{}/policies", here.id())) { "Back to the policies" } }
    };
    respond(&viewer, &here, problems.status(), "Decision log", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compile_error_names_its_line_and_column() {
        assert_eq!(
            error_at("Expecting ')' (line 3, position 17)"),
            Some((3, Some(17)))
        );
        assert_eq!(
            error_at("fails on sample 1 (line 1, position 2): bad (line 4, position 9)"),
            Some((4, Some(9)))
        );
        assert_eq!(error_at("oops (line 2)"), Some((2, None)));
        assert_eq!(error_at("the script must define `fn evaluate`"), None);
        assert_eq!(error_at("(line 0, position 1)"), None);
    }

    #[test]
    fn a_position_outside_the_source_draws_no_caret() {
        let source = "fn evaluate(hook, input) {\n    #{ decision: \"x\" }\n}\n";
        // A policy's own output can say "(line 1, position 999999999999)".
        let forged = "sample 1: `decision` must be \"allow\" or \"deny\", not \"x (line 1, position 999999999999)\"";
        assert_eq!(
            error_in(forged, source),
            Some((1, None, "fn evaluate(hook, input) {".into()))
        );
        assert_eq!(error_in("bad (line 9, position 1)", source), None);
        assert_eq!(
            error_in("bad (line 2, position 5)", source).map(|(l, c, _)| (l, c)),
            Some((2, Some(5)))
        );
        let page = source_error(forged, source).into_string();
        assert!(page.len() < 2_000, "{page}");
        assert!(!page.contains('^'), "{page}");
    }

    #[test]
    fn the_decision_filters_keep_only_what_was_given() {
        let f = DecisionFilter {
            hook: "authorize".into(),
            shadow_disagrees: "true".into(),
            ..DecisionFilter::default()
        };
        assert_eq!(
            f.url("/d", Some("abc")),
            "/d?hook=authorize&shadow_disagrees=true&cursor=abc"
        );
        assert_eq!(DecisionFilter::default().url("/d", None), "/d");
        let q = f.query();
        assert_eq!(q.shadow_disagrees, Some(true));
        assert_eq!(q.outcome, None);
    }
}
