//! A parent's own policies in the console: the Rhai editor shows a compile
//! error on its line and keeps the source, a valid policy runs in shadow,
//! the decision log highlights where it disagrees and filters to those,
//! enforce and rollback decide as in the API, a component upload refuses a
//! file that is no component, forms (urlencoded and multipart) need their
//! CSRF token, and no one but the tree's admin reaches these pages.

use canopy_e2e::browser::Browser;
use canopy_e2e::console::{Console, PASSWORD, admin_of, multipart, user_in};
use canopy_e2e::{Parent, TestApp, both_backends, repo_file};
use serde_json::{Value, json};

/// A shadow-worthy policy: no new sub-accounts.
const NO_NEW_TEAMS: &str = "fn evaluate(hook, input) {
    if input.action == \"subaccount.create\" {
        return #{ decision: \"deny\", reason: \"no new teams\" };
    }
    #{ decision: \"allow\" }
}
";

/// The same with a syntax error on line 2.
const BROKEN: &str = "fn evaluate(hook, input) {
    if input.action === \"subaccount.create\" {
        return #{ decision: \"deny\", reason: \"no new teams\" };
    }
    #{ decision: \"allow\" }
}
";

const ALLOW_ALL: &str = "fn evaluate(hook, input) {\n    #{ decision: \"allow\" }\n}\n";

/// Text as maud writes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn policies_of(parent: &Parent) -> String {
    format!("/console/accounts/{}/policies", parent.id)
}

/// A parent whose admin is signed in to the console.
async fn signed_in(app: &TestApp, domain: &str) -> (Parent, Console) {
    let parent = app.parent(domain, "reseller").await;
    let email = admin_of(app, &parent, domain).await;
    let console = Console::user(app, &email, PASSWORD).await;
    (parent, console)
}

