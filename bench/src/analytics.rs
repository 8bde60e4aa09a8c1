//! `canopy-analytics`: analytics latency for a parent with 1,000
//! sub-accounts and about 1,000,000 messages, next to an account read
//! through HTTP in the same run (so the figures read as ratios on a noisy
//! machine).
//!
//! The tables are filled directly with SQL, to the state that recording the
//! messages would leave (the messages themselves, and the counter rows that
//! `store::conversations::keep_steps` keeps per account and day and month),
//! because sending a million charged messages through HTTP takes minutes
//! that measure the send path, not the report. Each sub-account holds one
//! line and 200 conversations; each day of December 2031 it sends 20
//! messages and gets 13 replies: 1,000 x 31 x 33 = 1,023,000 messages.
//!
//! Usage: `cargo run --release -p canopy-bench --bin canopy-analytics -- [sqlite|postgres] [REQUESTS]`

use std::time::Instant;

use canopy_e2e::{Backend, RawSub, TestApp, spawn_app};
use serde_json::json;
use sqlx::{Connection, Row};

const SUBACCOUNTS: usize = 1_000;
const DAYS: u32 = 31;
const SENT_PER_DAY: i64 = 20;
const RECEIVED_PER_DAY: i64 = 13;
const CONVERSATIONS: i64 = 200;
const PRICE_MICROS: i64 = 1_000;

#[path = "latency.rs"]
mod latency;
use latency::time_gets;

async fn exec(conn: &mut sqlx::AnyConnection, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .expect("fill");
}

