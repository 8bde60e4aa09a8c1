//! The console's whole journey in one headless Chromium, as its people walk
//! it: the operator enables sub-accounts in reseller mode; the parent's
//! admin creates a sub-account (and first sees the free-mail refusal on the
//! e-mail field), gives it budget and invites a user; that user signs in
//! and sees no price or balance; the admin uploads a policy in shadow, sees
//! a disagreement in the decision log and enforces it; a form posted
//! without its CSRF token is refused; another tree's pages are not found.
//! Each step is checked against the API, which is the ledger of truth.

use canopy_e2e::browser::Browser;
use canopy_e2e::console::PASSWORD;
use canopy_e2e::{Parent, TestApp, both_backends};
use serde_json::json;

/// A shadow-worthy `authorize` policy: no new sub-accounts.
const NO_NEW_TEAMS: &str = "fn evaluate(hook, input) {
    if input.action == \"subaccount.create\" {
        return #{ decision: \"deny\", reason: \"no new teams this quarter\" };
    }
    #{ decision: \"allow\" }
}
";

async fn parent_doc(app: &TestApp, id: &str) -> serde_json::Value {
    app.get(&format!("/v1/operator/accounts/{id}"), &app.operator_token)
        .await
        .expect(200)
}

async fn sign_in(browser: &Browser, base: &str, email: &str) {
    browser.goto(&format!("{base}/console/sign-in")).await;
    browser.fill("#f-email", email).await;
    browser.fill("#f-password", PASSWORD).await;
    browser
        .click_and_wait("form[action='/console/sign-in'] button", "Sign out")
        .await;
}

async fn sign_out(browser: &Browser) {
    browser
        .click_and_wait("form[action='/console/sign-out'] button", "Sign in")
        .await;
}

