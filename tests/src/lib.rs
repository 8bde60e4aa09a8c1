//! The end-to-end test harness: a real Canopy server on port 0 with its own
//! fresh database (an SQLite file or a new PostgreSQL database), and a small
//! typed client. Every scenario runs on both backends through
//! [`both_backends!`].

pub mod browser;
pub mod campaigns;
pub mod console;
pub mod process;
pub mod resources;
pub mod sims;
pub mod traffic;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canopy::ops::Settings;
use canopy::server::{Config, Host};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use reqwest;
pub use serde_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server the PostgreSQL tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("CANOPY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("canopy.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let name = format!("canopy_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} is needed for the postgres tests: {e}")
                });
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            (format!("{base}/{name}"), None)
        }
    }
}

/// A decimal money string as integer millionths ("12.5" -> 12_500_000),
/// so tests compare money exactly.
pub fn micros(amount: &str) -> i64 {
    let (units, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    assert!(fraction.len() <= 6, "{amount} has more than 6 decimals");
    let units: i64 = units.parse().expect("decimal string");
    let fraction: i64 = format!("{fraction:0<6}").parse().expect("decimal string");
    units * 1_000_000
        + if units < 0 || amount.starts_with('-') {
            -fraction
        } else {
            fraction
        }
}

/// How to start a test server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub policies_dir: Option<PathBuf>,
    pub invitation_ttl: Option<Duration>,
    /// Reuse this database (for several hosts on one database).
    pub database_url: Option<String>,
    /// Deliver notifications to this SMTP server.
    pub smtp_url: Option<String>,
    /// The runtime of the shipped defaults.
    pub defaults_runtime: canopy::policy::DefaultsRuntime,
    /// Keep at most this many decisions per tree, purging every
    /// `purge_every`.
    pub decisions_max_per_tree: Option<i64>,
    pub purge_every: Option<Duration>,
    /// Close connections that take longer than this to send their headers.
    pub header_read_timeout: Option<Duration>,
    /// On shutdown, wait at most this long for connections to finish.
    pub shutdown_drain: Option<Duration>,
    /// Consecutive failures that open a policy's circuit (0: never).
    pub breaker_failures: Option<u32>,
    /// The compiled Wasm cache (default: a shared one for the tests).
    pub wasm_cache: Option<PathBuf>,
    /// Lower the sub-accounts one parent may hold (limit tests).
    pub subaccounts_max: Option<i64>,
    /// The first wait before a failed webhook delivery is retried.
    pub webhook_backoff_base: Option<Duration>,
    /// How long one webhook delivery attempt may take.
    pub webhook_attempt_timeout: Option<Duration>,
    /// Start a PostgreSQL host without [`TEST_DATA_KEY`].
    pub no_data_key: bool,
}

/// The data key test servers on PostgreSQL seal webhook secrets under (on
/// SQLite they make their own key file beside the database).
pub const TEST_DATA_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct TestApp {
    pub base: String,
    pub operator_token: String,
    pub database_url: String,
    pub backend: Backend,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

pub const OPERATOR_TOKEN: &str = "cop_test_operator_token_0123456789";

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    // Server logs go to the test's captured output (CANOPY_LOG=debug for more).
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CANOPY_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let (database_url, dir) = match &options.database_url {
        Some(url) => (url.clone(), None),
        None => fresh_database(backend).await,
    };
    let mut settings = Settings::default();
    if let Some(ttl) = options.invitation_ttl {
        settings.invitation_ttl = ttl;
    }
    if let Some(max) = options.decisions_max_per_tree {
        settings.decisions_max_per_tree = max;
    }
    if let Some(failures) = options.breaker_failures {
        settings.breaker_failures = failures;
    }
    if let Some(every) = options.purge_every {
        settings.purge_every = every;
    }
    if let Some(timeout) = options.header_read_timeout {
        settings.header_read_timeout = timeout;
    }
    if let Some(drain) = options.shutdown_drain {
        settings.shutdown_drain = drain;
    }
    if let Some(max) = options.subaccounts_max {
        settings.subaccounts_max = max;
    }
    if let Some(base) = options.webhook_backoff_base {
        settings.webhook_backoff_base = base;
    }
    if let Some(timeout) = options.webhook_attempt_timeout {
        settings.webhook_attempt_timeout = timeout;
    }
    if backend == Backend::Postgres && !options.no_data_key {
        settings.data_key = Some(canopy::secrets::DataKey::from_hex(TEST_DATA_KEY).unwrap());
    }
    let host = Host::open(Config {
        database_url: database_url.clone(),
        operator_token: Some(OPERATOR_TOKEN.into()),
        policies_dir: options.policies_dir.clone(),
        test_clock: true,
        settings,
        smtp: options
            .smtp_url
            .clone()
            .map(|url| canopy::ops::outbox::Smtp {
                url,
                from: "canopy@test.example".into(),
            }),
        defaults_runtime: options.defaults_runtime,
        wasm_cache: Some(options.wasm_cache.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("canopy-test-wasm-cache-{}", whoami()))
        })),
    })
    .await
    .expect("test server starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(host.run(listener, async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        operator_token: OPERATOR_TOKEN.into(),
        database_url,
        backend,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir.map(Arc::new),
    }
}

