//! Test helpers for traffic (API.md, "Traffic"): lines given to accounts,
//! sends from a line, inbound messages, analytics reports.

use serde_json::{Value, json};

use crate::resources::lines;
use crate::{Parent, Reply, TestApp};

impl TestApp {
    /// A postpaid parent (limit 10,000) with `prices`, sub-accounts under
    /// `module`.
    pub async fn traffic_parent(&self, domain: &str, module: &str, prices: Value) -> Parent {
        self.parent_with(
            domain,
            module,
            json!({"billing_type": "postpaid", "monthly_credit_limit": "10000", "prices": prices}),
        )
        .await
    }

    /// A shared-usage sub-account with no invitation, its e-mail at
    /// `domain` (the parent's, for enterprise trees); its id.
    pub async fn shared_sub(&self, parent: &Parent, domain: &str, name: &str) -> String {
        let email = format!("{}@{domain}", name.to_lowercase());
        let body = self
            .try_sub(
                parent,
                name,
                &email,
                json!({"invite": false, "credit": {"mode": "shared_usage"}}),
            )
            .await
            .expect(201);
        body["id"].as_str().unwrap().to_string()
    }

    /// Provisions `n` lines numbered from `start` into `parent`'s pool; the
    /// numbers.
    pub async fn traffic_lines(&self, parent: &Parent, start: u64, n: u64) -> Vec<String> {
        let numbers = lines("39", start, n);
        self.provision(parent, "line", &numbers, Value::Null).await;
        numbers
    }

    /// Moves the line `number` to `account` and waits for it.
    pub async fn give_line(&self, parent: &Parent, account: &str, number: &str) {
        let id = self
            .query_rows("SELECT id FROM resources WHERE identifier = $1", number)
            .await[0][0]
            .clone()
            .unwrap();
        let op = self.transfer(parent, account, &[id]).await;
        assert_eq!(op["status"], "completed", "{op}");
    }

    /// Sends `to` from the line `from` (or none).
    pub async fn send_from(&self, account: &str, key: &str, from: Option<&str>, to: &str) -> Reply {
        let mut body = json!({"channel": "sms", "to": to, "body": "hello"});
        if let Some(f) = from {
            body["from"] = json!(f);
        }
        self.post(&format!("/v1/accounts/{account}/messages"), key, body)
            .await
    }

    /// The carrier gateway posts a message from `from` to the line `to`.
    pub async fn inbound(&self, to: &str, from: &str) -> Reply {
        self.op_post(
            "/v1/operator/inbound",
            json!({"to": to, "from": from, "channel": "sms", "body": "reply"}),
        )
        .await
    }

    /// `GET /v1/accounts/{account}/analytics?{query}`.
    pub async fn analytics(&self, account: &str, key: &str, query: &str) -> Reply {
        self.get(&format!("/v1/accounts/{account}/analytics?{query}"), key)
            .await
    }
}

/// The counts of an analytics row, for comparing with hand counts:
/// (sent, received, new, outbound, responded, response_rate).
pub fn counts(row: &Value) -> (i64, i64, i64, i64, i64, String) {
    (
        row["sent"].as_i64().unwrap(),
        row["received"].as_i64().unwrap(),
        row["conversations_new"].as_i64().unwrap(),
        row["conversations_outbound"].as_i64().unwrap(),
        row["conversations_responded"].as_i64().unwrap(),
        row["response_rate"].as_str().unwrap().to_string(),
    )
}
