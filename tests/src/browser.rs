//! Headless Chromium over WebDriver (Debian's `chromium` and
//! `chromium-driver`, started by the test itself): pages are loaded, forms
//! filled and submitted as a person would, axe-core checks each page's
//! accessibility, and screenshots are taken.
//!
//! Without chromium and chromedriver the browser tests fail in CI (`CI`
//! set) and are skipped, loudly, elsewhere.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// How long [`Browser::click_and_wait`] waits for a page that already
/// shows the awaited text to change.
const SAME_PAGE_GRACE: Duration = Duration::from_secs(2);
/// How long a page may take to show what a test waits for.
pub const WAIT_MAX: Duration = Duration::from_secs(30);
/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// axe-core, vendored (tests/assets/README.md).
const AXE: &str = include_str!("../assets/axe.min.js");

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chromium and chromedriver, or `None` (after saying so) where they are
/// missing outside CI.
pub fn installed(what: &str) -> Option<(PathBuf, PathBuf)> {
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
                "\n*** SKIPPED: {what} was NOT checked in a browser: chromium or chromedriver is missing \
                 (apt-get install chromium chromium-driver) ***\n"
            );
            None
        }
    }
}

/// A chromedriver process and one headless Chromium session in it.
pub struct Browser {
    driver: tokio::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    /// A browser, or `None` where Chromium is missing outside CI.
    pub async fn open(what: &str) -> Option<Browser> {
        let (chromium, chromedriver) = installed(what)?;
        Some(Browser::start(&chromium, &chromedriver, (1280, 900)).await)
    }

    pub async fn start(chromium: &Path, chromedriver: &Path, size: (u32, u32)) -> Browser {
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
                         format!("--window-size={},{}", size.0, size.1), "--hide-scrollbars"]
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

    async fn try_command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap()
    }

    /// A WebDriver command; panics on a WebDriver error.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let reply = self.try_command(method, path, body).await;
        assert!(
            reply["value"]["error"].is_null(),
            "WebDriver {path}: {reply}"
        );
        reply["value"].clone()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn script_with(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    pub async fn script(&self, script: &str) -> Value {
        self.script_with(script, json!([])).await
    }

    /// Loads `url` and waits for the document.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// The page's address.
    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.script("return document.body ? document.body.innerText : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML.
    pub async fn html(&self) -> String {
        self.script("return document.documentElement.outerHTML;")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, or `None`.
    pub async fn find(&self, css: &str) -> Option<String> {
        let reply = self
            .try_command(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        reply["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(id) = self.find(css).await {
                return id;
            }
            assert!(
                started.elapsed() < WAIT_MAX,
                "the page shows `{css}`: at {}\n{}",
                self.url().await,
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the field `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Chooses `value` in the `<select>` `css`.
    pub async fn choose(&self, css: &str, value: &str) {
        self.element(css).await;
        let done = self
            .script_with(
                "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
                 s.dispatchEvent(new Event('change', {bubbles: true})); return s.value;",
                json!([css, value]),
            )
            .await;
        assert_eq!(done, json!(value), "`{css}` offers `{value}`");
    }

    /// Clicks the element `css` (a button submits its form and the page
    /// that answers loads).
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    /// Clicks `css`, then waits until the page's text contains `expected`.
    /// When the page held `expected` already (a hint naming it, a list an
    /// htmx search refreshes), it first waits a little for the page to
    /// change, so the wait does not end before the answer came; an answer
    /// identical to the page is accepted after [`SAME_PAGE_GRACE`].
    pub async fn click_and_wait(&self, css: &str, expected: &str) -> String {
        let before = self.text().await;
        self.click(css).await;
        if before.contains(expected) {
            let started = Instant::now();
            while started.elapsed() < SAME_PAGE_GRACE && self.text().await == before {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.wait_for_text(expected).await
    }

    /// Waits until the page's text contains `expected`; returns the text.
    pub async fn wait_for_text(&self, expected: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text().await;
            if text.contains(expected) {
                return text;
            }
            assert!(
                started.elapsed() < WAIT_MAX,
                "the page shows {expected:?}: at {}\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs axe-core in the page; panics on any serious or critical
    /// violation, naming the rule, its help and the elements.
    pub async fn assert_accessible(&self, page: &str) {
        let reply = self
            .command(
                reqwest::Method::POST,
                "/execute/async",
                json!({"script": format!("{AXE}\n;const done = arguments[arguments.length - 1]; \
                    axe.run(document, {{resultTypes: ['violations']}}).then(r => done(r.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}})))).catch(e => done({{error: String(e)}}));"),
                    "args": []}),
            )
            .await;
        assert!(reply.get("error").is_none(), "axe ran on {page}: {reply}");
        let serious: Vec<&Value> = reply
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "{page} has serious or critical accessibility violations: {serious:#?}"
        );
    }

    /// A screenshot of the page as PNG bytes.
    pub async fn screenshot(&self) -> Vec<u8> {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 screenshot"))
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        png
    }

    /// Saves a screenshot as `name` (e.g. `console/tree.png`): under
    /// target/screenshots/, or under docs/ when `CANOPY_UPDATE_SCREENSHOTS`
    /// is set, so a test run leaves the checkout as it found it.
    pub async fn save_screenshot(&self, name: &str) {
        let png = self.screenshot().await;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = if std::env::var_os("CANOPY_UPDATE_SCREENSHOTS").is_some() {
            root.join("docs").join(name)
        } else {
            root.join("target/screenshots").join(name)
        };
        std::fs::create_dir_all(out.parent().unwrap()).expect("the screenshot folder is made");
        // Both backends' runs write it: whole files only.
        let part = out.with_extension(format!("png.{}", std::process::id()));
        std::fs::write(&part, &png).expect("the screenshot is written");
        std::fs::rename(&part, &out).expect("the screenshot is written");
    }

    /// Resizes the window (a phone is 390 x 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    pub async fn stop(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
        let _ = self.driver.kill().await;
    }
}