/// A response: status, JSON body (Null if none) and headers.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The problem's `code`, for error responses.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.code(), code, "unexpected code; body: {}", self.body);
        assert!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                == Some("application/problem+json"),
            "errors are problem+json"
        );
        assert!(
            !self.body["detail"].as_str().unwrap_or("").is_empty(),
            "a problem says what was wrong"
        );
        self.body
    }
}

/// A parent account made by the operator, with its admin's API key.
#[derive(Debug, Clone)]
pub struct Parent {
    pub id: String,
    pub key: String,
    pub admin_user_id: String,
    pub invitation: String,
}

/// A sub-account, with its invitation token when one was sent.
#[derive(Debug, Clone)]
pub struct Sub {
    pub id: String,
    pub invitation: Option<String>,
    pub body: Value,
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request_with(method, path, token, body, &[]).await
    }

    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("server answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    pub async fn op_post(&self, path: &str, body: Value) -> Reply {
        self.post(path, &self.operator_token.clone(), body).await
    }

    pub async fn op_patch(&self, path: &str, body: Value) -> Reply {
        self.patch(path, &self.operator_token.clone(), body).await
    }

    /// A prepaid parent at `domain` with sub-accounts enabled under `module`.
    pub async fn parent(&self, domain: &str, module: &str) -> Parent {
        self.parent_with(domain, module, json!({})).await
    }

    /// A parent like [`TestApp::parent`], with `overrides` merged into the
    /// creation body (billing type, prices, limits).
    pub async fn parent_with(&self, domain: &str, module: &str, overrides: Value) -> Parent {
        let mut request = json!({
            "name": format!("Parent {domain}"),
            "company_name": format!("{domain} Ltd"),
            "email": format!("billing@{domain}"),
            "billing_type": "prepaid",
            "currency": "USD",
            "prices": {"sms": "0.0075"},
            "channels": ["sms", "whatsapp"],
            "admin": {"email": format!("admin@{domain}"), "name": "Parent Admin"},
        });
        if let (Some(b), Some(o)) = (request.as_object_mut(), overrides.as_object()) {
            b.extend(o.clone());
        }
        let body = self
            .op_post("/v1/operator/accounts", request)
            .await
            .expect(201);
        let id = body["account"]["id"].as_str().unwrap().to_string();
        self.op_patch(
            &format!("/v1/operator/accounts/{id}"),
            json!({"subaccounts_enabled": true, "subaccount_module": module}),
        )
        .await
        .expect(200);
        Parent {
            id,
            key: body["api_key"]["secret"].as_str().unwrap().to_string(),
            admin_user_id: body["admin"]["id"].as_str().unwrap().to_string(),
            invitation: body["invitation"]["token"].as_str().unwrap().to_string(),
        }
    }

    /// Creates a sub-account; `extra` fields are merged into the body.
    pub async fn try_sub(&self, parent: &Parent, name: &str, email: &str, extra: Value) -> Reply {
        let mut body = json!({"name": name, "email": email});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post(
            &format!("/v1/accounts/{}/subaccounts", parent.id),
            &parent.key,
            body,
        )
        .await
    }

    pub async fn sub(&self, parent: &Parent, name: &str, email: &str) -> Sub {
        let body = self
            .try_sub(parent, name, email, json!({}))
            .await
            .expect(201);
        Sub {
            id: body["id"].as_str().unwrap().to_string(),
            invitation: body["invitation"]["token"].as_str().map(str::to_string),
            body,
        }
    }

    /// Accepts an invitation; returns the new API key's secret.
    pub async fn accept(&self, token: &str, name: &str, password: &str) -> String {
        let body = self
            .request(
                Method::POST,
                "/v1/invitations/accept",
                None,
                Some(json!({"token": token, "name": name, "password": password})),
            )
            .await
            .expect(200);
        body["api_key"]["secret"].as_str().unwrap().to_string()
    }

    /// Invites `email` with `role` into `account` and accepts: returns the key.
    pub async fn member(
        &self,
        inviter_key: &str,
        account: &str,
        email: &str,
        role: &str,
    ) -> String {
        let body = self
            .post(
                &format!("/v1/accounts/{account}/members"),
                inviter_key,
                json!({"email": email, "role": role}),
            )
            .await
            .expect(201);
        self.accept(
            body["invitation"]["token"].as_str().unwrap(),
            "Member",
            "correct horse battery",
        )
        .await
    }

    /// The operator's reconciliation check; panics unless balanced.
    pub async fn assert_ledger_balanced(&self) -> Value {
        let check = self
            .get("/v1/operator/ledger/check", &self.operator_token.clone())
            .await
            .expect(200);
        assert_eq!(check["balanced"], true, "ledger check: {check}");
        check
    }

    /// A field of `GET /v1/accounts/{id}/balance`.
    pub async fn money(&self, account: &str, key: &str, field: &str) -> String {
        let body = self
            .get(&format!("/v1/accounts/{account}/balance"), key)
            .await
            .expect(200);
        body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no `{field}` in {body}"))
            .to_string()
    }

    pub async fn send(&self, account: &str, key: &str) -> Reply {
        self.post(
            &format!("/v1/accounts/{account}/messages"),
            key,
            json!({"channel": "sms", "to": "+15550100", "body": "hello"}),
        )
        .await
    }

    pub async fn set_clock(&self, now: &str) {
        self.op_post("/v1/operator/clock", json!({"now": now}))
            .await
            .expect(200);
    }

    /// Stops the server, letting requests in flight finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A sub-account to insert directly into a test's database.
