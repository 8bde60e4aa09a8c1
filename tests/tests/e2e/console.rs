//! The web console's sign-in, CSRF and reach, over HTTP and in Chromium:
//! sign-in cookies are HttpOnly and SameSite=Strict, every form needs its
//! CSRF token, sign-out ends the session, a user reaches only their own
//! tree, and every page passes axe-core with no serious violation.

use canopy_e2e::both_backends;
use canopy_e2e::browser::Browser;
use canopy_e2e::console::{Console, PASSWORD, admin_of, csrf_of};

both_backends! {
    async fn pages_carry_a_strict_csp_and_cookies_are_http_only_and_strict(app) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(format!("{}/console/sign-in", app.base)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{csp} has {directive}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(page.headers()["cache-control"], "no-store");
        let csrf_cookie = page.headers().get_all("set-cookie").iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("canopy_csrf="))
            .expect("a CSRF seed cookie");
        assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"), "{csrf_cookie}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style: {html}");
        for external in ["http://", "https://", "//cdn"] {
            assert!(!html.contains(external), "nothing outside the server ({external})");
        }

        // The operator signs in: the cookie is HttpOnly, SameSite=Strict,
        // and never holds the token.
        let seed = csrf_cookie.split(';').next().unwrap().to_string();
        let token = csrf_of(&html).unwrap();
        let signed = http.post(format!("{}/console/sign-in/operator", app.base))
            .header("cookie", &seed)
            .form(&[("csrf", token.as_str()), ("token", app.operator_token.as_str())])
            .send().await.unwrap();
        assert_eq!(signed.status(), 303);
        let cookie = signed.headers().get_all("set-cookie").iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("canopy_console="))
            .expect("a sign-in cookie");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"), "{cookie}");
        assert!(!cookie.contains(&app.operator_token), "the cookie does not hold the operator token");
    }

    async fn a_form_without_its_csrf_token_is_refused(app) {
        let parent = app.parent("csrf.example", "enterprise").await;
        let email = admin_of(&app, &parent, "csrf.example").await;
        // Signing in without the token: refused before the password is read.
        let console = Console::new(&app);
        let page = console.post_raw("/console/sign-in", &[("email", &email), ("password", PASSWORD)]).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(page.html.contains("security token"), "{}", page.html);
        // A token from another browser is no better.
        let other = Console::new(&app).get("/console/sign-in").await.csrf();
        let page = console.post_raw("/console/sign-in", &[("csrf", &other), ("email", &email), ("password", PASSWORD)]).await;
        assert_eq!(page.status, 403);
        // Signed in, a form posted without the token is refused and changes
        // nothing: the user is still signed in.
        let console = Console::user(&app, &email, PASSWORD).await;
        let page = console.post_raw("/console/sign-out", &[]).await;
        assert_eq!(page.status, 403);
        let still = console.get(&format!("/console/accounts/{}", parent.id)).await;
        assert_eq!(still.status, 200);
        assert!(still.html.contains("Parent csrf.example"), "{}", still.html);
        // The token from before signing in does not carry over.
        let before = Console::new(&app);
        let old = before.get("/console/sign-in").await.csrf();
        before.post_raw("/console/sign-in", &[("csrf", &old), ("email", &email), ("password", PASSWORD)]).await;
        let page = before.post_raw("/console/sign-out", &[("csrf", &old)]).await;
        assert_eq!(page.status, 403, "a pre-sign-in token does not sign out");
    }

    async fn a_tampered_operator_pass_is_no_sign_in(app) {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        // Sign in without following the redirect, to read the pass.
        let page = http.get(format!("{}/console/sign-in", app.base)).send().await.unwrap();
        let seed = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let token = csrf_of(&page.text().await.unwrap()).unwrap();
        let signed = http.post(format!("{}/console/sign-in/operator", app.base))
            .header("cookie", &seed)
            .form(&[("csrf", token.as_str()), ("token", app.operator_token.as_str())])
            .send().await.unwrap();
        let pass = signed.headers()["set-cookie"].to_str().unwrap()
            .split(';').next().unwrap().trim_start_matches("canopy_console=").to_string();
        let open = |pass: String| {
            let http = http.clone();
            let url = format!("{}/console/accounts", app.base);
            async move {
                http.get(url).header("cookie", format!("canopy_console={pass}")).send().await.unwrap()
            }
        };
        // The pass works (the operator is sent to its own pages) ...
        let ok = open(pass.clone()).await;
        assert_eq!(ok.headers()["location"], "/console/operator");
        // ... and a later expiry, or a changed MAC, is no sign-in.
        let (expiry, mac) = pass.trim_start_matches("op1.").split_once('.').unwrap();
        let later: i64 = expiry.parse::<i64>().unwrap() + 3_600_000_000;
        for forged in [format!("op1.{later}.{mac}"), format!("op1.{expiry}.{}", "0".repeat(mac.len())), format!("op1.{expiry}")] {
            let page = open(forged.clone()).await;
            assert_eq!(page.headers()["location"], "/console/sign-in", "{forged} is refused");
        }
        // Past its expiry the pass is refused too.
        app.set_clock("2100-01-01T00:00:00Z").await;
        let page = open(pass).await;
        assert_eq!(page.headers()["location"], "/console/sign-in");
    }

    async fn wrong_credentials_say_so_on_the_form(app) {
        let console = Console::new(&app);
        let page = console.post("/console/sign-in", "/console/sign-in", &[("email", "nobody@example.com"), ("password", "not the password")]).await;
        assert_eq!(page.status, 401);
        assert!(page.html.contains("wrong e-mail or password"), "{}", page.html);
        assert!(page.html.contains("aria-invalid=\"true\""), "the field is marked: {}", page.html);
        assert!(page.html.contains("value=\"nobody@example.com\""), "the e-mail is kept");
        let page = console.post("/console/sign-in", "/console/sign-in/operator", &[("token", "not-the-token")]).await;
        assert_eq!(page.status, 401);
        assert!(page.html.contains("not the operator token"), "{}", page.html);
        // Pages need a sign-in.
        let page = console.get("/console/accounts").await;
        assert!(page.url.ends_with("/console/sign-in"), "{}", page.url);
    }

    async fn signing_out_ends_the_session_on_the_server(app) {
        let parent = app.parent("out.example", "enterprise").await;
        let email = admin_of(&app, &parent, "out.example").await;
        // A session made in the console, read back through the API.
        let sessions_before = app.get("/v1/sessions", &parent.key).await.expect(200)["data"].as_array().unwrap().len();
        let console = Console::user(&app, &email, PASSWORD).await;
        let sessions = app.get("/v1/sessions", &parent.key).await.expect(200);
        assert_eq!(sessions["data"].as_array().unwrap().len(), sessions_before + 1);
        let page = console.post(&format!("/console/accounts/{}", parent.id), "/console/sign-out", &[]).await;
        assert!(page.url.ends_with("/console/sign-in"), "{}", page.url);
        let sessions = app.get("/v1/sessions", &parent.key).await.expect(200);
        assert_eq!(sessions["data"].as_array().unwrap().len(), sessions_before, "the session is gone");
        let page = console.get(&format!("/console/accounts/{}", parent.id)).await;
        assert!(page.url.ends_with("/console/sign-in"), "signed out: {}", page.url);
    }

    async fn a_user_reaches_only_their_own_tree(app) {
        let a = app.parent("tree-a.example", "enterprise").await;
        let b = app.parent("tree-b.example", "enterprise").await;
        let b_sub = app.sub(&b, "Bee Secret", "ops@tree-b.example").await;
        let email = admin_of(&app, &a, "tree-a.example").await;
        let console = Console::user(&app, &email, PASSWORD).await;
        for path in [format!("/console/accounts/{}", b.id), format!("/console/accounts/{}", b_sub.id)] {
            let page = console.get(&path).await;
            assert_eq!(page.status, 404, "{path}: {}", page.html);
            assert!(!page.html.contains("Bee Secret") && !page.html.contains("tree-b"), "{}", page.html);
        }
        let switcher = console.get("/console/accounts").await;
        assert!(switcher.html.contains("Parent tree-a.example"));
        assert!(!switcher.html.contains("tree-b"), "{}", switcher.html);
        // An API key is not a console sign-in.
        let http = reqwest::Client::new();
        let page = http.get(format!("{}/console/accounts", app.base))
            .header("cookie", format!("canopy_console={}", a.key))
            .send().await.unwrap();
        assert!(page.url().path().ends_with("/console/sign-in"), "{}", page.url());
        // The operator is not a user: account pages refuse it.
        let operator = Console::operator(&app).await;
        let page = operator.get(&format!("/console/accounts/{}", a.id)).await;
        assert_eq!(page.status, 403, "{}", page.html);
    }

    async fn signing_in_in_a_browser_shows_the_account_and_passes_axe(app) {
        let parent = app.parent("browser.example", "enterprise").await;
        let email = admin_of(&app, &parent, "browser.example").await;
        let Some(browser) = Browser::open("the console sign-in").await else { return; };
        browser.goto(&format!("{}/console", app.base)).await;
        browser.wait_for_text("Account users").await;
        browser.assert_accessible("the sign-in page").await;
        browser.fill("#f-email", &email).await;
        browser.fill("#f-password", "wrong password here").await;
        browser.click_and_wait("form[action='/console/sign-in'] button", "wrong e-mail or password").await;
        browser.assert_accessible("the sign-in page with an error").await;
        browser.fill("#f-password", PASSWORD).await;
        let text = browser.click_and_wait("form[action='/console/sign-in'] button", "Details").await;
        assert!(text.contains("Parent browser.example"), "{text}");
        assert!(text.contains("Balance"), "{text}");
        browser.assert_accessible("an account's overview").await;
        browser.save_screenshot("console/overview.png").await;
        // Phone width: still usable, still accessible.
        browser.resize(390, 844).await;
        browser.assert_accessible("an account's overview at phone width").await;
        let overflow = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
        assert_eq!(overflow, serde_json::json!(true), "no sideways scrolling at phone width");
        browser.click_and_wait(".session button", "Platform operator").await;
        browser.stop().await;
    }
}

both_backends! {
    options = canopy_e2e::Options { no_data_key: true, ..Default::default() };
    async fn without_a_data_key_the_operator_cannot_sign_in_to_the_console(app) {
        let console = Console::new(&app);
        let page = console.post("/console/sign-in", "/console/sign-in/operator", &[("token", &app.operator_token)]).await;
        match app.backend {
            // SQLite hosts keep their data key in a file beside the database.
            canopy_e2e::Backend::Sqlite => assert!(page.url.ends_with("/console/operator"), "{}", page.url),
            canopy_e2e::Backend::Postgres => {
                assert_eq!(page.status, 403, "{}", page.html);
                assert!(page.html.contains("--data-key"), "the page says how to fix it: {}", page.html);
            }
        }
    }
}
