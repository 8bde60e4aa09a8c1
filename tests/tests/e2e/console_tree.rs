//! A parent admin's tree in the console: the sub-accounts with status and
//! budget, creating one (the e-mail policy's refusal on its field),
//! budget add/remove, suspend/unsuspend/delete after a confirmation that
//! names the cascade, and usage per sub-account as a chart. Another tree's
//! user gets 404, a form without its token 403, a sub-account's user never
//! reaches the tree.

use canopy_e2e::browser::Browser;
use canopy_e2e::console::{Console, PASSWORD, admin_of, user_in};
use canopy_e2e::{Parent, TestApp, both_backends};
use serde_json::{Value, json};

use super::console_operator::marked;

/// A prepaid parent with 50.00 USD, its admin signed in to the console,
/// and one active sub-account `North` with a budget of 5.00.
async fn tree(app: &TestApp, domain: &str) -> (Parent, Console, String) {
    let parent = app.parent(domain, "enterprise").await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": "50.00"}),
    )
    .await
    .expect(201);
    let email = admin_of(app, &parent, domain).await;
    let sub = app
        .try_sub(
            &parent,
            &format!("North {domain}"),
            &format!("north@{domain}"),
            json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "5.00"}}),
        )
        .await
        .expect(201);
    let console = Console::user(app, &email, PASSWORD).await;
    (parent, console, sub["id"].as_str().unwrap().to_string())
}

async fn status_of(app: &TestApp, parent: &Parent, sub: &str) -> String {
    let list = app
        .get(
            &format!(
                "/v1/operator/accounts/{}/subaccounts?status=deleted",
                parent.id
            ),
            &app.operator_token,
        )
        .await
        .expect(200);
    if list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == sub)
    {
        return "deleted".into();
    }
    let doc: Value = app
        .get(&format!("/v1/accounts/{sub}"), &parent.key)
        .await
        .expect(200);
    doc["status"].as_str().unwrap().to_string()
}

