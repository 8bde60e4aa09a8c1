//! `canopy-campaigns`: a campaign's send rate next to the plain message
//! rate, measured in the same run on the same server (BENCHMARKS.md,
//! "Campaigns").
//!
//! A real server starts in-process on port 0 with a fresh database. One
//! funded sub-account sends charged messages through HTTP from `CLIENTS`
//! keep-alive clients for `SECONDS` (the plain rate); then campaigns of
//! `RECIPIENTS` recipients each are scheduled for now in the same account
//! and followed until they complete (the campaign rate: recipients charged
//! and recorded per second by the host's worker, from the first `sending`
//! reading to the last `completed`). The ledger check must be balanced at
//! the end, and every recipient charged exactly once.
//!
//! Usage: `cargo run --release -p canopy-bench --bin canopy-campaigns --
//! [sqlite|postgres] [CLIENTS] [SECONDS] [RECIPIENTS] [CAMPAIGNS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use canopy_e2e::campaigns::{assert_each_recipient_once, campaign, numbers};
use canopy_e2e::{Backend, spawn_app};
use serde_json::json;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str).unwrap_or("sqlite") {
        "postgres" => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let clients = arg(2, 16) as usize;
    let seconds = arg(3, 10);
    let recipients = arg(4, 10_000) as usize;
    let campaigns = arg(5, 3) as usize;

    let app = spawn_app(backend).await;
    let parent = app
        .parent_with(
            "campaigns.example",
            "enterprise",
            json!({"prices": {"sms": "0.0035"}}),
        )
        .await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": "100000000"}),
    )
    .await
    .expect(201);
    let sub = app
        .try_sub(
            &parent,
            "Load",
            "load@campaigns.example",
            json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "1000000"}}),
        )
        .await
        .expect(201);
    let sub = sub["id"].as_str().unwrap().to_string();

    // The plain rate: charged messages through HTTP on the same budget.
    let url = format!("{}/v1/accounts/{sub}/messages", app.base);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (url, key, stop) = (url.clone(), parent.key.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let body = json!({"channel": "sms", "to": format!("+1666{i:07}"), "body": "load"});
                let (mut ok, mut failed) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    match client.post(&url).bearer_auth(&key).json(&body).send().await {
                        Ok(r) if r.status().is_success() => ok += 1,
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut plain, mut plain_failed) = (0usize, 0usize);
    for t in tasks {
        let (ok, failed) = t.await.unwrap();
        plain += ok;
        plain_failed += failed;
    }
    let plain_rate = plain as f64 / started.elapsed().as_secs_f64();

    // The campaign rate: `campaigns` campaigns due now, sent by the worker.
    let now = chrono::Utc::now().to_rfc3339();
    let path = format!("/v1/accounts/{sub}/campaigns");
    let mut ids = Vec::new();
    for c in 0..campaigns {
        let body = campaign(
            &format!("Bench {c}"),
            &numbers((c * recipients) as u64, recipients),
            &now,
        );
        let created = app.post(&path, &parent.key, body).await.expect(201);
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let mut first_sending: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let listed = app
            .get(&format!("{path}?limit=1000"), &parent.key)
            .await
            .expect(200);
        let rows = listed["data"].as_array().unwrap();
        if first_sending.is_none() && rows.iter().any(|r| r["sent"].as_i64() > Some(0)) {
            first_sending = Some(Instant::now());
        }
        if rows.iter().all(|r| r["status"] == "completed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "campaigns did not complete: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = first_sending.unwrap().elapsed().as_secs_f64();
    let sent = campaigns * recipients;
    let campaign_rate = sent as f64 / took;
    for id in &ids {
        assert_each_recipient_once(&app.database_url, id, recipients as i64, true).await;
    }
    let check = app
        .get("/v1/operator/ledger/check", &app.operator_token.clone())
        .await
        .expect(200);
    assert_eq!(check["balanced"], true, "ledger after the run: {check}");
    println!(
        "backend: {backend:?}; plain: {clients} clients for {seconds} s; campaigns: {campaigns} x {recipients} recipients; ledger balanced, each recipient charged once"
    );
    println!("| measure | per second | messages | failed |");
    println!("|---|---|---|---|");
    println!(
        "| charged messages via HTTP, one budget, {clients} clients | {plain_rate:.0} | {plain} | {plain_failed} |"
    );
    println!(
        "| campaign recipients sent by the worker, same budget | {campaign_rate:.0} | {sent} | 0 |"
    );
    println!("ratio campaign / plain: {:.2}", campaign_rate / plain_rate);
    app.stop().await;
}
