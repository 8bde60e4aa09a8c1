//! `canopy-load`: charged messages per second through HTTP, with the
//! shipped policies on, next to the storage's own limit measured in the same
//! run (single-row insert transactions on the same database, with the same
//! durability settings), so the figures can be read as a ratio on a noisy
//! machine.
//!
//! Usage: `cargo run --release -p canopy-bench -- [sqlite|postgres] [CLIENTS] [SECONDS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use canopy_e2e::{Backend, TestApp, spawn_app};
use serde_json::json;

/// Prepaid funds large enough that no send is refused during a run.
const FUNDS: &str = "100000000";

struct Run {
    completed: usize,
    failed: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.completed as f64 / self.seconds
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
}

async fn setup(app: &TestApp) -> (String, String) {
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
    let sub = app
        .try_sub(
            &parent,
            "Load",
            "load@load.example",
            json!({
                "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "50000000"}
            }),
        )
        .await
        .expect(201);
    (sub["id"].as_str().unwrap().to_string(), parent.key)
}

/// `clients` keep-alive connections sending messages for `seconds`.
async fn messages(app: &TestApp, account: &str, key: &str, clients: usize, seconds: u64) -> Run {
    load(
        app,
        &format!("{}/v1/accounts/{account}/messages", app.base),
        key,
        clients,
        seconds,
        false,
    )
    .await
}

/// `clients` keep-alive connections reading the account for `seconds`:
/// everything a request costs but the write.
async fn reads(app: &TestApp, account: &str, key: &str, clients: usize, seconds: u64) -> Run {
    load(
        app,
        &format!("{}/v1/accounts/{account}", app.base),
        key,
        clients,
        seconds,
        true,
    )
    .await
}

async fn load(
    _app: &TestApp,
    url: &str,
    key: &str,
    clients: usize,
    seconds: u64,
    read_only: bool,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let url = url.to_string();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (url, key, stop) = (url.clone(), key.to_string(), stop.clone());
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
    let mut run = Run {
        completed: 0,
        failed: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (ok, failed, latencies) = t.await.unwrap();
        run.completed += ok;
        run.failed += failed;
        run.latencies_us.extend(latencies);
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

/// The storage's own limit: single-row insert transactions from `clients`
/// tasks, through the same store (same pools, same pragmas).
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
                let (mut ok, mut latencies) = (0usize, Vec::with_capacity(100_000));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let mut tx = store.begin().await.unwrap();
                    sqlx::query("INSERT INTO bench_inserts (id, payload, at) VALUES ($1, $2, $3)")
                        .bind(format!("{c}-{n}"))
                        .bind("a row about the size of a message")
                        .bind(n as i64)
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
    let mut run = Run {
        completed: 0,
        failed: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (ok, latencies) = t.await.unwrap();
        run.completed += ok;
        run.latencies_us.extend(latencies);
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
    let (account, key) = setup(&app).await;
    // Warm up connections, caches and the allocator.
    messages(&app, &account, &key, clients, 1).await;
    let mut http = messages(&app, &account, &key, clients, seconds).await;
    let check = app
        .get("/v1/operator/ledger/check", &app.operator_token.clone())
        .await
        .expect(200);
    assert_eq!(check["balanced"], true, "ledger after the run: {check}");
    let mut read = reads(&app, &account, &key, clients, seconds).await;
    let mut storage = storage_limit(&app.database_url, clients, seconds).await;
    println!("backend: {backend:?}, clients: {clients}, seconds: {seconds}");
    println!("| measure | per second | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|");
    println!(
        "| charged messages via HTTP | {:.0} | {:.2} | {:.2} | {} |",
        http.per_second(),
        http.percentile_ms(0.50),
        http.percentile_ms(0.99),
        http.failed
    );
    println!(
        "| account reads via HTTP (no write) | {:.0} | {:.2} | {:.2} | {} |",
        read.per_second(),
        read.percentile_ms(0.50),
        read.percentile_ms(0.99),
        read.failed
    );
    println!(
        "| storage: single-row insert transactions | {:.0} | {:.2} | {:.2} | 0 |",
        storage.per_second(),
        storage.percentile_ms(0.50),
        storage.percentile_ms(0.99)
    );
    println!(
        "ratio messages/storage: {:.2}",
        http.per_second() / storage.per_second()
    );
    app.stop().await;
}
