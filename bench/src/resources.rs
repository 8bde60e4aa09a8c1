//! `canopy-resources`: how long a resource list takes at 1,000 and at
//! 100,000 lines and SIMs in one parent, next to an account read through
//! HTTP and a primary-key read through the store in the same run, so the
//! figures read as ratios on a noisy machine. A list should stay flat as
//! the tree grows (an index walk, never a scan).
//!
//! Usage: `cargo run --release -p canopy-bench --bin canopy-resources -- [sqlite|postgres] [REQUESTS]`

use std::time::Instant;

use canopy_e2e::resources::iccids;
use canopy_e2e::{Backend, Parent, TestApp, spawn_app};
use serde_json::json;

/// Resources per provisioning request (the API's maximum).
const BATCH: u64 = 10_000;

#[path = "latency.rs"]
mod latency;
use latency::{Latencies, time_gets};

/// A primary-key read through the store, sequentially.
async fn time_store_reads(app: &TestApp, id: &str, requests: usize) -> Latencies {
    let store = canopy::store::Store::connect(&app.database_url)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let mut c = store.reader().await.unwrap();
        sqlx::query("SELECT id, status FROM resources WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *c)
            .await
            .unwrap();
        drop(c);
        out.push(t.elapsed().as_micros() as u64);
    }
    out.sort_unstable();
    Latencies(out)
}

/// Fills `parent` up to `total` SIMs (tagged by batch) and reports the time.
async fn fill(app: &TestApp, parent: &Parent, from: u64, total: u64) {
    let t = Instant::now();
    let mut n = from;
    while n < total {
        let size = BATCH.min(total - n);
        let tag = format!("batch-{}", n / BATCH);
        app.provision(parent, "sim", &iccids("8944", n, size), json!([tag]))
            .await;
        n += size;
    }
    if total > from {
        eprintln!(
            "provisioned {} SIMs in {:.1} s ({:.0}/s)",
            total - from,
            t.elapsed().as_secs_f64(),
            (total - from) as f64 / t.elapsed().as_secs_f64()
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str).unwrap_or("sqlite") {
        "postgres" => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let requests: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let app = spawn_app(backend).await;
    let parent = app.parent("bench.example", "enterprise").await;
    let mut from = 0;
    println!("backend: {backend:?}, {requests} sequential requests per row");
    println!("| measure | p50 ms | p99 ms | p50 / account read |");
    println!("|---|---|---|---|");
    for total in [1_000u64, 100_000] {
        fill(&app, &parent, from, total).await;
        from = total;
        let first = app
            .get(
                &format!("/v1/accounts/{}/resources?limit=1", parent.id),
                &parent.key,
            )
            .await
            .expect(200);
        let some_id = first["data"][0]["id"].as_str().unwrap().to_string();
        // Let the writes settle (checkpoints, caches) before measuring.
        time_gets(
            &app,
            &parent.key,
            &format!("/v1/accounts/{}", parent.id),
            requests,
        )
        .await;
        let account = time_gets(
            &app,
            &parent.key,
            &format!("/v1/accounts/{}", parent.id),
            requests,
        )
        .await;
        let store = time_store_reads(&app, &some_id, requests).await;
        let reference = account.pct(0.5);
        println!(
            "{}",
            account.row(
                &format!("{total}: account read via HTTP (reference)"),
                reference
            )
        );
        println!(
            "{}",
            store.row(
                &format!("{total}: primary-key read through the store"),
                reference
            )
        );
        let base = format!("/v1/accounts/{}/resources", parent.id);
        // A page in the middle of the tree: its cursor.
        let mut cursor = None;
        let mut path = format!("{base}?limit=1000");
        for _ in 0..(total / 2000) {
            let page = app.get(&path, &parent.key).await.expect(200);
            cursor = page["next_cursor"].as_str().map(str::to_string);
            path = format!(
                "{base}?limit=1000&cursor={}",
                cursor.clone().unwrap_or_default()
            );
        }
        let mut rows = vec![
            ("first page of 50", format!("{base}?limit=50")),
            ("page of 50 by tag", format!("{base}?limit=50&tag=batch-0")),
            (
                "page of 50 by kind and status",
                format!("{base}?limit=50&kind=sim&status=inventory"),
            ),
            (
                "page of 50 by prefix",
                format!("{base}?limit=50&prefix=89440000000000"),
            ),
            ("page of 1000", format!("{base}?limit=1000")),
        ];
        if let Some(c) = cursor {
            rows.push((
                "page of 50 in the middle",
                format!("{base}?limit=50&cursor={c}"),
            ));
        }
        for (what, path) in rows {
            let l = time_gets(&app, &parent.key, &path, requests).await;
            println!("{}", l.row(&format!("{total}: {what}"), reference));
        }
    }
    app.stop().await;
}
