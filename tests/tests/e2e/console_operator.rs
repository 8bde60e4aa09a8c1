//! The operator's console pages: parent accounts (search, paging,
//! creation with the admin's invitation shown once), one parent's settings,
//! platform policies with the hooks customers may use, and the ledger
//! check. Users are refused, forms need their CSRF token, and a refusal
//! shows on the field it names.

use canopy_e2e::both_backends;
use canopy_e2e::browser::Browser;
use canopy_e2e::console::{Console, PASSWORD, admin_of};
use serde_json::json;

/// Whether the page marks `field` (its input is `aria-invalid` and its
/// reason is beside it), and the reason contains `reason`.
pub(crate) fn marked(html: &str, field: &str, reason: &str) -> bool {
    let input = format!("id=\"f-{field}\"");
    let Some(at) = html.find(&input) else {
        return false;
    };
    let start = html[..at].rfind('<').unwrap_or(0);
    let tag_end = at + html[at..].find('>').unwrap_or(0);
    let tag = &html[start..tag_end];
    let error = format!("id=\"f-{field}-error\"");
    let Some(e) = html.find(&error) else {
        return false;
    };
    let shown = &html[e..e + html[e..].find("</span>").unwrap_or(0)];
    tag.contains("aria-invalid=\"true\"")
        && tag.contains(&format!("f-{field}-error\""))
        && shown.contains(reason)
}

async fn parent_doc(app: &canopy_e2e::TestApp, id: &str) -> serde_json::Value {
    app.get(&format!("/v1/operator/accounts/{id}"), &app.operator_token)
        .await
        .expect(200)
}

