//! Every console page, found by following the console's own links from
//! `/console` as each kind of person: nothing of another tree appears on
//! any of them, another tree's page addresses show nothing of it, a
//! reseller's sub-account user sees no price or money anywhere, and (in
//! Chromium) every page passes axe-core with no serious or critical
//! violation, at desktop and phone width.

use std::collections::{BTreeSet, VecDeque};

use canopy_e2e::browser::Browser;
use canopy_e2e::console::{Console, PASSWORD, admin_of, user_in};
use canopy_e2e::{Parent, TestApp, both_backends};
use serde_json::json;

/// Pages one crawl visits at most.
const PAGES_MAX: usize = 80;

/// The `/console/...` links of a page (assets and sign-out left out).
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter(|href| href.starts_with("/console") && !href.starts_with("/console/assets"))
        .collect()
}

/// Every page reachable from `/console` by links, with its HTML.
async fn crawl(console: &Console) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from(["/console".to_string()]);
    let mut pages = Vec::new();
    while let Some(path) = queue.pop_front() {
        if pages.len() >= PAGES_MAX || !seen.insert(path.clone()) {
            continue;
        }
        let page = console.get(&path).await;
        // A link the console shows leads to a page that works.
        assert_eq!(
            page.status, 200,
            "{path} (linked from the console): {}",
            page.html
        );
        let path = page
            .url
            .strip_prefix(&console.base)
            .unwrap_or(&page.url)
            .to_string();
        seen.insert(path.clone());
        queue.extend(links(&page.html));
        pages.push((path, page.html));
    }
    pages
}

/// A tree with something on every page: sub-accounts with budget, a
/// member, an API key, a message, lines.
async fn tree(app: &TestApp, domain: &str, module: &str) -> (Parent, String, Vec<String>) {
    let parent = app.parent(domain, module).await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": "50.00"}),
    )
    .await
    .expect(201);
    let email = admin_of(app, &parent, domain).await;
    let mut subs = Vec::new();
    for name in ["North", "South"] {
        let sub = app
            .try_sub(
                &parent,
                &format!("{name} {domain}"),
                &format!("{}@{domain}", name.to_lowercase()),
                json!({"credit": {"mode": "assigned_budget"}}),
            )
            .await
            .expect(201);
        let id = sub["id"].as_str().unwrap().to_string();
        app.post(
            &format!("/v1/accounts/{id}/budget"),
            &parent.key,
            json!({"amount": "5"}),
        )
        .await
        .expect(201);
        subs.push(id);
    }
    user_in(
        app,
        &parent.key,
        &parent.id,
        &format!("colleague@{domain}"),
        "basic",
    )
    .await;
    app.post(
        &format!("/v1/accounts/{}/api-keys", parent.id),
        &parent.key,
        json!({"name": format!("key of {domain}")}),
    )
    .await
    .expect(201);
    app.send(&subs[0], &parent.key).await;
    (parent, email, subs)
}

both_backends! {
    async fn no_page_shows_another_trees_data(app) {
        let (a, a_email, _) = tree(&app, "reach-a.example", "enterprise").await;
        let (b, b_email, b_subs) = tree(&app, "reach-b.example", "enterprise").await;
        let a_console = Console::user(&app, &a_email, PASSWORD).await;
        let b_console = Console::user(&app, &b_email, PASSWORD).await;
        let b_pages = crawl(&b_console).await;
        assert!(b_pages.len() >= 3, "the crawl finds B's pages: {:?}", b_pages.iter().map(|p| &p.0).collect::<Vec<_>>());
        // B's own pages do show B (the markers are real).
        let b_text: String = b_pages.iter().map(|p| p.1.as_str()).collect();
        let names = ["reach-b.example", "North reach-b.example", "South reach-b.example"];
        for name in names { assert!(b_text.contains(name), "B's pages show {name}"); }
        // A's pages never name B, its sub-accounts or their ids.
        let a_pages = crawl(&a_console).await;
        for (path, html) in &a_pages {
            for marker in names.iter().copied().chain([b.id.as_str(), b_subs[0].as_str(), b_subs[1].as_str()]) {
                assert!(!html.contains(marker), "A's page {path} shows B's {marker}");
            }
        }
        // A opening B's page addresses sees nothing of B.
        for (path, _) in &b_pages {
            let page = a_console.get(path).await;
            for marker in names {
                assert!(!page.html.contains(marker), "A at B's {path} ({}) sees {marker}", page.status);
            }
        }
        let _ = a;
    }

    async fn a_resellers_subaccount_user_sees_no_price_or_money_on_any_page(app) {
        let parent = app.parent("resale.example", "reseller").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "50.00"})).await.expect(201);
        let sub = app
            .try_sub(&parent, "Client Co", "owner@client.example", json!({"credit": {"mode": "assigned_budget"}}))
            .await
            .expect(201);
        let sub_id = sub["id"].as_str().unwrap().to_string();
        app.post(&format!("/v1/accounts/{sub_id}/budget"), &parent.key, json!({"amount": "7.25"})).await.expect(201);
        user_in(&app, &parent.key, &sub_id, "user@client.example", "admin").await;
        let console = Console::user(&app, "user@client.example", PASSWORD).await;
        let pages = crawl(&console).await;
        assert!(pages.iter().any(|(p, _)| p.contains(&sub_id)), "the user reaches its account: {:?}", pages.iter().map(|p| &p.0).collect::<Vec<_>>());
        for (path, html) in &pages {
            for hidden in ["0.0075", "7.25", "Balance", "Budget", "Prices"] {
                assert!(!html.contains(hidden), "the reseller's sub-account user sees {hidden:?} on {path}");
            }
        }
    }

    async fn every_page_passes_axe_in_chromium(app) {
        let (parent, email, _) = tree(&app, "axe.example", "enterprise").await;
        let admin = Console::user(&app, &email, PASSWORD).await;
        let operator = Console::operator(&app).await;
        let admin_pages = crawl(&admin).await;
        let operator_pages = crawl(&operator).await;
        let Some(browser) = Browser::open("the console's accessibility").await else { return; };
        for (who, secret, pages) in [("parent admin", None, &admin_pages), ("operator", Some(app.operator_token.clone()), &operator_pages)] {
            browser.goto(&format!("{}/console/sign-in", app.base)).await;
            match &secret {
                None => {
                    browser.fill("#f-email", &email).await;
                    browser.fill("#f-password", PASSWORD).await;
                    browser.click("form[action='/console/sign-in'] button").await;
                }
                Some(token) => {
                    browser.fill("#f-token", token).await;
                    browser.click("form[action='/console/sign-in/operator'] button").await;
                }
            }
            browser.wait_for_text("Sign out").await;
            for (path, _) in pages.iter() {
                browser.resize(1280, 900).await;
                browser.goto(&format!("{}{path}", app.base)).await;
                browser.assert_accessible(&format!("{path} as the {who}")).await;
                browser.resize(390, 844).await;
                browser.assert_accessible(&format!("{path} as the {who} at phone width")).await;
                let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
                assert_eq!(fits, json!(true), "{path} has no sideways scrolling at phone width");
            }
            browser.click(".session button").await;
            browser.wait_for_text("Platform operator").await;
        }
        browser.stop().await;
        let _ = parent;
    }
}