#[derive(Debug, Clone)]
pub struct RawSub {
    pub name: String,
    pub email: String,
    /// `invited` or `active`.
    pub status: &'static str,
}

impl TestApp {
    /// Inserts `subs` under `parent_id` in one transaction, through the
    /// store layer and not over HTTP: a tree of thousands is built in
    /// seconds. Each is an assigned-budget sub-account without budget,
    /// invitation or members (what the cascade and delete paths read).
    pub async fn insert_subaccounts(&self, parent_id: &str, subs: &[RawSub]) {
        use canopy::domain::{AccountKind, CreditMode, NameKey, Status};
        use canopy::store::{Store, accounts};
        let store = Store::connect(&self.database_url)
            .await
            .expect("the test's database opens");
        let mut tx = store.begin().await.expect("begin");
        for (i, s) in subs.iter().enumerate() {
            let new = accounts::NewAccount {
                id: canopy::secrets::new_id("acct"),
                kind: AccountKind::Subaccount,
                parent_id: Some(parent_id.to_string()),
                name_key: NameKey::of(&s.name).as_str().to_string(),
                name: s.name.clone(),
                email_key: NameKey::of(&s.email).as_str().to_string(),
                email: s.email.clone(),
                external_id: None,
                company_name: "Bulk Ltd".into(),
                status: Status::parse(s.status).expect("a status"),
                timezone: "UTC".into(),
                channels: vec!["sms".into()],
                billing_type: None,
                currency: None,
                region: None,
                prices: None,
                monthly_credit_limit: None,
                credit_mode: Some(CreditMode::AssignedBudget),
                monthly_usage_limit: None,
                low_balance_alert: None,
                now_us: i as i64,
            };
            accounts::insert(&mut tx, &new).await.expect("insert");
        }
        tx.commit().await.expect("commit");
        store.close().await;
    }

    /// Runs one query on the test's database and returns its rows as
    /// strings (NULL as `None`), for checks over thousands of rows.
    pub async fn query_rows(&self, sql: &str, bind: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.database_url)
            .await
            .expect("the test's database opens");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(bind)
            .fetch_all(&mut conn)
            .await
            .expect("query");
        rows.iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .or_else(|_| {
                                r.try_get::<Option<i64>, _>(i)
                                    .map(|v| v.map(|n| n.to_string()))
                            })
                            .expect("a text or integer column")
                    })
                    .collect()
            })
            .collect()
    }
}