both_backends! {
    async fn console_tree_lists_creates_and_funds_sub_accounts(app) {
        let (parent, console, north) = tree(&app, "tree-list.example").await;
        let list = format!("/console/accounts/{}/subaccounts", parent.id);
        let page = console.get(&list).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("North tree-list.example"), "{}", page.html);
        assert!(page.html.contains("Budget 5.00 USD"), "{}", page.html);
        assert!(page.html.contains("badge active"), "{}", page.html);
        assert!(page.html.contains("Balance (funds budgets)") && page.html.contains("45.00 USD"), "the parent's pool: {}", page.html);
        assert!(page.html.contains("Available lines"), "{}", page.html);

        // The e-mail policy refuses free mail, on the e-mail field.
        let fields = [("name", "South"), ("email", "someone@gmail.com"), ("credit.mode", "assigned_budget"), ("submitted", "1"), ("invite", "true")];
        let refused = console.post(&list, &list, &fields).await;
        assert_eq!(refused.status, 422, "{}", refused.html);
        assert!(marked(&refused.html, "email", "free-mail"), "{}", refused.html);
        assert!(refused.html.contains("value=\"South\""), "what was typed stays: {}", refused.html);
        let subs = app.get(&format!("/v1/accounts/{}/subaccounts", parent.id), &parent.key).await.expect(200);
        assert_eq!(subs["data"].as_array().unwrap().len(), 1, "nothing was created");
        // Then a business address.
        let fields = [("name", "South"), ("email", "south@tree-list.example"), ("credit.mode", "assigned_budget"),
            ("credit.initial_credit", "2.00"), ("submitted", "1"), ("invite", "true")];
        let created = console.post(&list, &list, &fields).await;
        assert_eq!(created.status, 201, "{}", created.html);
        assert!(created.html.contains("shown only now"), "{}", created.html);
        let subs = app.get(&format!("/v1/accounts/{}/subaccounts", parent.id), &parent.key).await.expect(200);
        let south = subs["data"].as_array().unwrap().iter().find(|a| a["name"] == "South").expect("South was created").clone();
        let south = south["id"].as_str().unwrap();
        assert_eq!(app.money(south, &parent.key, "budget").await, "2.00");

        // Budget add and remove, exactly.
        let one = format!("{list}/{north}");
        let page = console.post(&one, &format!("{one}/budget"), &[("amount", "2.50"), ("direction", "add")]).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("The budget was added."), "{}", page.html);
        assert_eq!(app.money(&north, &parent.key, "budget").await, "7.50");
        let page = console.post(&one, &format!("{one}/budget"), &[("amount", "1.25"), ("direction", "remove")]).await;
        assert!(page.html.contains("taken back"), "{}", page.html);
        assert_eq!(app.money(&north, &parent.key, "budget").await, "6.25");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "41.75");
        // A refusal shows on the amount field, and nothing moves.
        let page = console.post(&one, &format!("{one}/budget"), &[("amount", "100.00"), ("direction", "remove")]).await;
        assert!(page.status >= 400, "{}", page.html);
        assert!(page.html.contains("aria-invalid=\"true\""), "{}", page.html);
        assert!(page.html.contains("id=\"f-amount-error\""), "{}", page.html);
        let page = console.post(&one, &format!("{one}/budget"), &[("amount", "lots"), ("direction", "add")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "amount", "decimal"), "{}", page.html);
        assert_eq!(app.money(&north, &parent.key, "budget").await, "6.25");
        app.assert_ledger_balanced().await;

        // Lines: the Available pool and the sub-account holding one.
        let lines = app.traffic_lines(&parent, 710, 3).await;
        app.give_line(&parent, &north, &lines[0]).await;
        let page = console.get(&list).await;
        assert!(page.html.contains("<dt>Available lines</dt><dd>2</dd>"), "{}", page.html);
        assert!(page.html.contains("<th scope=\"col\" class=\"num\">Lines</th>"), "{}", page.html);
        let row = page.html.split("North tree-list.example").nth(1).unwrap().split("</tr>").next().unwrap();
        assert!(row.contains("<td class=\"num\">1</td><td class=\"num\">0</td>"), "one line, no SIM: {row}");
        // Deleting it is refused while it holds the line, on the confirmation already.
        let confirm = console.get(&format!("{one}/delete")).await;
        assert!(confirm.html.contains("holds 1 resources"), "{}", confirm.html);
        assert!(!confirm.html.contains("method=\"post\" action=\"/console/accounts"), "no delete button: {}", confirm.html);
    }

    async fn console_tree_suspends_unsuspends_and_deletes_after_a_confirmation(app) {
        let (parent, console, north) = tree(&app, "tree-status.example").await;
        let one = format!("/console/accounts/{}/subaccounts/{north}", parent.id);
        user_in(&app, &parent.key, &north, "lead@tree-status.example", "admin").await;
        let confirm = console.get(&format!("{one}/suspend")).await;
        assert_eq!(confirm.status, 200, "{}", confirm.html);
        assert!(confirm.html.contains("becomes suspended: its 1 member and 1 API key can no longer act"), "{}", confirm.html);
        assert!(confirm.html.contains("0 campaigns scheduled or sending will be held"), "the default cascade queues campaigns: {}", confirm.html);
        assert!(confirm.html.contains("Its budget, 5.00 USD now, stays with it."), "no budget returns by default: {}", confirm.html);
        assert!(confirm.html.contains("0 lines and 0 SIMs; they keep their status"), "{}", confirm.html);
        assert_eq!(status_of(&app, &parent, &north).await, "active", "the confirmation changed nothing");
        let done = console.post(&format!("{one}/suspend"), &format!("{one}/suspend"), &[]).await;
        assert!(done.html.contains("The sub-account is suspended."), "{}", done.html);
        assert_eq!(status_of(&app, &parent, &north).await, "suspended");
        // Suspended already: the confirmation gives the API's refusal.
        let again = console.get(&format!("{one}/suspend")).await;
        assert!(again.html.contains("only an active sub-account"), "{}", again.html);
        let confirm = console.get(&format!("{one}/unsuspend")).await;
        assert!(confirm.html.contains("becomes active again"), "{}", confirm.html);
        assert!(confirm.html.contains("will be scheduled again"), "{}", confirm.html);
        let done = console.post(&format!("{one}/unsuspend"), &format!("{one}/unsuspend"), &[]).await;
        assert!(done.html.contains("The sub-account is active again."), "{}", done.html);
        assert_eq!(status_of(&app, &parent, &north).await, "active");
        // Delete: the confirmation says the budget returns.
        let confirm = console.get(&format!("{one}/delete")).await;
        assert_eq!(confirm.status, 200, "{}", confirm.html);
        assert!(confirm.html.contains("Its whole budget, 5.00 USD now, returns to the parent."), "{}", confirm.html);
        assert!(confirm.html.contains("not yet finished will be deleted"), "{}", confirm.html);
        assert_eq!(status_of(&app, &parent, &north).await, "active", "the confirmation changed nothing");
        let done = console.post(&format!("{one}/delete"), &format!("{one}/delete"), &[]).await;
        assert!(done.html.contains("The sub-account was deleted."), "{}", done.html);
        assert_eq!(status_of(&app, &parent, &north).await, "deleted");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "50.00");
        app.assert_ledger_balanced().await;
    }

    async fn console_tree_refuses_other_trees_forged_forms_and_sub_account_users(app) {
        let (a, a_console, a_sub) = tree(&app, "tree-a.example").await;
        let (b, b_console, b_sub) = tree(&app, "tree-b.example").await;
        let a_list = format!("/console/accounts/{}/subaccounts", a.id);
        let a_one = format!("{a_list}/{a_sub}");
        // B's admin: 404 on A's pages, and on A's sub-account under B's address.
        for path in [
            a_list.clone(),
            a_one.clone(),
            format!("{a_one}/suspend"),
            format!("{a_one}/delete"),
            format!("/console/accounts/{}/usage", a.id),
            format!("/console/accounts/{}/subaccounts/{a_sub}", b.id),
            format!("/console/accounts/{}/subaccounts/{a_sub}/delete", b.id),
        ] {
            let page = b_console.get(&path).await;
            assert_eq!(page.status, 404, "{path}: {}", page.html);
            assert!(!page.html.contains("tree-a.example"), "{path}: {}", page.html);
        }
        // B's forms, with B's valid token, aimed at A: 404, nothing changes.
        let b_page = format!("/console/accounts/{}/subaccounts", b.id);
        for (path, fields) in [
            (format!("{a_one}/budget"), vec![("amount", "1.00"), ("direction", "remove")]),
            (format!("{a_one}/delete"), vec![]),
            (format!("/console/accounts/{}/subaccounts/{a_sub}/budget", b.id), vec![("amount", "1.00"), ("direction", "remove")]),
            (a_list.clone(), vec![("name", "Intruder"), ("email", "x@tree-b.example"), ("submitted", "1")]),
        ] {
            let page = b_console.post(&b_page, &path, &fields).await;
            assert_eq!(page.status, 404, "{path}: {}", page.html);
        }
        assert_eq!(app.money(&a_sub, &a.key, "budget").await, "5.00");
        assert_ne!(status_of(&app, &a, &a_sub).await, "deleted");
        // Forms without the token: 403, nothing changes.
        for (path, fields) in [
            (format!("{a_one}/budget"), vec![("amount", "1.00"), ("direction", "add")]),
            (format!("{a_one}/delete"), vec![]),
            (a_list.clone(), vec![("name", "Forged"), ("email", "forged@tree-a.example"), ("submitted", "1")]),
        ] {
            let page = a_console.post_raw(&path, &fields).await;
            assert_eq!(page.status, 403, "{path}: {}", page.html);
        }
        assert_eq!(app.money(&a_sub, &a.key, "budget").await, "5.00");
        assert_ne!(status_of(&app, &a, &a_sub).await, "deleted");
        let subs = app.get(&format!("/v1/accounts/{}/subaccounts", a.id), &a.key).await.expect(200);
        assert_eq!(subs["data"].as_array().unwrap().len(), 1, "nothing was created");
        // A sub-account's user never reaches the tree.
        let _ = b_sub;
        user_in(&app, &a.key, &a_sub, "basic@tree-a.example", "basic").await;
        let user = Console::user(&app, "basic@tree-a.example", PASSWORD).await;
        let page = user.get(&a_list).await;
        assert_eq!(page.status, 404, "{}", page.html);
        let page = user.get(&format!("/console/accounts/{a_sub}/subaccounts")).await;
        assert_eq!(page.status, 403, "{}", page.html);
        let page = user.get(&format!("/console/accounts/{a_sub}")).await;
        assert!(!page.html.contains("/subaccounts\""), "no link to a tree: {}", page.html);
    }

    async fn console_tree_usage_is_a_chart_per_sub_account(app) {
        let (parent, console, north) = tree(&app, "tree-usage.example").await;
        for _ in 0..2 {
            app.send(&north, &parent.key).await.expect(201);
        }
        let usage = format!("/console/accounts/{}/usage", parent.id);
        let page = console.get(&usage).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("<svg"), "{}", page.html);
        assert!(page.html.contains("role=\"img\""), "{}", page.html);
        assert!(!page.html.contains("style="), "no inline style: {}", page.html);
        let month = page.html.split("name=\"month\" type=\"month\" value=\"").nth(1).unwrap()[..7].to_string();
        let report = app
            .get(&format!("/v1/accounts/{}/analytics?from={month}&to={month}&granularity=month&by=subaccount", parent.id), &parent.key)
            .await
            .expect(200);
        let row = report["series"].as_array().unwrap().iter().find(|r| r["account_id"] == north.as_str()).unwrap().clone();
        let spend = row["spend"].as_str().unwrap();
        assert!(page.html.contains(&format!(">{spend} USD</text>")), "the bar's label is the API's spend {spend}: {}", page.html);
        assert!(page.html.contains("North tree-usage.example"), "{}", page.html);
        // A month that is not one: refused on the field.
        let page = console.get(&format!("{usage}?month=2026-13")).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "month", "YYYY-MM"), "{}", page.html);
    }

    async fn in_a_browser_the_parent_admin_creates_a_sub_account(app) {
        let Some(browser) = Browser::open("console tree").await else { return; };
        let parent = app.parent("tree-browser.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "50.00"})).await.expect(201);
        let email = admin_of(&app, &parent, "tree-browser.example").await;
        for (name, budget) in [("North", "20.00"), ("South", "10.00")] {
            let sub = app
                .try_sub(&parent, &format!("{name} team"), &format!("{}@tree-browser.example", name.to_lowercase()),
                    json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": budget}}))
                .await
                .expect(201);
            let id = sub["id"].as_str().unwrap();
            for _ in 0..(if name == "North" { 3 } else { 1 }) {
                app.send(id, &parent.key).await.expect(201);
            }
        }
        browser.goto(&format!("{}/console/sign-in", app.base)).await;
        browser.fill("#f-email", &email).await;
        browser.fill("#f-password", PASSWORD).await;
        browser.click_and_wait("form[action='/console/sign-in'] button", "Sub-accounts").await;
        browser.goto(&format!("{}/console/accounts/{}/subaccounts", app.base, parent.id)).await;
        browser.wait_for_text("North team").await;
        browser.assert_accessible("the sub-accounts page").await;
        browser.save_screenshot("console/subaccounts.png").await;
        // The free-mail refusal on the e-mail field.
        browser.fill("#f-name", "West team").await;
        browser.fill("#f-email", "someone@gmail.com").await;
        // (The form's hint says "free-mail" already: wait for the refusal itself.)
        browser.click("#create-subaccount button[type=submit]").await;
        browser.element("#f-email-error").await;
        let invalid = browser.script("return document.getElementById('f-email').getAttribute('aria-invalid');").await;
        assert_eq!(invalid, json!("true"));
        browser.assert_accessible("the refused create form").await;
        browser.save_screenshot("console/create-subaccount-refused.png").await;
        browser.resize(390, 844).await;
        browser.assert_accessible("the refused create form at phone width").await;
        let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
        assert_eq!(fits, json!(true), "no sideways scrolling at phone width");
        browser.resize(1280, 900).await;
        browser.fill("#f-email", "west@tree-browser.example").await;
        browser.click_and_wait("#create-subaccount button[type=submit]", "shown only now").await;
        // Usage per sub-account.
        browser.goto(&format!("{}/console/accounts/{}/usage", app.base, parent.id)).await;
        browser.wait_for_text("The numbers").await;
        assert!(browser.find("svg.chart rect.bar").await.is_some(), "the chart has bars");
        browser.assert_accessible("the usage page").await;
        browser.save_screenshot("console/usage.png").await;
        browser.resize(390, 844).await;
        browser.assert_accessible("the usage page at phone width").await;
        let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
        assert_eq!(fits, json!(true), "no sideways scrolling at phone width");
        browser.stop().await;
    }
}