/// The text of the first element matching `css`.
async fn text_of(browser: &Browser, css: &str) -> String {
    let script = format!("return document.querySelector(\"{css}\").textContent.trim();");
    browser
        .script(&script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

both_backends! {
    async fn the_console_from_the_operator_to_a_sub_accounts_user(app) {
        let Some(browser) = Browser::open("the console's journey").await else { return; };
        let base = app.base.clone();
        // A parent the operator made with the API, without sub-accounts.
        let made = app
            .op_post("/v1/operator/accounts", json!({
                "name": "Journey Telecom", "company_name": "Journey Ltd",
                "email": "billing@journey.example", "billing_type": "prepaid",
                "currency": "USD", "prices": {"sms": "0.0075"}, "channels": ["sms"],
                "admin": {"email": "admin@journey.example", "name": "Journey Admin"},
            }))
            .await
            .expect(201);
        let parent_id = made["account"]["id"].as_str().unwrap().to_string();
        let parent_key = made["api_key"]["secret"].as_str().unwrap().to_string();
        app.accept(made["invitation"]["token"].as_str().unwrap(), "Journey Admin", PASSWORD).await;
        app.op_post(&format!("/v1/operator/accounts/{parent_id}/topups"), json!({"amount": "100.00"}))
            .await
            .expect(201);
        let parent = Parent {
            id: parent_id.clone(),
            key: parent_key.clone(),
            admin_user_id: made["admin"]["id"].as_str().unwrap().to_string(),
            invitation: String::new(),
        };

        // 1. The operator enables sub-accounts in reseller mode.
        browser.goto(&format!("{base}/console/sign-in")).await;
        browser.fill("#f-token", &app.operator_token).await;
        browser.click_and_wait("form[action='/console/sign-in/operator'] button", "Create a parent account").await;
        browser.goto(&format!("{base}/console/operator/parents/{parent_id}")).await;
        browser.wait_for_text("Switches of Journey Telecom").await;
        assert_eq!(parent_doc(&app, &parent_id).await["subaccounts_enabled"], false);
        browser.click("#f-subaccounts_enabled").await;
        browser.choose("#f-subaccount_module", "reseller").await;
        browser.click_and_wait("form[action$='/modules'] button", "The modules were saved.").await;
        let doc = parent_doc(&app, &parent_id).await;
        assert_eq!((doc["subaccounts_enabled"].clone(), doc["subaccount_module"].clone()), (json!(true), json!("reseller")), "{doc}");
        sign_out(&browser).await;

        // 2. The parent's admin creates a sub-account: the free-mail
        // address is refused on its field, then a company address works.
        sign_in(&browser, &base, "admin@journey.example").await;
        browser.goto(&format!("{base}/console/accounts/{parent_id}/subaccounts")).await;
        browser.fill("#f-name", "Night shift").await;
        browser.fill("#f-email", "nights@gmail.com").await;
        browser.click("#create-subaccount button[type=submit]").await;
        browser.element("#f-email-error").await;
        assert_eq!(browser.script("return document.querySelector('#f-email').getAttribute('aria-invalid');").await, json!("true"));
        assert!(text_of(&browser, "#f-email-error").await.contains("gmail.com"));
        browser.fill("#f-email", "nights@journey.example").await;
        browser.choose("[id='f-credit.mode']", "assigned_budget").await;
        browser.click_and_wait("#create-subaccount button[type=submit]", "was created").await;
        let subs = app.get(&format!("/v1/accounts/{parent_id}/subaccounts"), &parent_key).await.expect(200);
        let sub_id = subs["data"].as_array().unwrap().iter()
            .find(|s| s["email"] == "nights@journey.example")
            .and_then(|s| s["id"].as_str())
            .unwrap_or_else(|| panic!("the sub-account is listed: {subs}"))
            .to_string();

        // 3. It gives the sub-account budget.
        browser.click_and_wait(&format!("a[href$='/subaccounts/{sub_id}']"), "Add budget").await;
        browser.fill("#f-amount", "25.00").await;
        browser.click_and_wait("#budget-form button[value=add]", "25.00").await;
        assert_eq!(app.money(&sub_id, &parent_key, "budget").await, "25.00");

        // ...a form whose CSRF token is taken out is refused, and changes nothing.
        browser.script("document.querySelector('#budget-form input[name=csrf]').remove(); return true;").await;
        browser.fill("#f-amount", "5.00").await;
        browser.click_and_wait("#budget-form button[value=add]", "could not be accepted").await;
        assert_eq!(app.money(&sub_id, &parent_key, "budget").await, "25.00", "a refused form moves no money");

        // 4. It invites a user into the sub-account.
        browser.goto(&format!("{base}/console/accounts/{sub_id}/members")).await;
        browser.fill("#invite-member #f-email", "agent@journey.example").await;
        browser.choose("#invite-member #f-role", "basic").await;
        browser.click_and_wait("#invite-member button[type=submit]", "shown only now").await;
        let token = text_of(&browser, "p.secret").await;
        assert!(!token.is_empty());
        app.accept(&token, "Night Agent", PASSWORD).await;
        sign_out(&browser).await;

        // 5. That user signs in and sees no price, balance or budget.
        sign_in(&browser, &base, "agent@journey.example").await;
        browser.goto(&format!("{base}/console/accounts/{sub_id}")).await;
        browser.wait_for_text("Night shift").await;
        for path in [format!("/console/accounts/{sub_id}"), format!("/console/accounts/{sub_id}/messages")] {
            browser.goto(&format!("{base}{path}")).await;
            browser.wait_for_text("Sign out").await;
            let text = browser.text().await;
            for hidden in ["0.0075", "25.00", "Balance", "Budget", "Price"] {
                assert!(!text.contains(hidden), "{path} shows `{hidden}` to a reseller sub-account's user: {text}");
            }
            browser.assert_accessible(&format!("{path} as a reseller sub-account's user")).await;
        }
        // The admin's pages are not theirs.
        browser.goto(&format!("{base}/console/accounts/{parent_id}/subaccounts")).await;
        browser.wait_for_text("Not").await;
        assert!(!browser.text().await.contains("Journey Telecom"));
        browser.goto(&format!("{base}/console/accounts/{sub_id}")).await;
        sign_out(&browser).await;

        // 6. The admin uploads a policy in shadow, sees a disagreement in
        // the decision log, and enforces it.
        sign_in(&browser, &base, "admin@journey.example").await;
        browser.goto(&format!("{base}/console/accounts/{parent_id}/policies/new")).await;
        browser.fill("#f-name", "no new teams").await;
        browser.choose("#f-hook", "authorize").await;
        browser.fill("#f-source", NO_NEW_TEAMS).await;
        browser.choose("#f-then", "shadow").await;
        browser.click_and_wait("form.editor button[type=submit]", "runs in shadow").await;
        let policy_page = browser.url().await;
        // In shadow it decides nothing: the API still creates sub-accounts.
        app.try_sub(&parent, "Day shift", "days@journey.example", json!({})).await.expect(201);
        browser.click_and_wait("a[href*='/decisions?policy_id=']", "Decision log").await;
        browser.click("#f-shadow_disagrees").await;
        let log = browser.click_and_wait(".filters button[type=submit]", "subaccount.create").await;
        assert!(log.contains("no new teams this quarter") || log.contains("deny"), "{log}");
        browser.assert_accessible("the decision log with a disagreement").await;
        browser.goto(&policy_page).await;
        browser.click_and_wait("form[action$='/promote'] button", "enforced").await;
        // Enforced, it decides: the API refuses a new sub-account.
        let refused = app.try_sub(&parent, "Weekend", "weekend@journey.example", json!({})).await;
        assert_eq!(refused.status, 403, "{:?}", refused.body);

        // 7. Another tree's account is not found, and names nothing of it.
        let other = app.parent("elsewhere.example", "enterprise").await;
        let other_sub = app.sub(&other, "Hidden team", "hidden@elsewhere.example").await;
        for path in [
            format!("/console/accounts/{}", other.id),
            format!("/console/accounts/{}/subaccounts", other.id),
            format!("/console/accounts/{}/subaccounts/{}", parent_id, other_sub.id),
            format!("/console/accounts/{}/members", other_sub.id),
            format!("/console/accounts/{}/policies", other.id),
        ] {
            browser.goto(&format!("{base}{path}")).await;
            browser.wait_for_text("Not").await;
            let text = browser.text().await;
            assert!(!text.contains("Hidden team") && !text.contains("elsewhere.example"), "{path}: {text}");
        }
        browser.stop().await;
    }
}
