//! `/docs` is a real API reference that works offline: headless Chromium
//! (driven over WebDriver by chromedriver) renders it from the server's own
//! assets, under the server's Content-Security-Policy, and it lists the
//! operations with their fields and authentication. The page and everything
//! it loads come from the server itself. A screenshot goes to
//! target/screenshots/api-docs.png, and to docs/api-docs.png (the one the
//! README shows) when `CANOPY_UPDATE_SCREENSHOTS=1` is set, so a test run
//! leaves the checkout as it found it.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). Without them the test fails
//! in CI and is skipped, loudly, elsewhere.

use std::time::{Duration, Instant};

use canopy_e2e::browser::Browser;
use canopy_e2e::{TestApp, both_backends};

/// How long Chromium may take to load and render the reference.
const RENDER_WAIT_MAX: Duration = Duration::from_secs(60);

/// What the rendered reference shows, read from RapiDoc's shadow DOM.
const READ_PAGE: &str = r#"
const doc = document.querySelector('rapi-doc');
const root = doc && doc.shadowRoot;
if (!root) { return null; }
const ops = root.querySelectorAll('[id^="get-"], [id^="post-"], [id^="put-"], [id^="patch-"], [id^="delete-"]');
// The schema tables and examples are components with shadow roots of
// their own: read the text of every one.
const texts = [];
const walk = (node) => {
  if (node.shadowRoot) { walk(node.shadowRoot); }
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) { texts.push(child.textContent); } else { walk(child); }
  }
};
walk(root);
return {
  operations: ops.length,
  text: texts.join(' '),
  loaded: performance.getEntriesByType('resource').map(e => e.name).concat([location.href]),
};
"#;

async fn check_docs_page(app: TestApp) {
    // The page and its script come from the server, under its CSP.
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    for needle in ["http://", "https://", "//cdn", "unpkg", "jsdelivr"] {
        assert!(
            !html.contains(needle),
            "the docs page references nothing outside the server ({needle}): {html}"
        );
        assert!(
            !csp.contains(needle),
            "the CSP allows no other origin: {csp}"
        );
    }
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-eval")
            && !csp
                .split(';')
                .any(|d| d.contains("script-src") && d.contains("unsafe-inline")),
        "{csp}"
    );
    let script = http
        .get(format!("{}/docs/rapidoc-min.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().await.unwrap().contains("RapiDoc"));

    let Some(browser) = Browser::open("the /docs page").await else {
        return;
    };
    browser.goto(&format!("{}/docs", app.base)).await;
    let started = Instant::now();
    let shown = loop {
        let shown = browser.script(READ_PAGE).await;
        if shown["operations"].as_u64().unwrap_or(0) > 80
            && shown["text"]
                .as_str()
                .unwrap_or("")
                .contains("/v1/operator/accounts")
        {
            break shown;
        }
        assert!(
            started.elapsed() < RENDER_WAIT_MAX,
            "the reference renders its operations: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let text = shown["text"].as_str().unwrap();
    for expected in [
        "Create a parent account and its first admin.", // an operation's summary
        "/v1/accounts/{id}/subaccounts",                // a route
        "billing_type",                                 // a field
        "prepaid",                                      // an enum value
        "application/problem+json",                     // errors
        "policy_failed",                                // the error codes
        "Idempotency-Key",                              // a header
        "bearer",                                       // authentication
    ] {
        assert!(
            text.to_lowercase().contains(&expected.to_lowercase()),
            "the reference shows {expected:?}"
        );
    }
    for url in shown["loaded"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&app.base),
            "the page loaded {url}, which is not the server"
        );
    }

    // The picture shows one operation: its fields, errors and examples.
    browser
        .script(
            "const op = document.querySelector('rapi-doc').shadowRoot\
             .querySelector('[id^=\"post-\"][id$=\"subaccounts\"]'); \
             if (op) { op.scrollIntoView(); } return op !== null;",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Docs pictures go to docs/ (and target/screenshots/ on a plain run).
    browser.save_screenshot("api-docs.png").await;
    browser.stop().await;
}

both_backends! {
    async fn the_docs_page_renders_offline_in_a_browser(app) {
        check_docs_page(app).await;
    }
}
