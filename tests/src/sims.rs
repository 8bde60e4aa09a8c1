//! Helpers for tests of lines, SIMs and bulk operations: valid ICCIDs,
//! provisioning, following an operation to its end, and a small client for
//! servers started as processes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use crate::resources::iccids;

/// A client of a server that runs as a process (or any base URL).
#[derive(Clone)]
pub struct Remote {
    pub base: String,
    pub client: reqwest::Client,
}

impl Remote {
    pub fn new(base: &str) -> Remote {
        Remote {
            base: base.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends and returns the status and JSON body; `Err` if the server
    /// gave no answer (it died).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        // An empty token: no Authorization header (accepting an invitation).
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body), None)
            .await
            .expect("server answers")
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, token, Some(body), None)
            .await
            .expect("server answers")
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None, None)
            .await
            .expect("server answers")
    }
}

/// A tree made over HTTP: a parent with sub-accounts enabled and one active
/// sub-account whose admin accepted the invitation.
#[derive(Debug, Clone)]
pub struct Tree {
    pub parent: String,
    pub parent_key: String,
    pub sub: String,
    pub sub_key: String,
}

pub async fn tree(api: &Remote, operator: &str, domain: &str) -> Tree {
    let (status, created) = api
        .post(
            "/v1/operator/accounts",
            operator,
            json!({
                "name": format!("Fleet {domain}"), "company_name": "Fleet Ltd",
                "email": format!("billing@{domain}"), "billing_type": "prepaid",
                "currency": "USD", "prices": {"sms": "0.01"},
                "admin": {"email": format!("admin@{domain}"), "name": "Admin"}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let parent_key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let (status, body) = api
        .patch(
            &format!("/v1/operator/accounts/{parent}"),
            operator,
            json!({"subaccounts_enabled": true, "subaccount_module": "reseller"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (sub, sub_key) = sub_with_admin(
        api,
        &parent,
        &parent_key,
        "Trucks",
        &format!("trucks@{domain}"),
    )
    .await;
    Tree {
        parent,
        parent_key,
        sub,
        sub_key,
    }
}

/// A sub-account whose admin accepted the invitation (so it is `active`):
/// its id and that admin's API key.
pub async fn sub_with_admin(
    api: &Remote,
    parent: &str,
    parent_key: &str,
    name: &str,
    email: &str,
) -> (String, String) {
    let sub = invited_sub(api, parent, parent_key, name, email).await;
    let (status, accepted) = api
        .send(
            reqwest::Method::POST,
            "/v1/invitations/accept",
            "",
            Some(json!({
                "token": sub["invitation"]["token"], "name": format!("{name} Admin"),
                "password": "correct horse battery"
            })),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{accepted}");
    (
        sub["id"].as_str().unwrap().to_string(),
        accepted["api_key"]["secret"].as_str().unwrap().to_string(),
    )
}

/// A sub-account created with an invitation nobody accepted (`invited`).
pub async fn invited_sub(
    api: &Remote,
    parent: &str,
    parent_key: &str,
    name: &str,
    email: &str,
) -> Value {
    let (status, sub) = api
        .post(
            &format!("/v1/accounts/{parent}/subaccounts"),
            parent_key,
            json!({"name": name, "email": email}),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    sub
}

/// One integer a query on the test's database returns (`$1` = `bind`).
pub async fn count(database_url: &str, sql: &str, bind: &str) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url)
        .await
        .expect("the test's database opens");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(bind)
        .fetch_one(&mut conn)
        .await
        .expect("query");
    row.try_get::<i64, _>(0).expect("an integer")
}

/// Provisions SIMs into a parent's Available pool through the operator's
/// route, at most 10,000 per request.
pub async fn provision(api: &Remote, operator: &str, parent: &str, ids: &[String], tags: &[&str]) {
    for chunk in ids.chunks(10_000) {
        let (status, body) = api
            .post(
                &format!("/v1/operator/accounts/{parent}/resources"),
                operator,
                json!({"kind": "sim", "identifiers": chunk, "tags": tags}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Polls an operation until it is finished; returns every reading, the
/// last one finished.
pub async fn follow(
    api: &Remote,
    account: &str,
    key: &str,
    op_id: &str,
    within: Duration,
) -> Vec<Value> {
    let started = Instant::now();
    let mut readings = Vec::new();
    loop {
        let (status, op) = api
            .get(&format!("/v1/accounts/{account}/operations/{op_id}"), key)
            .await;
        assert_eq!(status, 200, "{op}");
        let finished = matches!(op["status"].as_str(), Some("completed" | "failed"));
        readings.push(op);
        if finished {
            return readings;
        }
        assert!(
            started.elapsed() < within,
            "operation {op_id} not finished within {within:?}: {}",
            readings.last().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that progress only ever grew and the end adds up.
pub fn assert_progress(readings: &[Value]) {
    let mut last = (0, 0);
    for r in readings {
        let now = (
            r["succeeded"].as_i64().unwrap(),
            r["failed"].as_i64().unwrap(),
        );
        assert!(
            now.0 >= last.0 && now.1 >= last.1,
            "progress went back: {r}"
        );
        assert!(now.0 + now.1 <= r["total"].as_i64().unwrap(), "{r}");
        last = now;
    }
    let end = readings.last().unwrap();
    assert_eq!(
        end["succeeded"].as_i64().unwrap() + end["failed"].as_i64().unwrap(),
        end["total"].as_i64().unwrap(),
        "{end}"
    );
    assert!(end["finished_at"].is_string(), "{end}");
}

/// Every resource `key` sees in `account` with the query `q`, all pages.
pub async fn resources(api: &Remote, account: &str, key: &str, q: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/accounts/{account}/resources?limit=1000&{q}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = api.get(&path, key).await;
        assert_eq!(status, 200, "{path}: {page}");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}
