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

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use canopy_e2e::{TestApp, both_backends};
use serde_json::{Value, json};

/// How long Chromium may take to load and render the reference.
const RENDER_WAIT_MAX: Duration = Duration::from_secs(60);

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chromium and chromedriver, or `None` (after saying so) where they are
/// missing outside CI.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = find(&[
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]);
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)"
            )
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: the /docs page was NOT checked in a browser: chromium or chromedriver is missing \
                 (apt-get install chromium chromium-driver) ***\n"
            );
            None
        }
    }
}

/// A chromedriver process and one headless Chromium session in it.
struct Browser {
    driver: tokio::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver answers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", "--hide-scrollbars"]
            }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver makes a session")
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a Chromium session: {created}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        assert!(
            reply["value"]["error"].is_null(),
            "WebDriver {path}: {reply}"
        );
        reply["value"].clone()
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn stop(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
        let _ = self.driver.kill().await;
    }
}

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

    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser
        .command(
            reqwest::Method::POST,
            "/url",
            json!({"url": format!("{}/docs", app.base)}),
        )
        .await;
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
    let png = browser
        .command(reqwest::Method::GET, "/screenshot", Value::Null)
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().expect("a base64 screenshot"))
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = if std::env::var_os("CANOPY_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/api-docs.png")
    } else {
        let dir = root.join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("target/screenshots is made");
        dir.join("api-docs.png")
    };
    // Both backends' runs write it: whole files only.
    let part = out.with_extension(format!("png.{}", std::process::id()));
    std::fs::write(&part, &png).expect("the screenshot is written");
    std::fs::rename(&part, &out).expect("the screenshot is written");
    browser.stop().await;
}

both_backends! {
    async fn the_docs_page_renders_offline_in_a_browser(app) {
        check_docs_page(app).await;
    }
}
