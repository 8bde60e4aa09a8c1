//! Exactly once (invariant 7): a keyed send is cut by SIGKILL between each
//! of its writes, and the retry after the restart replays the committed
//! answer or runs once: never twice, never stuck. On both backends.

use canopy_e2e::process::Server;
use canopy_e2e::{Backend, fresh_database};
use serde_json::{Value, json};

const TOKEN: &str = "cop_exactly_once_operator_token";

struct Tree {
    parent: String,
    key: String,
}

async fn tree(client: &reqwest::Client, base: &str) -> Tree {
    let created: Value = client
        .post(format!("{base}/v1/operator/accounts"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "name": "Acme", "company_name": "Acme", "email": "billing@acme.example",
            "billing_type": "prepaid", "currency": "USD", "prices": {"sms": "1.00"},
            "admin": {"email": "admin@acme.example", "name": "Admin"}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let status = client
        .post(format!("{base}/v1/operator/accounts/{parent}/topups"))
        .bearer_auth(TOKEN)
        .json(&json!({"amount": "10"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    Tree {
        parent,
        key: created["api_key"]["secret"].as_str().unwrap().to_string(),
    }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    tree: &Tree,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("{base}/v1/accounts/{}/messages", tree.parent))
        .bearer_auth(&tree.key)
        .header("Idempotency-Key", "cut-me")
        .json(&json!({"channel": "sms", "to": "+15550100", "body": "once"}))
        .send()
        .await
}

async fn get(client: &reqwest::Client, url: String, token: &str) -> Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Kills the server at `point` during a keyed send, restarts it, retries.
async fn cut_at(backend: Backend, point: &str) {
    let (url, _dir) = fresh_database(backend).await;
    let client = reqwest::Client::new();
    let crashing = Server::start_with(
        &url,
        Some(TOKEN),
        &["--test-clock"],
        &[("CANOPY_TEST_CRASH_AT", point)],
    );
    let tree = tree(&client, &crashing.base).await;
    let cut = send(&client, &crashing.base, &tree).await;
    assert!(
        cut.is_err(),
        "the request at {point} gets no answer: {cut:?}"
    );
    let mut crashing = crashing;
    let status = crashing.child.wait().unwrap();
    assert!(!status.success(), "killed at {point}");

    let server = Server::start(&url, Some(TOKEN));
    let retry = send(&client, &server.base, &tree).await.unwrap();
    assert_eq!(retry.status(), 201, "the retry after {point} answers");
    let replayed = retry.headers().get("idempotent-replayed").is_some();
    let message: Value = retry.json().await.unwrap();
    assert_eq!(message["status"], "sent");
    // Cut before the commit, the retry runs the send; after it, the retry
    // answers from what was committed.
    assert_eq!(
        replayed,
        point != canopy::crashpoint::BEFORE_EFFECT_COMMIT,
        "{point}"
    );
    let again = send(&client, &server.base, &tree).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], message["id"]);

    let balance = get(
        &client,
        format!("{}/v1/accounts/{}/balance", server.base, tree.parent),
        &tree.key,
    )
    .await;
    assert_eq!(
        balance["balance"], "9.00",
        "charged exactly once after {point}"
    );
    let messages = get(
        &client,
        format!("{}/v1/accounts/{}/messages", server.base, tree.parent),
        &tree.key,
    )
    .await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 1, "{messages}");
    let check = get(
        &client,
        format!("{}/v1/operator/ledger/check", server.base),
        TOKEN,
    )
    .await;
    assert_eq!(check["balanced"], true, "{check}");
}

macro_rules! cut_points {
    ($($name:ident => $point:expr),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::cut_at(super::Backend::Sqlite, $point).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::cut_at(super::Backend::Postgres, $point).await
            }
        }
    )*};
}

cut_points!(
    killed_before_the_effect_commits => canopy::crashpoint::BEFORE_EFFECT_COMMIT,
    killed_after_the_effect_committed => canopy::crashpoint::AFTER_EFFECT_COMMIT,
    killed_after_the_answer_was_stored => canopy::crashpoint::AFTER_ANSWER_STORED
);