async fn api_policies(app: &TestApp, parent: &Parent) -> Vec<Value> {
    app.get(&format!("/v1/accounts/{}/policies", parent.id), &parent.key)
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Uploads `source` from the editor; returns the page it lands on.
async fn upload(
    console: &Console,
    parent: &Parent,
    name: &str,
    source: &str,
    then: &str,
) -> canopy_e2e::console::Fetched {
    let editor = format!("{}/new", policies_of(parent));
    console
        .post(
            &editor,
            &editor,
            &[
                ("name", name),
                ("hook", "authorize"),
                ("source", source),
                ("then", then),
            ],
        )
        .await
}

/// The policy id in a policy page's address.
fn policy_id(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

/// The rows of the decision table, and how many are marked as shadow
/// disagreements.
fn rows(html: &str) -> (usize, usize) {
    let Some(body) = html.split("<tbody>").nth(1) else {
        return (0, 0);
    };
    let body = body.split("</tbody>").next().unwrap();
    (
        body.matches("<tr").count(),
        body.matches("<tr class=\"disagrees\">").count(),
    )
}

/// The decision log page at `query`, once it shows a disagreement
/// (decisions are written in batches, off the request path).
async fn log_with_disagreement(console: &Console, parent: &Parent, query: &str) -> String {
    let path = format!("{}/decisions{query}", policies_of(parent));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = console.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.html);
        if rows(&page.html).1 > 0 {
            return page.html;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no disagreement at {path}: {}",
            page.html
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn the_editor_shows_a_compile_error_on_its_line_and_uploads_in_shadow(app) {
        let (parent, console) = signed_in(&app, "pol-editor.example").await;
        let editor = format!("{}/new", policies_of(&parent));
        let page = console.get(&editor).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("<textarea class=\"code\""), "{}", page.html);
        // A syntax error: shown beside the editor with its line, the
        // source kept as typed, nothing stored.
        let page = upload(&console, &parent, "no new teams", BROKEN, "shadow").await;
        assert_eq!(page.status, 422, "{}", page.html);
        let error = page.html.split("id=\"f-source-error\"").nth(1).expect("the error is beside the editor");
        assert!(error.contains("Line 2"), "{error}");
        assert!(page.html.contains("aria-describedby=\"f-source-error\""), "{}", page.html);
        assert!(page.html.contains(&escaped(BROKEN)), "the source is kept: {}", page.html);
        assert!(page.html.contains("value=\"no new teams\""), "{}", page.html);
        assert!(api_policies(&app, &parent).await.is_empty());
        // A script without `evaluate` is refused too, without a line.
        let page = upload(&console, &parent, "no new teams", "let x = 1;", "shadow").await;
        assert_eq!(page.status, 422);
        assert!(page.html.contains("fn evaluate(hook, input)"), "{}", page.html);
        // Fixed, it uploads and runs in shadow.
        let page = upload(&console, &parent, "no new teams", NO_NEW_TEAMS, "shadow").await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("runs in shadow"), "{}", page.html);
        let id = policy_id(&page.url);
        let doc = app.get(&format!("/v1/accounts/{}/policies/{id}", parent.id), &parent.key).await.expect(200);
        assert_eq!(doc["status"], "shadow", "{doc}");
        assert_eq!(doc["shadow_version"], 1);
        let source = console.get(&format!("{}/{id}/versions/1", policies_of(&parent))).await;
        assert!(source.html.contains(&escaped("return #{ decision: \"deny\"")), "{}", source.html);
        // The list shows it on its hook.
        let list = console.get(&policies_of(&parent)).await;
        assert!(list.html.contains("no new teams") && list.html.contains("badge policy-shadow"), "{}", list.html);
        assert!(list.html.contains("default.authorize"), "{}", list.html);
        // The editor opens a version to edit as the next one.
        let next = console.get(&format!("{editor}?policy={id}")).await;
        assert!(next.html.contains(&escaped("no new teams")) && next.html.contains(&escaped("reason: \"no new teams\"")), "{}", next.html);
    }

    async fn disagreements_are_highlighted_and_enforce_and_rollback_decide(app) {
        let (parent, console) = signed_in(&app, "pol-log.example").await;
        let page = upload(&console, &parent, "no new teams", NO_NEW_TEAMS, "shadow").await;
        let id = policy_id(&page.url);
        let policy = format!("{}/{id}", policies_of(&parent));
        // In shadow, the API still creates the sub-account...
        let sub = app.sub(&parent, "Team", "team@pol-log.example").await;
        app.get(&format!("/v1/accounts/{}", sub.id), &parent.key).await.expect(200);
        // ...and the log shows the disagreement, marked in text.
        let all = log_with_disagreement(&console, &parent, "").await;
        let (total, disagreeing) = rows(&all);
        assert!(total > disagreeing, "agreeing decisions are listed too: {all}");
        let marked = all.split("<tr class=\"disagrees\">").nth(1).unwrap().split("</tr>").next().unwrap();
        assert!(marked.contains("subaccount.create") && marked.contains("Shadow disagrees"), "{marked}");
        assert!(marked.contains("no new teams"), "the shadow's reason: {marked}");
        // The filter shows only disagreements.
        let only = log_with_disagreement(&console, &parent, "?shadow_disagrees=true").await;
        let (total, disagreeing) = rows(&only);
        assert_eq!(total, disagreeing, "{only}");
        assert!(only.contains("checked"), "the checkbox stays checked");
        // Other filters, as the API takes them; a bad one is shown on its field.
        let denied = console.get(&format!("{}/decisions?outcome=deny&hook=authorize", policies_of(&parent))).await;
        assert_eq!(rows(&denied.html).0, 0, "nothing was denied: {}", denied.html);
        let mine = console.get(&format!("{}/decisions?policy_id={id}&shadow_disagrees=true", policies_of(&parent))).await;
        assert!(rows(&mine.html).1 > 0, "{}", mine.html);
        let bad = console.get(&format!("{}/decisions?outcome=maybe", policies_of(&parent))).await;
        assert_eq!(bad.status, 422, "{}", bad.html);
        assert!(bad.html.contains("id=\"f-outcome-error\""), "{}", bad.html);
        // Enforce (promote from shadow): the API now refuses.
        let page = console.post(&policy, &format!("{policy}/promote"), &[]).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("The shadow version is enforced now"), "{}", page.html);
        let refused = app.try_sub(&parent, "Team 2", "team2@pol-log.example", json!({})).await.expect_problem(403, "policy_denied");
        assert_eq!(refused["policy"]["id"], id.as_str());
        // Version 2 allows everything; enforced, it decides.
        let page = upload(&console, &parent, "No New Teams", ALLOW_ALL, "inactive").await;
        assert_eq!(policy_id(&page.url), id, "the same name is the same policy");
        assert!(page.html.contains("Enforce v2"), "{}", page.html);
        let page = console.post(&policy, &format!("{policy}/versions/2/activate"), &[("mode", "enforce")]).await;
        assert!(page.html.contains("The version is enforced"), "{}", page.html);
        app.sub(&parent, "Team 3", "team3@pol-log.example").await;
        // Roll back to version 1: refused again.
        assert!(page.html.contains("Roll back to v1"), "{}", page.html);
        let page = console.post(&policy, &format!("{policy}/versions/1/activate"), &[("mode", "enforce")]).await;
        assert_eq!(page.status, 200, "{}", page.html);
        app.try_sub(&parent, "Team 4", "team4@pol-log.example", json!({})).await.expect_problem(403, "policy_denied");
        let doc = app.get(&format!("/v1/accounts/{}/policies/{id}", parent.id), &parent.key).await.expect(200);
        assert_eq!(doc["active_version"], 1, "{doc}");
        // A refusal of the API shows on the page: no shadow to promote.
        let page = console.post(&policy, &format!("{policy}/promote"), &[]).await;
        assert_eq!(page.status, 409, "{}", page.html);
        assert!(page.html.contains("no version in shadow"), "{}", page.html);
        // Delete: the confirmation says it still runs; deactivated, it goes.
        let confirm = console.get(&format!("{policy}/delete")).await;
        assert!(confirm.html.contains("still runs") && !confirm.html.contains("/delete\""), "{}", confirm.html);
        let page = console.post(&policy, &format!("{policy}/deactivate"), &[]).await;
        assert!(page.html.contains("The policy is inactive"), "{}", page.html);
        app.sub(&parent, "Team 5", "team5@pol-log.example").await;
        let confirm = console.get(&format!("{policy}/delete")).await;
        assert!(confirm.html.contains("2 version(s) for good"), "{}", confirm.html);
        assert!(api_policies(&app, &parent).await.len() == 1, "the confirmation changes nothing");
        let page = console.post(&format!("{policy}/delete"), &format!("{policy}/delete"), &[]).await;
        assert!(page.html.contains("were deleted"), "{}", page.html);
        assert!(api_policies(&app, &parent).await.is_empty());
    }

    async fn a_component_upload_refuses_a_file_that_is_no_component(app) {
        let (parent, console) = signed_in(&app, "pol-wasm.example").await;
        let path = format!("{}/upload", policies_of(&parent));
        let page = console.get(&path).await;
        assert!(page.html.contains("enctype=\"multipart/form-data\""), "{}", page.html);
        let csrf = page.csrf();
        let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("name", None, b"allow-list"),
            ("hook", None, b"subaccount.validate"), ("module", Some("policy.wasm"), NO_NEW_TEAMS.as_bytes())]);
        let page = console.post_body(&path, &ct, body).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("id=\"f-module-error\"") && page.html.contains("not WebAssembly"), "{}", page.html);
        assert!(page.html.contains("value=\"allow-list\""), "{}", page.html);
        // No file chosen.
        let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("name", None, b"allow-list"),
            ("hook", None, b"subaccount.validate"), ("module", Some(""), b"")]);
        let page = console.post_body(&path, &ct, body).await;
        assert!(page.html.contains("choose the component file"), "{}", page.html);
        assert!(api_policies(&app, &parent).await.is_empty());
        // A real component uploads, inactive.
        let wasm = repo_file("policies/examples/domain_allowlist.wasm");
        let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("name", None, b"allow-list"),
            ("hook", None, b"subaccount.validate"), ("module", Some("policy.wasm"), &wasm)]);
        let page = console.post_body(&path, &ct, body).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("The version was uploaded") && page.html.contains("wasm"), "{}", page.html);
        let listed = api_policies(&app, &parent).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["status"], "inactive");
    }

    async fn forms_without_their_csrf_token_change_nothing(app) {
        let (parent, console) = signed_in(&app, "pol-csrf.example").await;
        let base = policies_of(&parent);
        let page = console.post_raw(&format!("{base}/new"), &[("name", "forged"), ("hook", "authorize"), ("source", ALLOW_ALL), ("then", "shadow")]).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(page.html.contains("security token"));
        // Multipart: no token, a wrong one, or the token after the file.
        let wasm = repo_file("policies/examples/domain_allowlist.wasm");
        let csrf = console.get(&format!("{base}/upload")).await.csrf();
        let fields: [(&str, Option<&str>, &[u8]); 3] = [("name", None, b"forged"), ("hook", None, b"subaccount.validate"), ("module", Some("p.wasm"), &wasm)];
        let (ct, body) = multipart(&fields);
        assert_eq!(console.post_body(&format!("{base}/upload"), &ct, body).await.status, 403);
        let mut wrong = vec![("csrf", None, b"0000".as_slice())];
        wrong.extend_from_slice(&fields);
        let (ct, body) = multipart(&wrong);
        assert_eq!(console.post_body(&format!("{base}/upload"), &ct, body).await.status, 403);
        let mut late = fields.to_vec();
        late.push(("csrf", None, csrf.as_bytes()));
        let (ct, body) = multipart(&late);
        assert_eq!(console.post_body(&format!("{base}/upload"), &ct, body).await.status, 403);
        assert!(api_policies(&app, &parent).await.is_empty(), "nothing was uploaded");
        // Actions on a policy.
        let id = app.install_policy(Some(&parent), "guard", "authorize", canopy_e2e::Code::Rhai(ALLOW_ALL), "shadow").await;
        for action in ["promote", "clear-shadow", "deactivate", "delete", "versions/1/activate"] {
            let page = console.post_raw(&format!("{base}/{id}/{action}"), &[("mode", "enforce")]).await;
            assert_eq!(page.status, 403, "{action}: {}", page.html);
        }
        let doc = app.get(&format!("/v1/accounts/{}/policies/{id}", parent.id), &parent.key).await.expect(200);
        assert_eq!(doc["status"], "shadow", "{doc}");
    }

    async fn only_the_trees_admin_reaches_its_policies(app) {
        let (parent, admin) = signed_in(&app, "pol-own.example").await;
        let id = app.install_policy(Some(&parent), "guard", "authorize", canopy_e2e::Code::Rhai(ALLOW_ALL), "shadow").await;
        let base = policies_of(&parent);
        let pages = [
            base.clone(),
            format!("{base}/new"),
            format!("{base}/upload"),
            format!("{base}/decisions"),
            format!("{base}/{id}"),
            format!("{base}/{id}/versions/1"),
            format!("{base}/{id}/delete"),
        ];
        for path in &pages {
            assert_eq!(admin.get(path).await.status, 200, "{path}");
        }
        // A basic member of the same parent: 403.
        user_in(&app, &parent.key, &parent.id, "basic@pol-own.example", "basic").await;
        let basic = Console::user(&app, "basic@pol-own.example", PASSWORD).await;
        for path in &pages {
            let page = basic.get(path).await;
            assert_eq!(page.status, 403, "{path}: {}", page.html);
            assert!(!page.html.contains("guard"), "{path}");
        }
        let page = basic.post(&format!("/console/accounts/{}", parent.id), &format!("{base}/{id}/deactivate"), &[]).await;
        assert_eq!(page.status, 403, "{}", page.html);
        // Another tree's admin: 404, and its own forms change nothing here.
        let (_, other) = signed_in(&app, "pol-other.example").await;
        for path in &pages {
            let page = other.get(path).await;
            assert_eq!(page.status, 404, "{path}: {}", page.html);
            assert!(!page.html.contains("guard"), "{path}");
        }
        let page = other.post("/console/accounts", &format!("{base}/{id}/deactivate"), &[]).await;
        assert_eq!(page.status, 404, "{}", page.html);
        // A sub-account's admin: policies belong to the tree.
        let sub = app.sub(&parent, "Team", "team@pol-own.example").await;
        user_in(&app, &parent.key, &sub.id, "subadmin@pol-own.example", "admin").await;
        let subadmin = Console::user(&app, "subadmin@pol-own.example", PASSWORD).await;
        let page = subadmin.get(&format!("/console/accounts/{}/policies", sub.id)).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert_eq!(subadmin.get(&base).await.status, 404);
        let doc = app.get(&format!("/v1/accounts/{}/policies/{id}", parent.id), &parent.key).await.expect(200);
        assert_eq!(doc["status"], "shadow", "{doc}");
    }

    async fn in_a_browser_a_policy_is_written_fixed_and_watched_in_shadow(app) {
        let Some(browser) = Browser::open("the policy editor and decision log").await else { return; };
        let parent = app.parent("pol-browser.example", "reseller").await;
        let email = admin_of(&app, &parent, "pol-browser.example").await;
        browser.goto(&format!("{}/console/sign-in", app.base)).await;
        browser.fill("#f-email", &email).await;
        browser.fill("#f-password", PASSWORD).await;
        browser.click_and_wait("form[action='/console/sign-in'] button", "Overview").await;
        browser.goto(&format!("{}{}", app.base, policies_of(&parent))).await;
        browser.wait_for_text("Platform default").await;
        browser.assert_accessible("the policies page").await;
        browser.click_and_wait("a[href$='/policies/new']", "Rhai source").await;
        browser.fill("#f-name", "no new teams").await;
        browser.choose("#f-hook", "authorize").await;
        browser.fill("#f-source", BROKEN).await;
        let text = browser.click_and_wait("form.editor button[type=submit]", "Line 2").await;
        assert!(text.contains("Not done"), "{text}");
        let kept = browser.script("return document.querySelector('#f-source').value;").await;
        assert_eq!(kept.as_str().unwrap().replace("\r\n", "\n").trim(), BROKEN.trim(), "the source is kept");
        browser.assert_accessible("the editor with a compile error").await;
        browser.save_screenshot("console/policy-editor.png").await;
        browser.fill("#f-source", NO_NEW_TEAMS).await;
        browser.choose("#f-then", "shadow").await;
        browser.click_and_wait("form.editor button[type=submit]", "runs in shadow").await;
        browser.assert_accessible("a policy's page").await;
        // An operation the shadow would refuse.
        app.sub(&parent, "Team", "team@pol-browser.example").await;
        let path = format!("/v1/accounts/{}/decisions?shadow_disagrees=true", parent.id);
        app.await_decision(&path, &parent.key, |d| d["action"] == "subaccount.create").await;
        browser.click_and_wait("a[href*='/decisions?policy_id=']", "Decision log").await;
        browser.click("#f-shadow_disagrees").await;
        browser.click_and_wait(".filters button[type=submit]", "subaccount.create").await;
        browser.element("tr.disagrees").await;
        browser.assert_accessible("the decision log").await;
        browser.save_screenshot("console/decisions.png").await;
        // At phone width, every page of this part: accessible, and no
        // sideways scrolling.
        browser.resize(390, 844).await;
        let policy = browser.script("return document.querySelector('select#f-policy_id').value;").await;
        let base = format!("{}{}", app.base, policies_of(&parent));
        for (path, what) in [
            (format!("{base}/decisions?shadow_disagrees=true"), "the decision log"),
            (base.clone(), "the policies page"),
            (format!("{base}/new"), "the editor"),
            (format!("{base}/upload"), "the component upload"),
            (format!("{base}/{}", policy.as_str().unwrap()), "a policy's page"),
            (format!("{base}/{}/delete", policy.as_str().unwrap()), "the delete confirmation"),
        ] {
            browser.goto(&path).await;
            browser.element("main h1").await;
            browser.assert_accessible(&format!("{what} at phone width")).await;
            let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
            assert_eq!(fits, json!(true), "no sideways scrolling on {what} at phone width");
        }
        browser.resize(1280, 900).await;
        browser.stop().await;
    }
}
