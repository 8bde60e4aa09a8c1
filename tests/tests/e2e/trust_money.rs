//! Money under attack: a postpaid month across its boundary, and
//! Idempotency-Keys (scope, secrets, parallel twins), on both backends.

use canopy_e2e::{Parent, TestApp, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

/// A postpaid parent with a monthly credit limit of `limit`.
async fn postpaid(app: &TestApp, limit: &str) -> Parent {
    app.parent_with(
        "acme.example",
        "enterprise",
        json!({"billing_type": "postpaid", "monthly_credit_limit": limit, "prices": {"sms": "1.00"}}),
    )
    .await
}

async fn budget_sub(app: &TestApp, parent: &Parent, name: &str, initial: &str) -> String {
    app.try_sub(
        parent,
        name,
        &format!("{}@acme.example", name.to_lowercase()),
        json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": initial}}),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn move_budget(app: &TestApp, parent: &Parent, sub: &str, amount: &str) -> u16 {
    app.post(
        &format!("/v1/accounts/{sub}/budget"),
        &parent.key,
        json!({"amount": amount}),
    )
    .await
    .status
    .as_u16()
}

/// Budget moves in parallel; the statuses.
async fn parallel_moves(app: &TestApp, parent: &Parent, moves: &[(String, &str)]) -> Vec<u16> {
    let mut tasks = Vec::new();
    for (sub, amount) in moves {
        let request = reqwest::Client::new()
            .post(format!("{}/v1/accounts/{sub}/budget", app.base))
            .bearer_auth(&parent.key)
            .json(&json!({"amount": amount}));
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn balance(app: &TestApp, parent: &Parent) -> Value {
    app.get(&format!("/v1/accounts/{}/balance", parent.id), &parent.key)
        .await
        .expect(200)
}

/// Sends with an Idempotency-Key; the reply.
async fn keyed_send(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &str,
) -> canopy_e2e::Reply {
    app.request_with(
        Method::POST,
        path,
        Some(token),
        Some(json!({"channel": "sms", "to": "+15550100", "body": body})),
        &[("Idempotency-Key", key)],
    )
    .await
}

both_backends! {
    async fn a_budget_returned_next_month_does_not_reopen_the_credit_limit(app) {
        app.set_clock("2031-03-15T12:00:00Z").await;
        let parent = postpaid(&app, "1000").await;
        let sub = budget_sub(&app, &parent, "Team", "1000").await;
        assert_eq!(balance(&app, &parent).await["available_credit"], "0.00");
        app.set_clock("2031-04-10T12:00:00Z").await;
        assert_eq!(move_budget(&app, &parent, &sub, "-1000").await, 201);
        let b = balance(&app, &parent).await;
        assert_eq!(b["available_credit"], "1000.00", "{b}");
        assert_eq!(b["returned_this_month"], "1000.00", "{b}");
        assert_eq!(b["spent_this_month"], "0.00", "{b}");
        // What the view shows is what the store allows: not a cent more.
        app.post(&format!("/v1/accounts/{sub}/budget"), &parent.key, json!({"amount": "2000"}))
            .await
            .expect_problem(402, "insufficient_funds");
        assert_eq!(move_budget(&app, &parent, &sub, "1000").await, 201);
        assert_eq!(move_budget(&app, &parent, &sub, "0.01").await, 402);
        // A return of this month's allocation gives this month's credit back.
        assert_eq!(move_budget(&app, &parent, &sub, "-400").await, 201);
        assert_eq!(balance(&app, &parent).await["available_credit"], "400.00");
        assert_eq!(move_budget(&app, &parent, &sub, "400.01").await, 402);
        app.assert_ledger_balanced().await;
    }

    async fn parallel_returns_and_allocations_across_a_month_boundary(app) {
        app.set_clock("2031-03-20T12:00:00Z").await;
        let parent = postpaid(&app, "100").await;
        let mut subs = Vec::new();
        for i in 0..10 {
            subs.push(budget_sub(&app, &parent, &format!("Team{i}"), "10").await);
        }
        app.set_clock("2031-04-02T08:00:00Z").await;
        // Last month's budget comes back, all at once: no credit this month.
        let returns: Vec<(String, &str)> = subs.iter().map(|s| (s.clone(), "-10")).collect();
        assert_eq!(count(&parallel_moves(&app, &parent, &returns).await, 201), 10);
        assert_eq!(balance(&app, &parent).await["available_credit"], "100.00");
        // Twenty allocations of 10 race for a limit of 100: exactly ten fit.
        let allocations: Vec<(String, &str)> =
            subs.iter().chain(subs.iter()).map(|s| (s.clone(), "10")).collect();
        let statuses = parallel_moves(&app, &parent, &allocations).await;
        assert_eq!(count(&statuses, 201), 10, "{statuses:?}");
        assert_eq!(count(&statuses, 402), 10, "{statuses:?}");
        // Returns of this month's budget race allocations: an allocation
        // only ever uses credit a return gave back first.
        let mut mixed: Vec<(String, &str)> = Vec::new();
        for s in &subs {
            mixed.push((s.clone(), "-10"));
            mixed.push((s.clone(), "10"));
        }
        let statuses = parallel_moves(&app, &parent, &mixed).await;
        let (returned, allocated) = statuses.chunks(2).fold((0, 0), |(r, a), pair| {
            (r + usize::from(pair[0] == 201), a + usize::from(pair[1] == 201))
        });
        assert!(allocated <= returned, "{allocated} allocations used credit only {returned} returns gave back");
        let b = balance(&app, &parent).await;
        let spent = 100 - 10 * returned + 10 * allocated;
        assert_eq!(b["spent_this_month"], format!("{spent}.00"), "{b}");
        assert_eq!(b["available_credit"], format!("{}.00", 100 - spent), "{b}");
        // The view and the store agree at the edge.
        let available = b["available_credit"].as_str().unwrap().to_string();
        if available != "0.00" {
            assert_eq!(move_budget(&app, &parent, &subs[0], &available).await, 201);
        }
        assert_eq!(move_budget(&app, &parent, &subs[0], "0.01").await, 402);
        app.assert_ledger_balanced().await;
    }

    async fn a_strangers_request_never_blocks_the_owners_key(app) {
        let a = app.parent_with("a.example", "enterprise", json!({"prices": {"sms": "1.00"}})).await;
        let b = app.parent("b.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", a.id), json!({"amount": "10"})).await.expect(201);
        let path = format!("/v1/accounts/{}/messages", a.id);
        keyed_send(&app, &path, &b.key, "k-1", "hi").await.expect_problem(404, "not_found");
        keyed_send(&app, &path, &a.key, "k-1", "hi").await.expect(201);
        assert_eq!(app.money(&a.id, &a.key, "balance").await, "9.00");
    }

    async fn a_percent_encoded_path_is_the_same_request(app) {
        let a = app.parent_with("a.example", "enterprise", json!({"prices": {"sms": "1.00"}})).await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", a.id), json!({"amount": "10"})).await.expect(201);
        let plain = format!("/v1/accounts/{}/messages", a.id);
        let encoded = format!("/v1/accounts/{}/messages", a.id.replace('_', "%5F"));
        let first = keyed_send(&app, &plain, &a.key, "k-2", "once").await.expect(201);
        let again = keyed_send(&app, &encoded, &a.key, "k-2", "once").await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(again.expect(201), first);
        assert_eq!(app.money(&a.id, &a.key, "balance").await, "9.00", "charged once");
    }

    async fn parallel_twins_with_one_key_charge_once(app) {
        let a = app.parent_with("a.example", "enterprise", json!({"prices": {"sms": "1.00"}})).await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", a.id), json!({"amount": "100"})).await.expect(201);
        let url = format!("{}/v1/accounts/{}/messages", app.base, a.id);
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let request = reqwest::Client::new()
                .post(&url)
                .bearer_auth(&a.key)
                .header("Idempotency-Key", "twin")
                .json(&json!({"channel": "sms", "to": "+15550100", "body": "twin"}));
            tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
        assert!(statuses.contains(&201), "{statuses:?}");
        assert_eq!(app.money(&a.id, &a.key, "balance").await, "99.00", "charged once: {statuses:?}");
        let messages = app.get(&format!("/v1/accounts/{}/messages", a.id), &a.key).await.expect(200);
        assert_eq!(messages["data"].as_array().unwrap().len(), 1);
        let retry = keyed_send(&app, &format!("/v1/accounts/{}/messages", a.id), &a.key, "twin", "twin").await;
        assert_eq!(retry.status.as_u16(), 201);
        assert_eq!(retry.headers.get("idempotent-replayed").unwrap(), "true");
    }

    async fn a_replay_never_holds_a_secret(app) {
        let a = app.parent("a.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/api-keys", a.id);
        let first = app.request_with(Method::POST, &path, Some(&a.key), Some(json!({"name": "ci"})), &[("Idempotency-Key", "key-1")]).await.expect(201);
        let secret = first["secret"].as_str().unwrap().to_string();
        let again = app.request_with(Method::POST, &path, Some(&a.key), Some(json!({"name": "ci"})), &[("Idempotency-Key", "key-1")]).await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(again.headers.get("idempotent-redacted").unwrap(), "secret");
        let body = again.expect(201);
        assert_eq!(body["id"], first["id"], "the same key, not a second one");
        assert!(body.get("secret").is_none(), "{body}");
        // The first admin's key and invitation token are not kept either.
        let created = app.request_with(Method::POST, "/v1/operator/accounts", Some(&app.operator_token),
            Some(json!({"name": "C", "company_name": "C", "email": "billing@c.example", "billing_type": "prepaid",
                "currency": "USD", "prices": {"sms": "0.01"}, "admin": {"email": "admin@c.example", "name": "Admin"}})),
            &[("Idempotency-Key", "parent-1")]).await.expect(201);
        let replay = app.request_with(Method::POST, "/v1/operator/accounts", Some(&app.operator_token),
            Some(json!({"name": "C", "company_name": "C", "email": "billing@c.example", "billing_type": "prepaid",
                "currency": "USD", "prices": {"sms": "0.01"}, "admin": {"email": "admin@c.example", "name": "Admin"}})),
            &[("Idempotency-Key", "parent-1")]).await;
        assert_eq!(replay.headers.get("idempotent-redacted").unwrap(), "api_key.secret, invitation.token");
        let stored = stored_answers(&app).await;
        for s in [&secret, created["api_key"]["secret"].as_str().unwrap(), created["invitation"]["token"].as_str().unwrap()] {
            assert!(!stored.iter().any(|body| body.contains(s)), "a secret was stored for replay");
        }
    }
}

/// Every stored answer, read from the test's own database.
async fn stored_answers(app: &TestApp) -> Vec<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let rows =
        sqlx::query("SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    let bodies = rows
        .iter()
        .map(|r| r.get::<String, _>("response_body"))
        .collect();
    pool.close().await;
    bodies
}
