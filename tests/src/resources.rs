//! Lines and SIMs for tests: valid identifiers and provisioning.

use serde_json::{Value, json};

use crate::{Parent, TestApp};
use canopy::domain::resources::luhn_check_digit;

/// `n` E.164 numbers starting at `+{country}{start}` (10 digits after the
/// country code).
pub fn lines(country: &str, start: u64, n: u64) -> Vec<String> {
    (start..start + n)
        .map(|i| format!("+{country}{i:010}"))
        .collect()
}

/// `n` ICCIDs (19 digits, Luhn check digit) under the issuer prefix
/// `issuer` (digits), numbered from `start`.
pub fn iccids(issuer: &str, start: u64, n: u64) -> Vec<String> {
    (start..start + n)
        .map(|i| {
            let body = format!("{issuer}{i:0width$}", width = 18 - issuer.len());
            format!("{body}{}", luhn_check_digit(&body))
        })
        .collect()
}

impl TestApp {
    /// Provisions `identifiers` of `kind` into `parent`'s Available pool.
    pub async fn provision(
        &self,
        parent: &Parent,
        kind: &str,
        identifiers: &[String],
        tags: Value,
    ) -> Value {
        let mut body = json!({"kind": kind, "identifiers": identifiers});
        if !tags.is_null() {
            body["tags"] = tags;
        }
        self.op_post(
            &format!("/v1/operator/accounts/{}/resources", parent.id),
            body,
        )
        .await
        .expect(201)
    }

    /// Every resource `key` sees in `account` with the query `q` (all pages).
    pub async fn all_resources(&self, account: &str, key: &str, q: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/accounts/{account}/resources?limit=1000");
            if !q.is_empty() {
                path.push('&');
                path.push_str(q);
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path, key).await.expect(200);
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

impl TestApp {
    /// Polls an operation until it is `completed` or `failed` (at most a
    /// minute); its last state.
    pub async fn await_operation(&self, account: &str, key: &str, op_id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let op = self
                .get(&format!("/v1/accounts/{account}/operations/{op_id}"), key)
                .await
                .expect(200);
            if op["status"] == "completed" || op["status"] == "failed" {
                return op;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "operation {op_id} did not finish: {op}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Transfers `resource_ids` to `to` (a sub-account or "available") as
    /// the parent admin and waits for the operation.
    pub async fn transfer(&self, parent: &Parent, to: &str, resource_ids: &[String]) -> Value {
        let reply = self
            .post(
                &format!("/v1/accounts/{}/resource-transfers", parent.id),
                &parent.key,
                json!({"to": to, "resource_ids": resource_ids}),
            )
            .await
            .expect(202);
        let op = reply.get("operation").cloned().unwrap_or(reply);
        self.await_operation(&parent.id, &parent.key, op["id"].as_str().unwrap())
            .await
    }
}
