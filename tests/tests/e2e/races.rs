//! Races between two requests, made certain with a pause point: one
//! request waits at a point of its own while the other commits.

use std::time::Duration;

use canopy_e2e::process::Server;
use canopy_e2e::{Backend, fresh_database};
use serde_json::{Value, json};

const TOKEN: &str = "cop_races_operator_token";

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// An invitation is accepted while the operator suspends the parent (and
/// with it the invited sub-account). Whichever commits first, the
/// acceptance is never lost: after the parent comes back, the sub-account
/// is active, as an accepted one must be.
async fn acceptance_racing_a_suspension(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let client = reqwest::Client::new();
    let server = Server::start_with(
        &url,
        Some(TOKEN),
        &["--test-clock"],
        &[(
            "CANOPY_TEST_PAUSE_AT",
            canopy::crashpoint::BEFORE_ACCEPTANCE_STATUS,
        )],
    );
    let base = server.base.clone();
    let (status, created) = post(
        &client,
        format!("{base}/v1/operator/accounts"),
        Some(TOKEN),
        json!({
            "name": "Acme", "company_name": "Acme", "email": "billing@acme.example",
            "billing_type": "prepaid", "currency": "USD", "prices": {"sms": "1.00"},
            "admin": {"email": "admin@acme.example", "name": "Admin"}
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let enabled = client
        .patch(format!("{base}/v1/operator/accounts/{parent}"))
        .bearer_auth(TOKEN)
        .json(&json!({"subaccounts_enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    let (status, sub) = post(
        &client,
        format!("{base}/v1/accounts/{parent}/subaccounts"),
        Some(&key),
        json!({"name": "Team", "email": "team@acme.example"}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let token = sub["invitation"]["token"].as_str().unwrap().to_string();

    let accept = |client: reqwest::Client, base: String, token: String| async move {
        post(
            &client,
            format!("{base}/v1/invitations/accept"),
            None,
            json!({"token": token, "name": "Mo", "password": "a long passphrase"}),
        )
        .await
    };
    let first = tokio::spawn(accept(client.clone(), base.clone(), token.clone()));
    // The acceptance waits at its pause point; suspend meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let suspend = || {
        post(
            &client,
            format!("{base}/v1/operator/accounts/{parent}/suspend"),
            Some(TOKEN),
            json!({}),
        )
    };
    let (suspended, refusal) = suspend().await;
    let (status, answer) = first.await.unwrap();
    // Either side may lose the race, and then says so with a 409 and
    // writes nothing.
    if suspended == 409 {
        assert_eq!(refusal["code"], "conflict", "{refusal}");
        assert_eq!(suspend().await.0, 200);
    } else {
        assert_eq!(suspended, 200, "{refusal}");
    }
    match status {
        200 => {}
        // The acceptance lost: the invitation still works.
        409 => {
            assert_eq!(answer["code"], "conflict", "{answer}");
            let (again, answer) = accept(client.clone(), base.clone(), token.clone()).await;
            assert_eq!(again, 200, "{answer}");
        }
        other => panic!("acceptance answered {other}: {answer}"),
    }
    let (status, _) = post(
        &client,
        format!("{base}/v1/operator/accounts/{parent}/unsuspend"),
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let listed: Value = client
        .get(format!("{base}/v1/operator/accounts/{parent}/subaccounts"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let team = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sub_id.as_str())
        .unwrap();
    assert_eq!(
        team["status"], "active",
        "an accepted sub-account comes back active: {team}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptance_racing_a_suspension_sqlite() {
    acceptance_racing_a_suspension(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptance_racing_a_suspension_postgres() {
    acceptance_racing_a_suspension(Backend::Postgres).await
}