/// A policy to upload: Rhai text or a Wasm component's bytes.
pub enum Code<'a> {
    Rhai(&'a str),
    Wasm(&'a [u8]),
}

/// A file of the repository, read at run time (`policies/...`, `tests/fixtures/...`).
pub fn repo_file(path: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A file of the repository as a path, for commands given files.
pub fn repo_path(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.join(path).display().to_string()
}

impl TestApp {
    /// Where a tree's (`Some(parent)`) or the platform's policies live, and
    /// the token that manages them.
    fn policy_home(&self, owner: Option<&Parent>) -> (String, String) {
        match owner {
            Some(p) => (format!("/v1/accounts/{}/policies", p.id), p.key.clone()),
            None => ("/v1/operator/policies".into(), self.operator_token.clone()),
        }
    }

    pub async fn upload_policy(
        &self,
        owner: Option<&Parent>,
        name: &str,
        hook: &str,
        code: Code<'_>,
    ) -> Reply {
        use base64::Engine as _;
        let (path, token) = self.policy_home(owner);
        let body = match code {
            Code::Rhai(source) => {
                json!({"name": name, "hook": hook, "runtime": "rhai", "source": source})
            }
            Code::Wasm(bytes) => json!({"name": name, "hook": hook, "runtime": "wasm",
                "module": base64::engine::general_purpose::STANDARD.encode(bytes)}),
        };
        self.post(&path, &token, body).await
    }

    /// Uploads and activates a policy; returns its id.
    pub async fn install_policy(
        &self,
        owner: Option<&Parent>,
        name: &str,
        hook: &str,
        code: Code<'_>,
        mode: &str,
    ) -> String {
        let up = self
            .upload_policy(owner, name, hook, code)
            .await
            .expect(201);
        let id = up["id"].as_str().unwrap().to_string();
        let version = up["version"].as_i64().unwrap();
        self.activate_policy(owner, &id, version, mode)
            .await
            .expect(200);
        id
    }

    pub async fn activate_policy(
        &self,
        owner: Option<&Parent>,
        id: &str,
        version: i64,
        mode: &str,
    ) -> Reply {
        let (path, token) = self.policy_home(owner);
        self.post(
            &format!("{path}/{id}/versions/{version}/activate"),
            &token,
            json!({"mode": mode}),
        )
        .await
    }

    pub async fn deactivate_policy(&self, owner: Option<&Parent>, id: &str) -> Reply {
        let (path, token) = self.policy_home(owner);
        self.post(&format!("{path}/{id}/deactivate"), &token, json!({}))
            .await
    }

    /// Polls the decision log at `path` (with its query) until one decision
    /// satisfies `wanted`; decisions are written in batches, off the
    /// request path.
    pub async fn await_decision(
        &self,
        path: &str,
        token: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.get(path, token).await.expect(200);
            if let Some(d) = page["data"]
                .as_array()
                .and_then(|a| a.iter().find(|d| wanted(d)))
            {
                return d.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no such decision at {path}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A minimal SMTP server that accepts every message and hands over each
/// message's recipients and text.
pub async fn fake_smtp() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(Vec<String>, String)>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let (mut rcpt, mut data, mut in_data) = (Vec::new(), String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            tx.send((std::mem::take(&mut rcpt), std::mem::take(&mut data)))
                                .ok();
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let upper = line.to_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 fake\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt.push(
                            line[8..]
                                .trim()
                                .trim_matches(|c| c == '<' || c == '>')
                                .to_string(),
                        );
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (url, rx)
}

/// The user running the tests, to keep their private directories apart.
fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "user".into())
}

/// Runs each scenario once on SQLite and once on PostgreSQL:
/// `mod name { sqlite, postgres }`. With `options = EXPR;` first, the
/// servers start with those [`Options`].
#[macro_export]
macro_rules! both_backends {
    (options = $options:expr; $(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn scenario($app: $crate::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    scenario($crate::spawn_app_with($crate::Backend::Sqlite, $options).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    scenario($crate::spawn_app_with($crate::Backend::Postgres, $options).await).await
                }
            }
        )*
    };
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn scenario($app: $crate::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    scenario($crate::spawn_app($crate::Backend::Sqlite).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    scenario($crate::spawn_app($crate::Backend::Postgres).await).await
                }
            }
        )*
    };
}
