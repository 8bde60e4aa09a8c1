//! The customer console's people pages: members and invitations, API keys
//! (a secret shown once), and messages as the API lists them to the
//! viewer. Each action takes effect in the API; another tree's user gets
//! 404 on every page and form; a form without its CSRF token is 403.

use canopy_e2e::browser::Browser;
use canopy_e2e::console::{Console, Fetched, PASSWORD, admin_of, user_in};
use canopy_e2e::{TestApp, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

/// Whether the page marks `field` as refused (its input `aria-invalid`,
/// its reason beside it) with a reason containing `reason`.
fn marked(html: &str, field: &str, reason: &str) -> bool {
    let Some(at) = html.find(&format!("id=\"f-{field}\"")) else {
        return false;
    };
    let start = html[..at].rfind('<').unwrap_or(0);
    let tag = &html[start..at + html[at..].find('>').unwrap_or(0)];
    let Some(e) = html.find(&format!("id=\"f-{field}-error\"")) else {
        return false;
    };
    let shown = &html[e..e + html[e..].find("</span>").unwrap_or(0)];
    tag.contains("aria-invalid=\"true\"") && shown.contains(reason)
}

/// The secret a page shows once (`class="secret"`).
fn secret_of(page: &Fetched) -> String {
    let at = page
        .html
        .find("class=\"secret\"")
        .unwrap_or_else(|| panic!("a secret is shown: {}", page.html));
    page.html[at..]
        .split('>')
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .trim()
        .to_string()
}

async fn members_of(app: &TestApp, account: &str, key: &str) -> Vec<Value> {
    app.get(&format!("/v1/accounts/{account}/members"), key)
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn user_id_of(app: &TestApp, account: &str, key: &str, email: &str) -> String {
    members_of(app, account, key)
        .await
        .iter()
        .find(|m| m["email"] == email)
        .unwrap_or_else(|| panic!("{email} is a member"))["user_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn accept(app: &TestApp, token: &str) -> canopy_e2e::Reply {
    app.request(
        Method::POST,
        "/v1/invitations/accept",
        None,
        Some(json!({"token": token, "name": "Invited", "password": PASSWORD})),
    )
    .await
}

async fn keys_of(app: &TestApp, account: &str, key: &str) -> Vec<Value> {
    app.get(&format!("/v1/accounts/{account}/api-keys"), key)
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

both_backends! {
    async fn console_people_invite_change_role_and_remove(app) {
        let parent = app.parent("people.example", "enterprise").await;
        let email = admin_of(&app, &parent, "people.example").await;
        let console = Console::user(&app, &email, PASSWORD).await;
        let page_path = format!("/console/accounts/{}/members", parent.id);
        let page = console.get(&page_path).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains(&email) && page.html.contains("No invitation is waiting"), "{}", page.html);
        // Refused on the e-mail field, what was typed kept.
        let page = console.post(&page_path, &page_path, &[("email", "not-an-address"), ("role", "basic")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "email", ""), "{}", page.html);
        assert!(page.html.contains("value=\"not-an-address\""), "{}", page.html);
        // A role nobody has.
        let page = console.post(&page_path, &page_path, &[("email", "x@people.example"), ("role", "owner")]).await;
        assert!(marked(&page.html, "role", "admin"), "{}", page.html);
        // Invited: the token is shown once and works.
        let page = console.post(&page_path, &page_path, &[("email", "new@people.example"), ("role", "basic")]).await;
        assert_eq!(page.status, 201, "{}", page.html);
        let token = secret_of(&page);
        assert!(token.starts_with("ci"), "{token}");
        let reload = console.get(&page_path).await;
        assert!(!reload.html.contains(&token), "the token is shown once");
        assert!(reload.html.contains("new@people.example"), "the open invitation is listed: {}", reload.html);
        let new_key = accept(&app, &token).await.expect(200)["api_key"]["secret"].as_str().unwrap().to_string();
        let new_user = Console::user(&app, "new@people.example", PASSWORD).await;
        let overview = new_user.get(&format!("/console/accounts/{}", parent.id)).await;
        assert_eq!(overview.status, 200, "{}", overview.html);
        assert!(!console.get(&page_path).await.html.contains("Resend</"), "an accepted invitation is no longer open");
        // Role change takes effect in the API.
        let uid = user_id_of(&app, &parent.id, &parent.key, "new@people.example").await;
        let page = console.post(&page_path, &format!("{page_path}/{uid}/role"), &[("role", "advanced")]).await;
        assert!(page.html.contains("The member&#39;s role was changed.") || page.html.contains("The member's role was changed."), "{}", page.html);
        let member = members_of(&app, &parent.id, &parent.key).await.into_iter().find(|m| m["user_id"] == uid.as_str()).unwrap();
        assert_eq!(member["role"], "advanced");
        // The last admin stays admin: the refusal is said.
        let page = console.post(&page_path, &format!("{page_path}/{}/role", parent.admin_user_id), &[("role", "basic")]).await;
        assert_eq!(page.status, 409, "{}", page.html);
        assert!(page.html.contains("last admin"), "{}", page.html);
        // Removal after a confirmation that changes nothing.
        let confirm = console.get(&format!("{page_path}/{uid}/remove")).await;
        assert_eq!(confirm.status, 200, "{}", confirm.html);
        assert!(confirm.html.contains("Remove new@people.example"), "{}", confirm.html);
        assert_eq!(members_of(&app, &parent.id, &parent.key).await.len(), 2);
        let page = console.post(&page_path, &format!("{page_path}/{uid}/remove"), &[]).await;
        assert!(page.html.contains("The member was removed"), "{}", page.html);
        assert_eq!(members_of(&app, &parent.id, &parent.key).await.len(), 1);
        let gone = app.get(&format!("/v1/accounts/{}", parent.id), &new_key).await;
        assert!(gone.status.as_u16() >= 400, "the removed member's key stops: {}", gone.status);
        // Revoke an open invitation: its token stops working.
        let page = console.post(&page_path, &page_path, &[("email", "later@people.example"), ("role", "advanced")]).await;
        let later = secret_of(&page);
        let page = console.get(&page_path).await;
        let at = page.html.find("/revoke\"").expect("a revoke form");
        let action = page.html[..at].rsplit("action=\"").next().unwrap().to_string() + "/revoke";
        let page = console.post(&page_path, &action, &[]).await;
        assert!(page.html.contains("The invitation was revoked"), "{}", page.html);
        assert!(page.html.contains("No invitation is waiting"), "{}", page.html);
        accept(&app, &later).await.expect_problem(410, "invitation_expired");
        // Resend: a new token; the old one stops working.
        let page = console.post(&page_path, &page_path, &[("email", "again@people.example"), ("role", "basic")]).await;
        let first = secret_of(&page);
        let at = page.html.find("/resend\"").expect("a resend form");
        let action = page.html[..at].rsplit("action=\"").next().unwrap().to_string() + "/resend";
        let page = console.post(&page_path, &action, &[]).await;
        assert_eq!(page.status, 201, "{}", page.html);
        let second = secret_of(&page);
        assert_ne!(first, second);
        assert!(page.html.contains("again@people.example"), "{}", page.html);
        assert!(accept(&app, &first).await.status.as_u16() >= 400);
        accept(&app, &second).await.expect(200);
    }

    async fn console_people_api_keys_secret_shown_once_and_revoked(app) {
        let parent = app.parent("keys.example", "enterprise").await;
        let email = admin_of(&app, &parent, "keys.example").await;
        let console = Console::user(&app, &email, PASSWORD).await;
        let page_path = format!("/console/accounts/{}/keys", parent.id);
        let keys_before = keys_of(&app, &parent.id, &parent.key).await.len();
        let page = console.get(&page_path).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("initial admin key"), "{}", page.html);
        // Refusals on their fields.
        let page = console.post(&page_path, &page_path, &[("name", " "), ("expires_on", "")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "name", "empty"), "{}", page.html);
        let page = console.post(&page_path, &page_path, &[("name", "old"), ("expires_on", "2000-01-01")]).await;
        assert!(marked(&page.html, "expires_on", "future"), "{}", page.html);
        let page = console.post(&page_path, &page_path, &[("name", "old"), ("expires_on", "soon")]).await;
        assert!(marked(&page.html, "expires_on", "date"), "{}", page.html);
        assert_eq!(keys_of(&app, &parent.id, &parent.key).await.len(), keys_before, "nothing was made");
        // Created: the secret once, and it works.
        let page = console.post(&page_path, &page_path, &[("name", "ci export"), ("expires_on", "2099-12-31")]).await;
        assert_eq!(page.status, 201, "{}", page.html);
        let secret = secret_of(&page);
        assert!(page.html.contains("shown only now"), "{}", page.html);
        app.get(&format!("/v1/accounts/{}", parent.id), &secret).await.expect(200);
        let reload = console.get(&page_path).await;
        assert!(reload.html.contains("ci export") && reload.html.contains("2099-12-31"), "{}", reload.html);
        assert!(!reload.html.contains(&secret), "the secret is never shown again");
        // Revoked: it stops.
        let key = keys_of(&app, &parent.id, &parent.key).await.into_iter().find(|k| k["name"] == "ci export").unwrap();
        let key_id = key["id"].as_str().unwrap();
        let page = console.post(&page_path, &format!("{page_path}/{key_id}/revoke"), &[]).await;
        assert!(page.html.contains("The API key was revoked"), "{}", page.html);
        assert!(page.html.contains("revoked"), "{}", page.html);
        app.get(&format!("/v1/accounts/{}", parent.id), &secret).await.expect_problem(401, "unauthenticated");
        // Revoking it again says why not.
        let page = console.post(&page_path, &format!("{page_path}/{key_id}/revoke"), &[]).await;
        assert_eq!(page.status, 404, "{}", page.html);
    }

    async fn console_people_a_basic_user_sees_only_own_messages(app) {
        let parent = app.parent("msgs.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "20.00"})).await.expect(201);
        let email = admin_of(&app, &parent, "msgs.example").await;
        app.send(&parent.id, &parent.key).await.expect(201);
        let basic_key = app.member(&parent.key, &parent.id, "basic@msgs.example", "basic").await;
        app.post(&format!("/v1/accounts/{}/messages", parent.id), &basic_key,
            json!({"channel": "sms", "to": "+15550111", "body": "from the basic user"})).await.expect(201);
        let basic = Console::user(&app, "basic@msgs.example", PASSWORD).await;
        let path = format!("/console/accounts/{}/messages", parent.id);
        let page = basic.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("from the basic user"), "{}", page.html);
        assert!(!page.html.contains("+15550100"), "the admin's message is not the basic user's: {}", page.html);
        // The same rows as the API gives that user.
        let api = app.get(&format!("/v1/accounts/{}/messages", parent.id), &basic_key).await.expect(200);
        assert_eq!(api["data"].as_array().unwrap().len(), 1);
        // The basic user sends from the console.
        let page = basic.post(&path, &path, &[("channel", "sms"), ("to", "+15550122"), ("body", "sent in the console"), ("from", "")]).await;
        assert!(page.html.contains("The message was sent."), "{}", page.html);
        assert!(page.html.contains("sent in the console"), "{}", page.html);
        let page = basic.post(&path, &path, &[("channel", "sms"), ("to", "not a number"), ("body", "x"), ("from", "")]).await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(marked(&page.html, "to", ""), "{}", page.html);
        // The admin sees every message, with its price.
        let admin = Console::user(&app, &email, PASSWORD).await;
        let page = admin.get(&path).await;
        for text in ["+15550100", "from the basic user", "sent in the console", "Price", "0.0075"] {
            assert!(page.html.contains(text), "the admin sees {text}: {}", page.html);
        }
    }

    async fn console_people_a_resellers_subaccount_user_sees_no_price_or_balance(app) {
        let parent = app.parent("resell.example", "reseller").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "50.00"})).await.expect(201);
        let sub = app.try_sub(&parent, "Client Co", "owner@client-co.example", json!({"credit": {"mode": "assigned_budget"}})).await.expect(201);
        let sub_id = sub["id"].as_str().unwrap().to_string();
        app.post(&format!("/v1/accounts/{sub_id}/budget"), &parent.key, json!({"amount": "7.25"})).await.expect(201);
        user_in(&app, &parent.key, &sub_id, "user@client-co.example", "admin").await;
        app.send(&sub_id, &parent.key).await.expect(201);
        let console = Console::user(&app, "user@client-co.example", PASSWORD).await;
        let messages = console.get(&format!("/console/accounts/{sub_id}/messages")).await;
        assert_eq!(messages.status, 200, "{}", messages.html);
        assert!(messages.html.contains("+15550100"), "the message is listed: {}", messages.html);
        for path in [format!("/console/accounts/{sub_id}/messages"), format!("/console/accounts/{sub_id}"),
            format!("/console/accounts/{sub_id}/members"), format!("/console/accounts/{sub_id}/keys")] {
            let page = console.get(&path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.html);
            for hidden in ["0.0075", "7.25", "Price", "Balance", "Budget"] {
                assert!(!page.html.contains(hidden), "{path} shows {hidden:?}: {}", page.html);
            }
        }
    }

    async fn console_people_another_trees_user_gets_404_everywhere(app) {
        let a = app.parent("tree-a.example", "enterprise").await;
        let b = app.parent("tree-b.example", "enterprise").await;
        admin_of(&app, &a, "tree-a.example").await;
        let b_email = admin_of(&app, &b, "tree-b.example").await;
        let keys_before = keys_of(&app, &a.id, &a.key).await.len();
        let a_key_id = keys_of(&app, &a.id, &a.key).await[0]["id"].as_str().unwrap().to_string();
        let invited = app.post(&format!("/v1/accounts/{}/members", a.id), &a.key, json!({"email": "open@tree-a.example", "role": "basic"})).await.expect(201);
        let inv_id = invited["invitation"]["id"].as_str().unwrap().to_string();
        let b_console = Console::user(&app, &b_email, PASSWORD).await;
        let base = format!("/console/accounts/{}", a.id);
        for path in [format!("{base}/members"), format!("{base}/keys"), format!("{base}/messages"),
            format!("{base}/members/{}/remove", a.admin_user_id)] {
            let page = b_console.get(&path).await;
            assert_eq!(page.status, 404, "{path}: {}", page.html);
            assert!(!page.html.contains("tree-a.example"), "{path}");
        }
        let own = format!("/console/accounts/{}/members", b.id);
        let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
            (format!("{base}/members"), vec![("email", "intruder@tree-b.example"), ("role", "admin")]),
            (format!("{base}/members/{}/role", a.admin_user_id), vec![("role", "basic")]),
            (format!("{base}/members/{}/remove", a.admin_user_id), vec![]),
            (format!("{base}/invitations/{inv_id}/resend"), vec![]),
            (format!("{base}/invitations/{inv_id}/revoke"), vec![]),
            (format!("{base}/keys"), vec![("name", "intruder"), ("expires_on", "")]),
            (format!("{base}/keys/{a_key_id}/revoke"), vec![]),
            (format!("{base}/messages"), vec![("channel", "sms"), ("to", "+15550100"), ("body", "intruder"), ("from", "")]),
        ];
        for (path, fields) in &forms {
            let page = b_console.post(&own, path, fields).await;
            assert_eq!(page.status, 404, "{path}: {}", page.html);
        }
        // Nothing changed in A.
        let members = members_of(&app, &a.id, &a.key).await;
        assert!(members.iter().all(|m| m["role"] == "admin"), "{members:?}");
        let keys = keys_of(&app, &a.id, &a.key).await;
        assert_eq!(keys.len(), keys_before, "{keys:?}");
        assert!(keys.iter().all(|k| k.get("revoked_at").is_none()), "{keys:?}");
        let messages = app.get(&format!("/v1/accounts/{}/messages", a.id), &a.key).await.expect(200);
        assert_eq!(messages["data"].as_array().unwrap().len(), 0);
        accept(&app, invited["invitation"]["token"].as_str().unwrap()).await.expect(200);
    }

    async fn console_people_forms_without_csrf_are_refused(app) {
        let parent = app.parent("csrf-people.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "20.00"})).await.expect(201);
        let email = admin_of(&app, &parent, "csrf-people.example").await;
        let console = Console::user(&app, &email, PASSWORD).await;
        let keys_before = keys_of(&app, &parent.id, &parent.key).await.len();
        let base = format!("/console/accounts/{}", parent.id);
        let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
            (format!("{base}/members"), vec![("email", "forged@csrf-people.example"), ("role", "admin")]),
            (format!("{base}/members/{}/role", parent.admin_user_id), vec![("role", "basic")]),
            (format!("{base}/members/{}/remove", parent.admin_user_id), vec![]),
            (format!("{base}/keys"), vec![("name", "forged"), ("expires_on", "")]),
            (format!("{base}/messages"), vec![("channel", "sms"), ("to", "+15550100"), ("body", "forged"), ("from", "")]),
        ];
        for (path, fields) in &forms {
            let page = console.post_raw(path, fields).await;
            assert_eq!(page.status, 403, "{path}: {}", page.html);
            assert!(page.html.contains("security token"), "{path}");
        }
        assert!(console.get(&format!("{base}/members")).await.html.contains("No invitation is waiting"));
        assert_eq!(keys_of(&app, &parent.id, &parent.key).await.len(), keys_before);
        let messages = app.get(&format!("/v1/accounts/{}/messages", parent.id), &parent.key).await.expect(200);
        assert_eq!(messages["data"].as_array().unwrap().len(), 0);
        let members = members_of(&app, &parent.id, &parent.key).await;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["role"], "admin");
    }

    async fn console_people_in_a_browser_an_admin_invites_a_member(app) {
        let parent = app.parent("browse-people.example", "enterprise").await;
        let email = admin_of(&app, &parent, "browse-people.example").await;
        let Some(browser) = Browser::open("the members page").await else { return; };
        browser.goto(&format!("{}/console/sign-in", app.base)).await;
        browser.fill("#f-email", &email).await;
        browser.fill("#f-password", PASSWORD).await;
        browser.click_and_wait("form[action='/console/sign-in'] button", "Sign out").await;
        browser.goto(&format!("{}/console/accounts/{}/members", app.base, parent.id)).await;
        browser.wait_for_text("Invite a member").await;
        browser.assert_accessible("the members page").await;
        browser.fill("#f-email", "nope").await;
        browser.click("#invite-member button[type=submit]").await;
        // The browser's own check or the server's: either way, not invited.
        browser.fill("#f-email", "colleague@browse-people.example").await;
        browser.choose("#f-role", "advanced").await;
        let text = browser.click_and_wait("#invite-member button[type=submit]", "shown only now").await;
        assert!(text.contains("colleague@browse-people.example"), "{text}");
        browser.assert_accessible("the members page with a new invitation").await;
        browser.save_screenshot("console/members.png").await;
        browser.resize(390, 844).await;
        browser.assert_accessible("the members page at phone width").await;
        let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
        let wide = browser.script("return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 10).join(' ');").await;
        assert_eq!(fits, json!(true), "no sideways scrolling at phone width: {wide}");
        browser.goto(&format!("{}/console/accounts/{}/keys", app.base, parent.id)).await;
        browser.wait_for_text("Create an API key").await;
        browser.assert_accessible("the keys page at phone width").await;
        browser.goto(&format!("{}/console/accounts/{}/messages", app.base, parent.id)).await;
        browser.wait_for_text("Send a message").await;
        browser.assert_accessible("the messages page at phone width").await;
        browser.resize(1280, 900).await;
        browser.stop().await;
        let invited = app.get(&format!("/v1/accounts/{}/members", parent.id), &parent.key).await.expect(200);
        assert_eq!(invited["data"].as_array().unwrap().len(), 1, "an invitation is not a membership yet");
    }
}