/// The messages and counters of the model above, for every sub-account.
async fn fill(app: &TestApp, parent_id: &str) {
    let t = Instant::now();
    let mut conn = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let subs: Vec<String> = sqlx::query("SELECT id FROM accounts WHERE parent_id = $1 ORDER BY id")
        .bind(parent_id)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let start_us = 1_953_849_600_000_000i64; // 2031-12-01T00:00:00Z
    let per_day = SENT_PER_DAY + RECEIVED_PER_DAY;
    exec(&mut conn, "BEGIN".into()).await;
    // Messages: one INSERT ... SELECT per sub-account over a numbers table.
    exec(
        &mut conn,
        "CREATE TEMPORARY TABLE bench_numbers (n BIGINT PRIMARY KEY)".into(),
    )
    .await;
    let total = per_day * DAYS as i64;
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk.iter().map(|n| format!("({n})")).collect();
        exec(
            &mut conn,
            format!("INSERT INTO bench_numbers (n) VALUES {}", values.join(",")),
        )
        .await;
    }
    for (i, sub) in subs.iter().enumerate() {
        exec(&mut conn, format!(
            "INSERT INTO messages (id, account_id, user_id, direction, channel, line, remote, body, status,
                                   price_micros, currency, created_at)
             SELECT 'msg_b{i}_' || n, '{sub}', NULL,
                    CASE WHEN n % {per_day} < {SENT_PER_DAY} THEN 'outbound' ELSE 'inbound' END, 'sms', '+39{i:010}',
                    '+1555' || (((n / {per_day}) * {SENT_PER_DAY} + (n % {per_day}) % {SENT_PER_DAY}) % {CONVERSATIONS}), 'hello',
                    CASE WHEN n % {per_day} < {SENT_PER_DAY} THEN 'sent' ELSE 'received' END,
                    CASE WHEN n % {per_day} < {SENT_PER_DAY} THEN {PRICE_MICROS} ELSE 0 END, 'USD',
                    {start_us} + (n / {per_day}) * 86400000000 + (n % {per_day}) * 60000000
             FROM bench_numbers"
        )).await;
    }
    // Counters: per sub-account and day, and per month.
    let mut rows = Vec::new();
    for sub in &subs {
        for d in 0..DAYS {
            let new = if (d as i64) * SENT_PER_DAY < CONVERSATIONS {
                SENT_PER_DAY
            } else {
                0
            };
            rows.push(format!(
                "('{parent_id}', '{sub}', '', 'day', '2031-12-{:02}', {SENT_PER_DAY}, {RECEIVED_PER_DAY}, {new}, {SENT_PER_DAY}, {RECEIVED_PER_DAY}, {})",
                d + 1,
                SENT_PER_DAY * PRICE_MICROS
            ));
        }
        rows.push(format!(
            "('{parent_id}', '{sub}', '', 'month', '2031-12', {}, {}, {CONVERSATIONS}, {CONVERSATIONS}, 130, {})",
            SENT_PER_DAY * DAYS as i64,
            RECEIVED_PER_DAY * DAYS as i64,
            SENT_PER_DAY * DAYS as i64 * PRICE_MICROS
        ));
    }
    // The tree's own rows (`store::conversations::TREE_ROWS`): the sums.
    let n = SUBACCOUNTS as i64;
    for d in 0..DAYS {
        let new = if (d as i64) * SENT_PER_DAY < CONVERSATIONS {
            SENT_PER_DAY
        } else {
            0
        };
        rows.push(format!(
            "('{parent_id}', '{parent_id}', '~tree', 'day', '2031-12-{:02}', {}, {}, {}, {}, {}, {})",
            d + 1,
            SENT_PER_DAY * n,
            RECEIVED_PER_DAY * n,
            new * n,
            SENT_PER_DAY * n,
            RECEIVED_PER_DAY * n,
            SENT_PER_DAY * PRICE_MICROS * n
        ));
    }
    rows.push(format!(
        "('{parent_id}', '{parent_id}', '~tree', 'month', '2031-12', {}, {}, {}, {}, {}, {})",
        SENT_PER_DAY * DAYS as i64 * n,
        RECEIVED_PER_DAY * DAYS as i64 * n,
        CONVERSATIONS * n,
        CONVERSATIONS * n,
        130 * n,
        SENT_PER_DAY * DAYS as i64 * PRICE_MICROS * n
    ));
    for chunk in rows.chunks(500) {
        exec(&mut conn, format!(
            "INSERT INTO traffic_counters (tree_id, account_id, user_id, granularity, period, sent, received,
                 conversations_new, conversations_outbound, conversations_responded, spend_micros) VALUES {}",
            chunk.join(",")
        )).await;
    }
    exec(&mut conn, "COMMIT".into()).await;
    // Statistics, as a database that grew by itself would have them.
    exec(&mut conn, "ANALYZE".into()).await;
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "filled {count} messages and {} counter rows in {:.1} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str).unwrap_or("sqlite") {
        "postgres" => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let requests: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let app = spawn_app(backend).await;
    let parent = app
        .parent_with(
            "bench.example",
            "enterprise",
            json!({"prices": {"sms": "0.001"}}),
        )
        .await;
    let subs: Vec<RawSub> = (0..SUBACCOUNTS)
        .map(|i| RawSub {
            name: format!("Sub {i:04}"),
            email: format!("sub{i}@bench.example"),
            status: "active",
        })
        .collect();
    app.insert_subaccounts(&parent.id, &subs).await;
    fill(&app, &parent.id).await;
    let any_sub = app
        .get(
            &format!("/v1/accounts/{}/subaccounts?limit=1", parent.id),
            &parent.key,
        )
        .await
        .expect(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Check the report against the model once.
    let tree = app
        .get(
            &format!(
                "/v1/accounts/{}/analytics?from=2031-12-01&to=2031-12-31",
                parent.id
            ),
            &parent.key,
        )
        .await
        .expect(200);
    assert_eq!(
        tree["totals"]["sent"],
        SENT_PER_DAY * DAYS as i64 * SUBACCOUNTS as i64,
        "{}",
        tree["totals"]
    );
    println!(
        "backend: {backend:?}, {SUBACCOUNTS} sub-accounts, {requests} sequential requests per row"
    );
    println!("| measure | p50 ms | p99 ms | p50 / account read |");
    println!("|---|---|---|---|");
    let account_path = format!("/v1/accounts/{}", parent.id);
    time_gets(&app, &parent.key, &account_path, requests).await;
    let account = time_gets(&app, &parent.key, &account_path, requests).await;
    let reference = account.pct(0.5);
    println!(
        "{}",
        account.row("account read via HTTP (reference)", reference)
    );
    let base = format!("/v1/accounts/{}/analytics", parent.id);
    let rows = [
        (
            "tree by day, 31 days",
            format!("{base}?from=2031-12-01&to=2031-12-31"),
        ),
        (
            "tree by month, 1 month",
            format!("{base}?from=2031-12&to=2031-12&granularity=month"),
        ),
        (
            "tree by day, 7 days",
            format!("{base}?from=2031-12-01&to=2031-12-07"),
        ),
        (
            "by sub-account, 31 days by day, page of 100",
            format!("{base}?from=2031-12-01&to=2031-12-31&by=subaccount"),
        ),
        (
            "by sub-account, 31 days by day, page of 1000",
            format!("{base}?from=2031-12-01&to=2031-12-31&by=subaccount&limit=1000"),
        ),
        (
            "by sub-account, 1 month by month, page of 1000",
            format!("{base}?from=2031-12&to=2031-12&granularity=month&by=subaccount&limit=1000"),
        ),
        (
            "one sub-account by day, 31 days",
            format!("/v1/accounts/{any_sub}/analytics?from=2031-12-01&to=2031-12-31"),
        ),
    ];
    for (what, path) in rows {
        let l = time_gets(&app, &parent.key, &path, requests).await;
        println!("{}", l.row(what, reference));
    }
    app.stop().await;
}
