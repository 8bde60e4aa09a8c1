//! `canopy-load`: charged messages per second through HTTP, with the
//! shipped policies on, next to the storage's own limit measured in the same
//! run (single-row insert transactions on the same database, through the same
//! store, so with the same durability settings), so the figures can be read
//! as ratios on a noisy machine.
//!
//! Usage: `cargo run --release -p canopy-bench -- [sqlite|postgres] [CLIENTS] [SECONDS]`
//!
//! With `wrk` installed, every HTTP measure runs in `wrk` (its own process);
//! `CANOPY_LOAD_WRK=0` keeps the load in this process. The `/healthz` row is
//! the HTTP floor the other rows are read against.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use canopy_e2e::{Backend, TestApp, spawn_app};
use serde_json::json;
use wrk::Figures;

mod wrk;

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

    fn figures(mut self) -> Figures {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        Figures {
            per_second: self.completed as f64 / self.seconds,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            failed: self.failed as u64,
        }
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

/// One measure: `wrk` in its own process where it is installed, else
/// keep-alive reqwest clients in this process.
async fn measure(app: &TestApp, what: Measure<'_>, clients: usize, seconds: u64) -> Figures {
    let key = app_key(&what);
    if wrk::available() {
        let base = app.base.clone();
        let (paths, get): (Vec<String>, Option<(String, Option<String>)>) = match &what {
            Measure::Messages { accounts, .. } => (
                accounts
                    .iter()
                    .map(|a| format!("/v1/accounts/{a}/messages"))
                    .collect(),
                None,
            ),
            Measure::Get { path, key } => {
                (vec![], Some((path.to_string(), key.map(str::to_string))))
            }
        };
        return tokio::task::spawn_blocking(move || {
            let load = match &get {
                Some((path, key)) => wrk::Load::Get {
                    path,
                    key: key.as_deref(),
                },
                None => wrk::Load::Messages {
                    paths: &paths,
                    key: &key,
                },
            };
            wrk::run(&base, load, clients, seconds)
        })
        .await
        .unwrap();
    }
    let (urls, read_only) = match &what {
        Measure::Messages { accounts, .. } => (message_urls(app, accounts), false),
        Measure::Get { path, .. } => (vec![format!("{}{path}", app.base)], true),
    };
    load(urls, &key, clients, seconds, read_only)
        .await
        .figures()
}

enum Measure<'a> {
    Messages {
        accounts: &'a [String],
        key: &'a str,
    },
    Get {
        path: &'a str,
        key: Option<&'a str>,
    },
}

fn app_key(what: &Measure<'_>) -> String {
    match what {
        Measure::Messages { key, .. } => key.to_string(),
        Measure::Get { key, .. } => key.unwrap_or_default().to_string(),
    }
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
    let messages = |accounts| Measure::Messages {
        accounts,
        key: &key,
    };
    // Warm up connections, caches and the allocator.
    measure(&app, messages(&budgets), clients, 1).await;
    // The HTTP floor: no token, no query, no policy.
    eprintln!("measuring /healthz");
    let health = measure(
        &app,
        Measure::Get {
            path: "/healthz",
            key: None,
        },
        clients,
        seconds,
    )
    .await;
    let read_path = format!("/v1/accounts/{}", budgets[0]);
    eprintln!("measuring reads");
    let reads = measure(
        &app,
        Measure::Get {
            path: &read_path,
            key: Some(&key),
        },
        clients,
        seconds,
    )
    .await;
    eprintln!("measuring messages on one budget");
    let one = measure(&app, messages(&budgets[..1]), clients, seconds).await;
    eprintln!("measuring messages on a budget per client");
    let spread = measure(&app, messages(&budgets), clients, seconds).await;
    let check = app
        .get("/v1/operator/ledger/check", &app.operator_token.clone())
        .await
        .expect(200);
    assert_eq!(check["balanced"], true, "ledger after the run: {check}");
    let storage = storage_limit(&app.database_url, clients, seconds)
        .await
        .figures();
    println!(
        "backend: {backend:?}, clients: {clients}, seconds: {seconds}, load from {}; ledger balanced after the run",
        if wrk::available() {
            "wrk (its own process, 2 threads)"
        } else {
            "reqwest clients in this process"
        }
    );
    println!("| measure | per second | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|");
    println!("{}", health.row("`/healthz` via HTTP (the floor)"));
    println!("{}", reads.row("account reads via HTTP (no write)"));
    println!(
        "{}",
        one.row("charged messages via HTTP, all on one budget")
    );
    println!(
        "{}",
        spread.row("charged messages via HTTP, a budget per client")
    );
    println!(
        "{}",
        storage.row("storage: single-row insert transactions (in process)")
    );
    println!(
        "ratios: reads to /healthz {:.3}; messages to reads: one budget {:.2}, a budget per client {:.2}; message p99 to p50: one budget {:.1}, a budget per client {:.1}",
        reads.per_second / health.per_second,
        one.per_second / reads.per_second,
        spread.per_second / reads.per_second,
        one.p99_ms / one.p50_ms,
        spread.p99_ms / spread.p50_ms,
    );
    app.stop().await;
}
