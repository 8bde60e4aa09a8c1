//! `canopy-load`: charged messages per second through HTTP, with the
//! shipped policies on, next to the storage's own limit measured in the same
//! run (single-row insert transactions on the same database, through the same
//! store, so with the same durability settings), so the figures can be read
//! as ratios on a noisy machine.
//!
//! Usage: `cargo run --release -p canopy-bench -- [sqlite|postgres] [CLIENTS] [SECONDS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use canopy_e2e::{Backend, TestApp, spawn_app};
use serde_json::json;

/// Prepaid funds large enough that no send is refused during a run.
const FUNDS: &str = "100000000";
const BUDGET: &str = "1000000";

#[derive(Default)]
struct Run {
    completed: usize,
    failed: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Run {
    fn merge(&mut self, ok: usize, failed: usize, latencies: Vec<u64>) {
        self.completed += ok;
        self.failed += failed;
        self.latencies_us.extend(latencies);
    }

    fn row(&mut self, what: &str) -> String {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        format!(
            "| {what} | {:.0} | {:.2} | {:.2} | {} |",
            self.completed as f64 / self.seconds,
            pct(0.50),
            pct(0.99),
            self.failed
        )
    }

    fn per_second(&self) -> f64 {
        self.completed as f64 / self.seconds
    }
}

/// A funded parent and `budgets` sub-accounts with a budget each.
async fn setup(app: &TestApp, budgets: usize) -> (Vec<String>, String) {
    let parent = app
        .parent_with(
            "load.example",
            "enterprise",
            json!({"prices": {"sms": "0.0035"}}),
        )
        .await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": FUNDS}),
    )
    .await
    .expect(201);
    let mut subs = Vec::new();
    for i in 0..budgets {
        let sub = app
            .try_sub(
                &parent,
                &format!("Load {i}"),
                &format!("load{i}@load.example"),
                json!({
                    "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": BUDGET}
                }),
            )
            .await
            .expect(201);
        subs.push(sub["id"].as_str().unwrap().to_string());
    }
    (subs, parent.key)
}

/// `clients` keep-alive connections for `seconds`; client `i` uses
/// `urls[i % urls.len()]`, POSTing a message or GETting the URL.
async fn load(urls: Vec<String>, key: &str, clients: usize, seconds: u64, read_only: bool) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (url, key, stop) = (urls[i % urls.len()].clone(), key.to_string(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let body =
                    json!({"channel": "sms", "to": format!("+1555{i:07}"), "body": "load test"});
                let (mut ok, mut failed, mut latencies) = (0, 0, Vec::with_capacity(100_000));
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let request = if read_only {
                        client.get(&url).bearer_auth(&key)
                    } else {
                        client.post(&url).bearer_auth(&key).json(&body)
                    };
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {
                            ok += 1;
                            latencies.push(t.elapsed().as_micros() as u64);
                        }
                        _ => failed += 1,
                    }
                }
                (ok, failed, latencies)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut run = Run::default();
    for t in tasks {
        let (ok, failed, latencies) = t.await.unwrap();
        run.merge(ok, failed, latencies);
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

fn message_urls(app: &TestApp, accounts: &[String]) -> Vec<String> {
    accounts
        .iter()
        .map(|a| format!("{}/v1/accounts/{a}/messages", app.base))
        .collect()
}

/// The storage's own limit: single-row insert transactions from `clients`
/// tasks, through a store like the server's (same pools, same pragmas).
async fn storage_limit(database_url: &str, clients: usize, seconds: u64) -> Run {
    let store = canopy::store::Store::connect(database_url).await.unwrap();
    {
        let mut tx = store.begin().await.unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_inserts (id TEXT PRIMARY KEY, payload TEXT NOT NULL, at BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut latencies, mut n) = (0usize, Vec::with_capacity(100_000), 0i64);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let mut tx = store.begin().await.unwrap();
                    sqlx::query("INSERT INTO bench_inserts (id, payload, at) VALUES ($1, $2, $3)")
                        .bind(format!("{c}-{n}"))
                        .bind("a row about the size of a message")
                        .bind(n)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    n += 1;
                    ok += 1;
                    latencies.push(t.elapsed().as_micros() as u64);
                }
                (ok, latencies)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut run = Run::default();
    for t in tasks {
        let (ok, latencies) = t.await.unwrap();
        run.merge(ok, 0, latencies);
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str).unwrap_or("sqlite") {
        "postgres" => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    let app = spawn_app(backend).await;
    let (budgets, key) = setup(&app, clients).await;
    // Warm up connections, caches and the allocator.
    load(message_urls(&app, &budgets), &key, clients, 1, false).await;
    let mut one = load(
        message_urls(&app, &budgets[..1]),
        &key,
        clients,
        seconds,
        false,
    )
    .await;
    let mut spread = load(message_urls(&app, &budgets), &key, clients, seconds, false).await;
    let mut reads = load(
        vec![format!("{}/v1/accounts/{}", app.base, budgets[0])],
        &key,
        clients,
        seconds,
        true,
    )
    .await;
    let check = app
        .get("/v1/operator/ledger/check", &app.operator_token.clone())
        .await
        .expect(200);
    assert_eq!(check["balanced"], true, "ledger after the run: {check}");
    let mut storage = storage_limit(&app.database_url, clients, seconds).await;
    println!(
        "backend: {backend:?}, clients: {clients}, seconds: {seconds}; ledger balanced after the run"
    );
    println!("| measure | per second | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|");
    println!(
        "{}",
        one.row("charged messages via HTTP, all on one budget")
    );
    println!(
        "{}",
        spread.row("charged messages via HTTP, a budget per client")
    );
    println!("{}", reads.row("account reads via HTTP (no write)"));
    println!("{}", storage.row("storage: single-row insert transactions"));
    println!(
        "ratios to the storage limit: one budget {:.2}, a budget per client {:.2}",
        one.per_second() / storage.per_second(),
        spread.per_second() / storage.per_second()
    );
    app.stop().await;
}
