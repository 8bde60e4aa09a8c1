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

/// The keyed request that is cut: a charged message, or a top-up.
#[derive(Clone, Copy, PartialEq)]
enum Cut {
    Send,
    Topup,
}

async fn keyed(
    client: &reqwest::Client,
    base: &str,
    tree: &Tree,
    cut: Cut,
) -> Result<reqwest::Response, reqwest::Error> {
    let request = match cut {
        Cut::Send => client
            .post(format!("{base}/v1/accounts/{}/messages", tree.parent))
            .bearer_auth(&tree.key)
            .json(&json!({"channel": "sms", "to": "+15550100", "body": "once"})),
        Cut::Topup => client
            .post(format!(
                "{base}/v1/operator/accounts/{}/topups",
                tree.parent
            ))
            .bearer_auth(TOKEN)
            .json(&json!({"amount": "5"})),
    };
    request.header("Idempotency-Key", "cut-me").send().await
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

/// Kills the server at `point` during a keyed request, restarts it,
/// retries.
async fn cut_at(backend: Backend, cut: Cut, point: &str) {
    let (url, _dir) = fresh_database(backend).await;
    let client = reqwest::Client::new();
    let mut crashing = Server::start_with(
        &url,
        Some(TOKEN),
        &["--test-clock"],
        &[("CANOPY_TEST_CRASH_AT", point)],
    );
    let tree = tree(&client, &crashing.base).await;
    let first = keyed(&client, &crashing.base, &tree, cut).await;
    assert!(first.is_err(), "the request at {point} gets no answer");
    let status = crashing.child.wait().unwrap();
    assert!(!status.success(), "killed at {point}");

    let server = Server::start(&url, Some(TOKEN));
    let retry = keyed(&client, &server.base, &tree, cut).await.unwrap();
    assert_eq!(retry.status(), 201, "the retry after {point} answers");
    // Cut before the commit, the retry runs the request; after it, the
    // retry answers from what was committed.
    let replayed = retry.headers().get("idempotent-replayed").is_some();
    assert_eq!(replayed, point != BEFORE_EFFECT_COMMIT, "{point}");
    let answer: Value = retry.json().await.unwrap();
    let again = keyed(&client, &server.base, &tree, cut).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        answer,
        "the same answer"
    );

    let balance = get(
        &client,
        format!("{}/v1/accounts/{}/balance", server.base, tree.parent),
        &tree.key,
    )
    .await;
    let messages = get(
        &client,
        format!("{}/v1/accounts/{}/messages", server.base, tree.parent),
        &tree.key,
    )
    .await;
    let sent = messages["data"].as_array().unwrap().len();
    match cut {
        Cut::Send => {
            assert_eq!(answer["status"], "sent", "{answer}");
            assert_eq!(balance["balance"], "9.00", "charged once after {point}");
            assert_eq!(sent, 1, "{messages}");
        }
        Cut::Topup => {
            assert_eq!(answer["balance_after"], "15.00", "{answer}");
            assert_eq!(balance["balance"], "15.00", "topped up once after {point}");
            assert_eq!(sent, 0, "{messages}");
        }
    }
    let check = get(
        &client,
        format!("{}/v1/operator/ledger/check", server.base),
        TOKEN,
    )
    .await;
    assert_eq!(check["balanced"], true, "{check}");
}

macro_rules! cut_points {
    ($($name:ident => $cut:expr, $point:expr);*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                use super::*;
                cut_at(Backend::Sqlite, $cut, $point).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                use super::*;
                cut_at(Backend::Postgres, $cut, $point).await
            }
        }
    )*};
}

use canopy::crashpoint::{AFTER_ANSWER_STORED, AFTER_EFFECT_COMMIT, BEFORE_EFFECT_COMMIT};

cut_points!(
    send_killed_before_the_effect_commits => Cut::Send, BEFORE_EFFECT_COMMIT;
    send_killed_after_the_effect_committed => Cut::Send, AFTER_EFFECT_COMMIT;
    send_killed_after_the_answer_was_stored => Cut::Send, AFTER_ANSWER_STORED;
    topup_killed_after_the_effect_committed => Cut::Topup, AFTER_EFFECT_COMMIT;
    topup_killed_after_the_answer_was_stored => Cut::Topup, AFTER_ANSWER_STORED
);