both_backends! {
    async fn a_user_session_cannot_open_operator_pages(app) {
        let parent = app.parent("op-user.example", "enterprise").await;
        let email = admin_of(&app, &parent, "op-user.example").await;
        let console = Console::user(&app, &email, PASSWORD).await;
        for path in [
            "/console/operator".to_string(),
            format!("/console/operator/parents/{}", parent.id),
            format!("/console/operator/parents/{}/suspend", parent.id),
            "/console/operator/policies".to_string(),
            "/console/operator/ledger".to_string(),
        ] {
            let page = console.get(&path).await;
            assert_eq!(page.status, 403, "{path}: {}", page.html);
            assert!(!page.html.contains("Create a parent account"), "{path}");
        }
        // A user's form, with its own valid token, changes nothing.
        let own = format!("/console/accounts/{}", parent.id);
        let page = console
            .post(&own, &format!("/console/operator/parents/{}/modules", parent.id), &[("subaccount_module", "reseller"), ("subaccounts_enabled", "true")])
            .await;
        assert_eq!(page.status, 403, "{}", page.html);
        let page = console.post(&own, &format!("/console/operator/parents/{}/suspend", parent.id), &[]).await;
        assert_eq!(page.status, 403);
        let doc = parent_doc(&app, &parent.id).await;
        assert_eq!(doc["subaccount_module"], "enterprise");
        assert_eq!(doc["status"], "active");
        // Signed out: the sign-in page.
        let page = Console::new(&app).get("/console/operator/ledger").await;
        assert!(page.url.ends_with("/console/sign-in"), "{}", page.url);
    }

    async fn operator_forms_without_csrf_are_refused(app) {
        let parent = app.parent("op-csrf.example", "enterprise").await;
        let console = Console::operator(&app).await;
        let modules = format!("/console/operator/parents/{}/modules", parent.id);
        let page = console.post_raw(&modules, &[("subaccounts_enabled", "true"), ("subaccount_module", "reseller")]).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(page.html.contains("security token"));
        let other = Console::new(&app).get("/console/sign-in").await.csrf();
        let page = console.post_raw(&modules, &[("csrf", &other), ("subaccounts_enabled", "true"), ("subaccount_module", "reseller")]).await;
        assert_eq!(page.status, 403, "another browser's token");
        let page = console.post_raw(&format!("/console/operator/parents/{}/suspend", parent.id), &[]).await;
        assert_eq!(page.status, 403);
        let page = console.post_raw(&format!("/console/operator/parents/{}/topup", parent.id), &[("amount", "10")]).await;
        assert_eq!(page.status, 403);
        let page = console.post_raw("/console/operator", &[("name", "Forged Parent"), ("company_name", "F"), ("email", "a@forged.example"),
            ("billing_type", "prepaid"), ("currency", "USD"), ("admin.email", "admin@forged.example"), ("admin.name", "F")]).await;
        assert_eq!(page.status, 403);
        let page = console.post_raw("/console/operator/policies", &[("customer_hooks", "cascade")]).await;
        assert_eq!(page.status, 403);
        let doc = parent_doc(&app, &parent.id).await;
        assert_eq!(doc["subaccount_module"], "enterprise");
        assert_eq!(doc["status"], "active");
        let found = app.get("/v1/operator/accounts?name=forged", &app.operator_token).await.expect(200);
        assert_eq!(found["data"].as_array().unwrap().len(), 0, "no parent was made");
        let settings = app.get("/v1/operator/policy-settings", &app.operator_token).await.expect(200);
        assert!(!settings["customer_hooks"].as_array().unwrap().contains(&json!("cascade")));
    }

    async fn bad_input_is_shown_on_its_field(app) {
        let postpaid = app.parent_with("op-bad.example", "enterprise",
            json!({"billing_type": "postpaid", "monthly_credit_limit": "100.00"})).await;
        let console = Console::operator(&app).await;
        let page_path = format!("/console/operator/parents/{}", postpaid.id);
        // A negative credit limit.
        let page = console.post(&page_path, &format!("{page_path}/credit-limit"), &[("monthly_credit_limit", "-5.00")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "monthly_credit_limit", "negative"), "{}", page.html);
        assert!(page.html.contains("value=\"-5.00\""), "what was typed is kept");
        // Not a number at all.
        let page = console.post(&page_path, &format!("{page_path}/credit-limit"), &[("monthly_credit_limit", "lots")]).await;
        assert!(marked(&page.html, "monthly_credit_limit", ""), "{}", page.html);
        // A channel that is no channel name.
        let page = console.post(&page_path, &format!("{page_path}/channels"), &[("channels", "sms, Fax!")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "channels", "Fax!"), "{}", page.html);
        // A price that is not money, and a price for an unnamed channel.
        let page = console.post(&page_path, &format!("{page_path}/prices"), &[("prices.sms", "cheap")]).await;
        assert!(marked(&page.html, "prices.sms", ""), "{}", page.html);
        let page = console.post(&page_path, &format!("{page_path}/prices"), &[("prices.sms", "0.01"), ("prices.new_channel", "Bad Channel"), ("prices.new_price", "0.02")]).await;
        assert!(marked(&page.html, "prices.new_channel", "lower-case"), "{}", page.html);
        // Nothing changed.
        let doc = parent_doc(&app, &postpaid.id).await;
        assert_eq!(doc["monthly_credit_limit"], "100.00");
        assert_eq!(doc["channels"], json!(["sms", "whatsapp"]));
        assert_eq!(doc["prices"]["sms"], "0.0075");
        // Good values are saved and said.
        let page = console.post(&page_path, &format!("{page_path}/credit-limit"), &[("monthly_credit_limit", "250.50")]).await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("The monthly credit limit was saved."), "{}", page.html);
        let page = console.post(&page_path, &format!("{page_path}/prices"), &[("prices.sms", "0.0100"), ("prices.whatsapp", ""), ("prices.new_channel", "rcs"), ("prices.new_price", "0.02")]).await;
        assert!(page.html.contains("The prices were saved."), "{}", page.html);
        let page = console.post(&page_path, &format!("{page_path}/channels"), &[("channels", "sms rcs")]).await;
        assert!(page.html.contains("The channels were saved."), "{}", page.html);
        let doc = parent_doc(&app, &postpaid.id).await;
        assert_eq!(doc["monthly_credit_limit"], "250.50");
        assert_eq!(doc["channels"], json!(["sms", "rcs"]));
        assert_eq!(doc["prices"]["rcs"], "0.02");
        assert!(doc["prices"].get("whatsapp").is_none(), "{doc}");
        // A top-up applies to prepaid parents only: the postpaid page has
        // no top-up form, and the route says why.
        assert!(!console.get(&page_path).await.html.contains("/topup\""));
        let page = console.post(&page_path, &format!("{page_path}/topup"), &[("amount", "10")]).await;
        assert_eq!(page.status, 409, "{}", page.html);
        assert!(page.html.contains("prepaid"), "{}", page.html);
        // A prepaid parent: a top-up of nothing is refused on its field; a
        // real one lands in the balance.
        let prepaid = app.parent("op-top.example", "enterprise").await;
        let path = format!("/console/operator/parents/{}", prepaid.id);
        let page = console.post(&path, &format!("{path}/topup"), &[("amount", "ten")]).await;
        assert!(marked(&page.html, "amount", ""), "{}", page.html);
        let page = console.post(&path, &format!("{path}/topup"), &[("amount", "25.00")]).await;
        assert!(page.html.contains("The top-up was credited"), "{}", page.html);
        let balance = app.get(&format!("/v1/accounts/{}/balance", prepaid.id), &prepaid.key).await.expect(200);
        assert_eq!(balance["balance"], "25.00", "{balance}");
        // Creating a parent: each refusal on its field, values kept.
        let page = console.post("/console/operator", "/console/operator", &[("name", "Half Made"), ("company_name", "Half Ltd"),
            ("email", "not-an-address"), ("billing_type", "prepaid"), ("currency", "USD"),
            ("admin.email", "admin@half.example"), ("admin.name", "Half Admin")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "email", ""), "{}", page.html);
        assert!(page.html.contains("value=\"Half Made\""), "{}", page.html);
        let page = console.post("/console/operator", "/console/operator", &[("name", "Half Made"), ("company_name", "Half Ltd"),
            ("email", "billing@half.example"), ("billing_type", "postpaid"), ("currency", "USD"), ("monthly_credit_limit", ""),
            ("admin.email", "admin@half.example"), ("admin.name", "Half Admin")]).await;
        assert!(marked(&page.html, "monthly_credit_limit", "postpaid"), "{}", page.html);
        let page = console.post("/console/operator", "/console/operator", &[("name", "Half Made"), ("company_name", "Half Ltd"),
            ("email", "billing@half.example"), ("billing_type", "prepaid"), ("currency", "usd"),
            ("admin.email", "admin@half.example"), ("admin.name", "Half Admin")]).await;
        assert!(marked(&page.html, "currency", "ISO 4217"), "{}", page.html);
        let page = console.post("/console/operator", "/console/operator", &[("name", "Half Made"), ("company_name", "Half Ltd"),
            ("email", "billing@half.example"), ("billing_type", "prepaid"), ("currency", "USD"),
            ("admin.email", "nobody"), ("admin.name", "Half Admin")]).await;
        assert!(marked(&page.html, "admin.email", ""), "{}", page.html);
        // A search that is too long is shown on its field, not a 400 page.
        let page = console.get(&format!("/console/operator?name={}", "x".repeat(201))).await;
        assert!(page.html.contains("id=\"search-name-error\"") && page.html.contains("1 to 200 characters"), "{}", page.html);
        assert!(page.html.contains("aria-describedby=\"search-name-error\""), "{}", page.html);
    }

    async fn the_operator_creates_searches_and_pages_parents(app) {
        let console = Console::operator(&app).await;
        let page = console.post("/console/operator", "/console/operator", &[("name", "Fresh Sprout"), ("company_name", "Sprout Ltd"),
            ("email", "billing@sprout.example"), ("billing_type", "prepaid"), ("currency", "EUR"),
            ("admin.email", "admin@sprout.example"), ("admin.name", "Sprout Admin")]).await;
        assert_eq!(page.status, 201, "{}", page.html);
        assert!(page.html.contains("shown only now"), "{}", page.html);
        let at = page.html.find("class=\"secret\"").expect("the token is shown");
        let token: String = page.html[at..].split('>').nth(1).unwrap().split('<').next().unwrap().trim().to_string();
        assert!(token.starts_with("ci"), "{token}");
        // The token is the admin's invitation: accepting it signs the admin in.
        app.accept(&token, "Sprout Admin", PASSWORD).await;
        let admin = Console::user(&app, "admin@sprout.example", PASSWORD).await;
        assert!(admin.get("/console/accounts").await.html.contains("Fresh Sprout"));
        // Shown once: the list does not show it again.
        let list = console.get("/console/operator").await;
        assert!(list.html.contains("Fresh Sprout"));
        assert!(!list.html.contains(&token));
        // 21 more parents: the first page shows 20, newest first, and the
        // "Older" link the rest.
        for i in 0..21 {
            app.parent(&format!("grove{i:02}.example"), "enterprise").await;
        }
        let first = console.get("/console/operator?name=GROVE").await;
        assert_eq!(first.status, 200);
        assert!(first.html.contains("Parent grove20.example") && first.html.contains("Parent grove01.example"), "{}", first.html);
        assert!(!first.html.contains("Parent grove00.example") && !first.html.contains("Fresh Sprout"), "{}", first.html);
        let newest = first.html.find("Parent grove20.example").unwrap();
        assert!(newest < first.html.find("Parent grove01.example").unwrap(), "newest first");
        let at = first.html.find("rel=\"next\"").expect("an Older link");
        let href = first.html[..at].rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
        let older = console.get(&href).await;
        assert!(older.html.contains("Parent grove00.example"), "{}", older.html);
        assert!(!older.html.contains("Parent grove01.example") && !older.html.contains("rel=\"next\""), "{}", older.html);
        // The API searches the same way.
        let api = app.get("/v1/operator/accounts?name=grove&limit=5", &app.operator_token).await.expect(200);
        assert_eq!(api["data"].as_array().unwrap().len(), 5);
        assert_eq!(api["data"][0]["name"], "Parent grove20.example");
        assert!(api["next_cursor"].is_string());
        app.get("/v1/operator/accounts?status=sleeping", &app.operator_token).await.expect_problem(422, "validation_failed");
        // Status: suspend after the confirmation, then filter by it.
        let grove = api["data"][0]["id"].as_str().unwrap().to_string();
        let base = format!("/console/operator/parents/{grove}");
        let confirm = console.get(&format!("{base}/suspend")).await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.html.contains("Suspend Parent grove20.example"), "{}", confirm.html);
        assert_eq!(parent_doc(&app, &grove).await["status"], "active", "the confirmation changes nothing");
        let page = console.post(&format!("{base}/suspend"), &format!("{base}/suspend"), &[]).await;
        assert!(page.html.contains("The parent account is suspended."), "{}", page.html);
        assert_eq!(parent_doc(&app, &grove).await["status"], "suspended");
        let suspended = console.get("/console/operator?status=suspended").await;
        assert!(suspended.html.contains("Parent grove20.example") && !suspended.html.contains("Parent grove19.example"), "{}", suspended.html);
        let page = console.post(&format!("{base}/unsuspend"), &format!("{base}/unsuspend"), &[]).await;
        assert!(page.html.contains("The parent account is active again."), "{}", page.html);
        assert_eq!(parent_doc(&app, &grove).await["status"], "active");
        // An unknown parent is a 404 page.
        assert_eq!(console.get("/console/operator/parents/acct_nothing").await.status, 404);
    }

    async fn platform_policies_hooks_and_the_ledger_check(app) {
        let parent = app.parent("op-ledger.example", "enterprise").await;
        let console = Console::operator(&app).await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "12.34"})).await.expect(201);
        let ledger = console.get("/console/operator/ledger").await;
        assert_eq!(ledger.status, 200);
        assert!(ledger.html.contains("Balanced."), "{}", ledger.html);
        assert!(ledger.html.contains("USD"), "{}", ledger.html);
        assert!(ledger.html.contains("Run the ledger check again"));
        // The hooks customers may use, as checkboxes.
        let page = console.get("/console/operator/policies").await;
        assert!(page.html.contains("value=\"cascade\""), "{}", page.html);
        let page = console.post("/console/operator/policies", "/console/operator/policies",
            &[("customer_hooks", "authorize"), ("customer_hooks", "cascade")]).await;
        assert!(page.html.contains("The hooks customers may use were saved."), "{}", page.html);
        let settings = app.get("/v1/operator/policy-settings", &app.operator_token).await.expect(200);
        assert_eq!(settings["customer_hooks"], json!(["authorize", "cascade"]));
        let page = console.post("/console/operator/policies", "/console/operator/policies", &[("customer_hooks", "nonsense")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("is not a hook"), "{}", page.html);
        // A platform policy uploaded through the API is listed.
        app.op_post("/v1/operator/policies", json!({"name": "platform-guard", "hook": "authorize", "runtime": "rhai",
            "source": "fn evaluate(hook, input) { #{ decision: \"allow\" } }"})).await.expect(201);
        let page = console.get("/console/operator/policies").await;
        assert!(page.html.contains("platform-guard") && page.html.contains("inactive"), "{}", page.html);
        let listed = app.get("/v1/operator/policies", &app.operator_token).await.expect(200);
        for p in listed["data"].as_array().unwrap() {
            assert!(page.html.contains(p["name"].as_str().unwrap()), "{}", page.html);
        }
    }

    async fn in_a_browser_the_operator_enables_reseller_sub_accounts(app) {
        let Some(browser) = Browser::open("the operator's console pages").await else { return; };
        browser.goto(&format!("{}/console/sign-in", app.base)).await;
        browser.fill("#f-token", &app.operator_token).await;
        browser.click_and_wait("form[action='/console/sign-in/operator'] button", "Create a parent account").await;
        browser.assert_accessible("the parent accounts page").await;
        // Create a parent.
        browser.fill("#f-name", "Canopy Resale").await;
        browser.fill("#f-company_name", "Resale Ltd").await;
        browser.fill("#f-email", "billing@resale.example").await;
        browser.choose("#f-billing_type", "prepaid").await;
        browser.fill("[id='f-admin.email']", "admin@resale.example").await;
        browser.fill("[id='f-admin.name']", "Resale Admin").await;
        let text = browser.click_and_wait("#create-parent button[type=submit]", "shown only now").await;
        assert!(text.contains("admin@resale.example"), "{text}");
        browser.assert_accessible("the parent-created page").await;
        // The list, searched.
        browser.goto(&format!("{}/console/operator", app.base)).await;
        browser.fill("#search-name", "resale").await;
        browser.click_and_wait("form[role=search] button", "Canopy Resale").await;
        browser.save_screenshot("console/operator-parents.png").await;
        browser.click_and_wait("#parent-list a[href^='/console/operator/parents/']", "Switches of Canopy Resale").await;
        let id = browser.url().await.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
        browser.assert_accessible("a parent's settings").await;
        let doc = parent_doc(&app, &id).await;
        assert_eq!(doc["subaccounts_enabled"], false, "{doc}");
        // Enable sub-accounts in reseller mode.
        browser.click("#f-subaccounts_enabled").await;
        browser.choose("#f-subaccount_module", "reseller").await;
        browser.click_and_wait("form[action$='/modules'] button", "The modules were saved.").await;
        let doc = parent_doc(&app, &id).await;
        assert_eq!(doc["subaccounts_enabled"], true, "{doc}");
        assert_eq!(doc["subaccount_module"], "reseller", "{doc}");
        // The parent needs prices to send: set one.
        browser.fill("[id='f-prices.sms']", "0.0090").await;
        browser.click_and_wait("form[action$='/prices'] button", "The prices were saved.").await;
        let price = parent_doc(&app, &id).await["prices"]["sms"].as_str().unwrap().to_string();
        assert_eq!(price.trim_end_matches('0'), "0.009", "{price}");
        browser.save_screenshot("console/operator-parent.png").await;
        // Phone width: no sideways scrolling.
        browser.resize(390, 844).await;
        browser.assert_accessible("a parent's settings at phone width").await;
        let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
        let wide = browser.script("return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 10).join(' ');").await;
        assert_eq!(fits, json!(true), "no sideways scrolling at phone width: {wide}");
        browser.resize(1280, 900).await;
        // Suspend, after the confirmation.
        browser.click_and_wait("a[href$='/suspend']", "Suspending the parent").await;
        browser.assert_accessible("the suspend confirmation").await;
        browser.click_and_wait("form[action$='/suspend'] button", "The parent account is suspended.").await;
        assert_eq!(parent_doc(&app, &id).await["status"], "suspended");
        // Platform policies and the ledger.
        browser.goto(&format!("{}/console/operator/policies", app.base)).await;
        browser.wait_for_text("Hooks customers may use").await;
        browser.assert_accessible("the platform policies page").await;
        browser.click("#f-hook-cascade").await;
        browser.click_and_wait("form[action='/console/operator/policies'] button", "were saved").await;
        let settings = app.get("/v1/operator/policy-settings", &app.operator_token).await.expect(200);
        assert!(settings["customer_hooks"].as_array().unwrap().contains(&json!("cascade")), "{settings}");
        browser.goto(&format!("{}/console/operator/ledger", app.base)).await;
        browser.wait_for_text("Balanced.").await;
        browser.assert_accessible("the ledger check").await;
        browser.click_and_wait("main form button", "Ledger accounts checked").await;
        browser.stop().await;
    }
}
