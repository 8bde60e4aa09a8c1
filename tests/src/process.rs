//! The `canopy` binary as a process, for tests that start, signal and kill
//! real servers.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary built beside this test (`cargo build -p canopy` first; the
/// README's test command does).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("canopy");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p canopy` before the tests",
        bin.display()
    );
    bin
}

pub fn canopy(args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_remove("CANOPY_OPERATOR_TOKEN")
        .env_remove("CANOPY_DATABASE_URL")
        .env_remove("CANOPY_LISTEN");
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stdout_first_line: String,
}

impl Server {
    pub fn start(url: &str, token: Option<&str>) -> Server {
        Server::start_with(url, token, &[], &[])
    }

    /// Starts with extra flags and environment variables.
    pub fn start_with(
        url: &str,
        token: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let mut cmd = canopy(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
        ]);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(t) = token {
            cmd.env("CANOPY_OPERATOR_TOKEN", t);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("server exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stdout_first_line = if token.is_none() {
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            line
        } else {
            String::new()
        };
        Server {
            child,
            base,
            stdout_first_line,
        }
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_the_operator_token_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let server = Server::start(&url, None);
    let token = server
        .stdout_first_line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim()
        .to_string();
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

impl Server {
    pub async fn sigterm_after<F, Fut>(self, f: F) -> std::process::ExitStatus
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        f(self.base.clone()).await;
        self.sigterm()
    }
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
