//! The `canopy` binary as a process: flags, start-up failures, SIGTERM, and
//! two hosts side by side on one PostgreSQL database.

use std::process::{Command, Stdio};
use std::time::Duration;

use canopy_e2e::process::{Server, canopy, free_port};
use canopy_e2e::{Backend, fresh_database, repo_path as repo};
use serde_json::{Value, json};

/// GET `url` with a bearer token; the JSON body.
async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Value {
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

/// POST `body` to `url` with a bearer token; the JSON body.
async fn post_json(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Value {
    client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs to completion and returns (exit code, stderr).
fn fails(cmd: &mut Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn a_bad_flag_is_one_line_and_non_zero() {
    let (code, err) = fails(&mut canopy(&["serve", "--no-such-flag"]));
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn an_unreachable_database_is_one_line_and_non_zero() {
    let port = free_port();
    let (code, err) = fails(&mut canopy(&[
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--database-url",
        &format!("postgres://nobody:secret@127.0.0.1:{port}/none"),
    ]));
    assert_ne!(code, 0);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("canopy:")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("cannot reach database"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is not printed: {err}"
    );
}

#[test]
fn a_busy_port_is_one_line_and_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let (code, err) = fails(&mut canopy(&[
        "serve",
        "--listen",
        &addr,
        "--database-url",
        &url,
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("cannot listen on"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_the_operator_token_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let server = Server::start(&url, None);
    let token = server.printed_token();
    assert!(token.starts_with("cop_"), "{}", server.stdout_first_line);
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{}/v1/operator/accounts", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let status = server.sigterm();
    assert!(status.success(), "{status}");
    assert!(
        dir.path().join("fresh.db").exists(),
        "the SQLite file is created"
    );

    // The second start keeps the stored token and prints none.
    let again = Server::start(&url, Some(""))
        .sigterm_after(|base| async move {
            let reply = reqwest::Client::new()
                .get(format!("{base}/v1/operator/accounts"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200);
        })
        .await;
    assert!(again.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_serve_one_postgres_database_side_by_side() {
    let (url, _) = fresh_database(Backend::Postgres).await;
    let token = "cop_shared_operator_token_for_both_hosts";
    let a = Server::start(&url, Some(token));
    let b = Server::start(&url, Some(token));
    let client = reqwest::Client::new();
    let post = |base: &str, path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let created: Value = post(&a.base, "/v1/operator/accounts", token, json!({
        "name": "Acme", "company_name": "Acme", "email": "billing@acme.example", "billing_type": "prepaid",
        "currency": "USD", "admin": {"email": "admin@acme.example", "name": "Admin"}
    })).await.unwrap().json().await.unwrap();
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let enabled = client
        .patch(format!("{}/v1/operator/accounts/{parent}", b.base))
        .bearer_auth(token)
        .json(&json!({"subaccounts_enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);

    // Both hosts create sub-accounts at once; the same name races to one winner.
    let path = format!("/v1/accounts/{parent}/subaccounts");
    let spawn = |base: &str, body: Value| {
        let request = client
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body);
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    };
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (first, second) = if i % 2 == 0 {
            (&a.base, &b.base)
        } else {
            (&b.base, &a.base)
        };
        tasks.push(spawn(
            first,
            json!({"name": format!("Team {i}"), "email": format!("t{i}@acme.example")}),
        ));
        tasks.push(spawn(
            second,
            json!({"name": "Contested", "email": format!("c{i}@acme.example")}),
        ));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        11,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
    let listed: Value = get_json(&client, &format!("{}{path}?limit=100", b.base), &key).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 11);
    assert!(a.sigterm().success());
    assert!(b.sigterm().success());
}

/// Sends messages from `clients` tasks until told to stop; counts 201s.
fn load(
    base: &str,
    account: &str,
    key: &str,
    clients: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..clients)
        .map(|_| {
            let url = format!("{base}/v1/accounts/{account}/messages");
            let (key, stop) = (key.to_string(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let reply = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&json!({"channel": "sms", "to": "+15550100", "body": "load"}))
                        .send()
                        .await;
                    match reply {
                        Ok(r) if r.status() == 201 => sent += 1,
                        Ok(_) => {}
                        Err(_) => break, // the server was killed
                    }
                }
                sent
            })
        })
        .collect()
}

async fn killed_mid_load_leaves_the_ledger_balanced(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let token = "cop_kill_test_operator_token";
    let server = Server::start(&url, Some(token));
    let client = reqwest::Client::new();
    let created: Value = post_json(&client, &format!("{}/v1/operator/accounts", server.base), token, &json!({
        "name": "Acme", "company_name": "Acme", "email": "billing@acme.example", "billing_type": "prepaid",
        "currency": "USD", "prices": {"sms": "0.0035"}, "admin": {"email": "admin@acme.example", "name": "Admin"}
    })).await;
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let op = |path: String, body: Value| {
        client
            .post(format!("{}{path}", server.base))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(
        op(
            format!("/v1/operator/accounts/{parent}/topups"),
            json!({"amount": "1000"})
        )
        .await
        .unwrap()
        .status(),
        201
    );
    client
        .patch(format!("{}/v1/operator/accounts/{parent}", server.base))
        .bearer_auth(token)
        .json(&json!({"subaccounts_enabled": true}))
        .send()
        .await
        .unwrap();
    let sub: Value = post_json(
        &client,
        &format!("{}/v1/accounts/{parent}/subaccounts", server.base),
        &key,
        &json!({
            "name": "Team", "email": "team@acme.example", "invite": false,
            "credit": {"mode": "assigned_budget", "initial_credit": "500"}
        }),
    )
    .await;
    let sub = sub["id"].as_str().unwrap().to_string();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = load(&server.base, &sub, &key, 8, stop.clone());
    tasks.extend(load(&server.base, &parent, &key, 4, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL, mid-load
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = 0;
    for t in tasks {
        acknowledged += t.await.unwrap();
    }
    assert!(acknowledged > 0, "the load ran before the kill");

    let restarted = Server::start(&url, Some(token));
    let check: Value = get_json(
        &client,
        &format!("{}/v1/operator/ledger/check", restarted.base),
        token,
    )
    .await;
    assert_eq!(check["balanced"], true, "{check}");
    // Every acknowledged message is stored and charged, and nothing else is.
    let budget: Value = get_json(
        &client,
        &format!("{}/v1/accounts/{sub}/balance", restarted.base),
        &key,
    )
    .await;
    let balance: Value = get_json(
        &client,
        &format!("{}/v1/accounts/{parent}/balance", restarted.base),
        &key,
    )
    .await;
    let spent = 1000.0
        - budget["budget"].as_str().unwrap().parse::<f64>().unwrap()
        - balance["balance"].as_str().unwrap().parse::<f64>().unwrap();
    let charged = (spent / 0.0035).round() as u64;
    assert!(
        charged >= acknowledged,
        "{charged} charged, {acknowledged} acknowledged"
    );
    assert!(
        charged <= acknowledged + 12,
        "at most one in flight per client was charged unacknowledged: {charged} vs {acknowledged}"
    );
    assert!(restarted.sigterm().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_load_sqlite() {
    killed_mid_load_leaves_the_ledger_balanced(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_load_postgres() {
    killed_mid_load_leaves_the_ledger_balanced(Backend::Postgres).await;
}

/// `canopy policy check` prints each decision with the time it took, for a
/// Rhai script and a Wasm component alike.
#[test]
fn policy_check_prints_decisions_and_times_in_both_runtimes() {
    for file in ["policies/authorize.rhai", "policies/authorize.wasm"] {
        let out = canopy(&["policy", "check", &repo(file), "--hook", "authorize"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let decisions: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
        assert!(
            decisions.len() >= 3,
            "{file}: one line per sample\n{stdout}"
        );
        assert!(
            decisions.iter().all(|l| l.ends_with(" us)")),
            "{file}: each with its time\n{stdout}"
        );
        assert!(stdout.contains(r#""decision":"deny""#), "{file}: {stdout}");
    }
}

#[test]
fn policy_check_fails_closed_on_hostile_input_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(&input, r#"{"target": {"name": "hostile:loop"}}"#).unwrap();
    let input = input.display().to_string();
    for file in ["tests/fixtures/hostile.wasm", "tests/fixtures/hostile.rhai"] {
        let out = canopy(&[
            "policy",
            "check",
            &repo(file),
            "--hook",
            "authorize",
            "--input",
            &input,
        ])
        .output()
        .unwrap();
        assert!(!out.status.success(), "{file}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("fails closed"), "{file}: {stdout}");
    }
    let broken = dir.path().join("broken.rhai");
    std::fs::write(&broken, "fn evaluate(hook, input) { let }").unwrap();
    let out = canopy(&[
        "policy",
        "check",
        &broken.display().to_string(),
        "--hook",
        "authorize",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("does not compile"), "{stderr}");
}