/// Starts a send on a server paused at `BEFORE_SEND_WRITE`, and returns
/// once it waits there.
async fn paused_send(
    client: &reqwest::Client,
    base: &str,
    account: &str,
    key: &str,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = client
        .post(format!("{base}/v1/accounts/{account}/messages"))
        .bearer_auth(key)
        .json(&json!({"channel": "sms", "to": "+15550100", "body": "late"}));
    let send = tokio::spawn(async move { request.send().await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    send
}

/// A send that passed its checks before a suspension committed cannot
/// commit after it: the account's status is checked again inside the
/// send's own write.
async fn a_send_racing_a_suspension(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let client = reqwest::Client::new();
    let server = Server::start_with(
        &url,
        Some(TOKEN),
        &["--test-clock"],
        &[(
            "CANOPY_TEST_PAUSE_AT",
            canopy::crashpoint::BEFORE_SEND_WRITE,
        )],
    );
    let tree = tree(&client, &server.base).await;
    let base = server.base.clone();
    let send = paused_send(&client, &base, &tree.parent, &tree.key).await;
    // The send is waiting at its pause point; suspend meanwhile.
    let suspended = client
        .post(format!(
            "{base}/v1/operator/accounts/{}/suspend",
            tree.parent
        ))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(suspended.status(), 200);
    let reply = send.await.unwrap();
    assert_eq!(reply.status(), 403);
    let problem: Value = reply.json().await.unwrap();
    assert_eq!(problem["code"], "account_suspended", "{problem}");
    let balance = get(
        &client,
        format!("{base}/v1/operator/accounts/{}", tree.parent),
        TOKEN,
    )
    .await;
    assert_eq!(balance["status"], "suspended", "{balance}");
    let check = get(&client, format!("{base}/v1/operator/ledger/check"), TOKEN).await;
    assert_eq!(check["balanced"], true, "{check}");
    // Nothing was sent or charged: after reactivation the balance is the
    // top-up and there is no message.
    let unsuspended = client
        .post(format!(
            "{base}/v1/operator/accounts/{}/unsuspend",
            tree.parent
        ))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsuspended.status(), 200);
    let balance = get(
        &client,
        format!("{base}/v1/accounts/{}/balance", tree.parent),
        &tree.key,
    )
    .await;
    assert_eq!(balance["balance"], "10.00", "{balance}");
    let messages = get(
        &client,
        format!("{base}/v1/accounts/{}/messages", tree.parent),
        &tree.key,
    )
    .await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 0, "{messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_racing_a_suspension_sqlite() {
    a_send_racing_a_suspension(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_racing_a_suspension_postgres() {
    a_send_racing_a_suspension(Backend::Postgres).await
}

/// A send that passed its checks before the operator changed the tree's
/// currency cannot commit after it, in the old currency.
async fn a_send_racing_a_currency_change(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let client = reqwest::Client::new();
    let server = Server::start_with(
        &url,
        Some(TOKEN),
        &["--test-clock"],
        &[(
            "CANOPY_TEST_PAUSE_AT",
            canopy::crashpoint::BEFORE_SEND_WRITE,
        )],
    );
    let base = server.base.clone();
    let created: Value = client
        .post(format!("{base}/v1/operator/accounts"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "name": "Acme", "company_name": "Acme", "email": "billing@acme.example",
            "billing_type": "postpaid", "monthly_credit_limit": "100", "currency": "USD",
            "prices": {"sms": "1.00"}, "admin": {"email": "admin@acme.example", "name": "Admin"}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let send = paused_send(&client, &base, &parent, &key).await;
    let changed = client
        .patch(format!("{base}/v1/operator/accounts/{parent}"))
        .bearer_auth(TOKEN)
        .json(&json!({"currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let reply = send.await.unwrap();
    assert_eq!(reply.status(), 409);
    let problem: Value = reply.json().await.unwrap();
    assert_eq!(problem["code"], "conflict", "{problem}");
    let check = get(&client, format!("{base}/v1/operator/ledger/check"), TOKEN).await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(
        check["sums"].get("USD"),
        None,
        "no money moved in the old currency: {check}"
    );
    let messages = get(
        &client,
        format!("{base}/v1/accounts/{parent}/messages"),
        &key,
    )
    .await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 0, "{messages}");
    // In the new currency it sends.
    let again = client
        .post(format!("{base}/v1/accounts/{parent}/messages"))
        .bearer_auth(&key)
        .json(&json!({"channel": "sms", "to": "+15550100", "body": "now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap()["currency"], "EUR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_racing_a_currency_change_sqlite() {
    a_send_racing_a_currency_change(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_racing_a_currency_change_postgres() {
    a_send_racing_a_currency_change(Backend::Postgres).await
}
