//! The ledger through HTTP: prepaid and postpaid money, budgets, shared
//! usage, charged messages, alerts, visibility of money, reconciliation.

use canopy_e2e::webhooks::funded_parent as prepaid;
use canopy_e2e::{Backend, Options, TestApp, both_backends, fake_smtp, spawn_app_with};
use reqwest::Method;
use serde_json::json;

/// A postpaid parent with a monthly credit limit of `limit`, SMS at 1.00.
async fn postpaid(app: &TestApp, domain: &str, limit: &str) -> canopy_e2e::Parent {
    app.parent_with(
        domain,
        "enterprise",
        json!({
            "billing_type": "postpaid", "monthly_credit_limit": limit, "prices": {"sms": "1.00"}
        }),
    )
    .await
}

both_backends! {
    async fn prepaid_initial_credit_and_deletion_return_money_to_the_parent(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "80").await;
        let too_much = json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "100"}});
        app.try_sub(&parent, "Team", "team@acme.example", too_much.clone()).await.expect_problem(402, "insufficient_funds");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "80.00");
        let subs = app.get(&format!("/v1/accounts/{}/subaccounts", parent.id), &parent.key).await.expect(200);
        assert_eq!(subs["data"].as_array().unwrap().len(), 0, "nothing was created");

        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "70.00"})).await.expect(201);
        let sub = app.try_sub(&parent, "Team", "team@acme.example", too_much).await.expect(201);
        let sub_id = sub["id"].as_str().unwrap();
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "50.00");
        assert_eq!(app.money(sub_id, &parent.key, "budget").await, "100.00");

        for _ in 0..3 {
            app.send(sub_id, &parent.key).await.expect(201);
        }
        assert_eq!(app.money(sub_id, &parent.key, "budget").await, "70.00");
        app.delete(&format!("/v1/accounts/{sub_id}"), &parent.key).await.expect(200);
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "120.00");
        let check = app.assert_ledger_balanced().await;
        assert_eq!(check["sums"]["USD"], "0");
    }

    async fn budgets_move_both_ways_within_what_the_source_holds(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "100").await;
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({"invite": false})).await.expect(201);
        let path = format!("/v1/accounts/{}/budget", sub["id"].as_str().unwrap());
        let moved = app.post(&path, &parent.key, json!({"amount": "60"})).await.expect(201);
        assert_eq!(moved["kind"], "allocation");
        assert_eq!(moved["balance_after"], "60.00");
        app.post(&path, &parent.key, json!({"amount": "50"})).await.expect_problem(402, "insufficient_funds");
        app.post(&path, &parent.key, json!({"amount": "-61"})).await.expect_problem(402, "insufficient_funds");
        let back = app.post(&path, &parent.key, json!({"amount": "-25.5"})).await.expect(201);
        assert_eq!(back["kind"], "return");
        assert_eq!(back["balance_after"], "34.50");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "65.50");
        app.post(&path, &parent.key, json!({"amount": "0"})).await.expect_problem(422, "validation_failed");
        app.post(&path, &parent.key, json!({"amount": "0.0000001"})).await.expect_problem(422, "validation_failed");
        // The parent's suspended sub-account can still be emptied by hand.
        let sub_id = sub["id"].as_str().unwrap();
        app.post(&format!("/v1/accounts/{sub_id}/suspend"), &parent.key, json!({})).await.expect(200);
        app.post(&path, &parent.key, json!({"amount": "-34.50"})).await.expect(201);
        app.assert_ledger_balanced().await;
    }

    async fn postpaid_credit_counts_allocations_and_shared_usage_per_month(app) {
        app.set_clock("2031-03-15T12:00:00Z").await;
        let parent = postpaid(&app, "acme.example", "1000").await;
        app.try_sub(&parent, "Budget", "budget@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "300"}
        })).await.expect(201);
        let shared = app.try_sub(&parent, "Shared", "shared@acme.example", json!({
            "invite": false, "credit": {"mode": "shared_usage"}
        })).await.expect(201);
        let shared_id = shared["id"].as_str().unwrap();
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"prices": {"sms": "100.00"}})).await.expect(200);
        for _ in 0..2 {
            app.send(shared_id, &parent.key).await.expect(201);
        }
        let balance = app.get(&format!("/v1/accounts/{}/balance", parent.id), &parent.key).await.expect(200);
        assert_eq!(balance["available_credit"], "500.00", "{balance}");
        assert_eq!(balance["spent_this_month"], "500.00");
        assert_eq!(balance["allocated_this_month"], "300.00");
        assert_eq!(app.money(shared_id, &parent.key, "used_this_month").await, "200.00");
        // Past the limit: 402 and nothing charged.
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"prices": {"sms": "500.01"}})).await.expect(200);
        app.send(shared_id, &parent.key).await.expect_problem(402, "insufficient_funds");
        app.set_clock("2031-04-01T00:00:01Z").await;
        assert_eq!(app.money(&parent.id, &parent.key, "available_credit").await, "1000.00");
        assert_eq!(app.money(shared_id, &parent.key, "used_this_month").await, "0.00");
        app.assert_ledger_balanced().await;
    }

    async fn a_shared_usage_limit_stops_spending_past_it(app) {
        let parent = postpaid(&app, "acme.example", "1000").await;
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"monthly_usage_limit_enabled": true})).await.expect(200);
        let sub = app.try_sub(&parent, "Shared", "shared@acme.example", json!({
            "invite": false, "credit": {"mode": "shared_usage", "monthly_usage_limit": "2.50"}
        })).await.expect(201);
        let id = sub["id"].as_str().unwrap();
        app.send(id, &parent.key).await.expect(201);
        app.send(id, &parent.key).await.expect(201);
        let refused = app.send(id, &parent.key).await.expect_problem(402, "insufficient_funds");
        assert!(refused["detail"].as_str().unwrap().contains("usage limit"), "{refused}");
        let messages = app.get(&format!("/v1/accounts/{id}/messages"), &parent.key).await.expect(200);
        assert_eq!(messages["data"].as_array().unwrap().len(), 2, "a refused message is not stored");
        app.assert_ledger_balanced().await;
    }

    async fn fifty_parallel_sends_on_a_budget_for_ten(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "1000").await;
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "100"}
        })).await.expect(201);
        let id = sub["id"].as_str().unwrap().to_string();
        let statuses = parallel_sends(&[&app], &id, &parent.key, 50).await;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 402).count(), 40, "{statuses:?}");
        assert_eq!(app.money(&id, &parent.key, "budget").await, "0.00");
        app.assert_ledger_balanced().await;
    }

    async fn parallel_shared_usage_never_passes_the_monthly_credit_limit(app) {
        let parent = postpaid(&app, "acme.example", "10").await;
        let sub = app.try_sub(&parent, "Shared", "shared@acme.example", json!({
            "invite": false, "credit": {"mode": "shared_usage"}
        })).await.expect(201);
        let id = sub["id"].as_str().unwrap().to_string();
        let statuses = parallel_sends(&[&app], &id, &parent.key, 30).await;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 402).count(), 20, "{statuses:?}");
        assert_eq!(app.money(&parent.id, &parent.key, "available_credit").await, "0.00");
        app.assert_ledger_balanced().await;
    }

    async fn the_same_idempotency_key_charges_once(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "100").await;
        let path = format!("/v1/accounts/{}/messages", parent.id);
        let body = json!({"channel": "sms", "to": "+15550100", "body": "once"});
        let key = [("Idempotency-Key", "send-once")];
        let first = app.request_with(Method::POST, &path, Some(&parent.key), Some(body.clone()), &key).await;
        let first_body = first.body.clone();
        first.expect(201);
        let again = app.request_with(Method::POST, &path, Some(&parent.key), Some(body), &key).await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(again.expect(201), first_body);
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "90.00", "charged once");
        let other = json!({"channel": "sms", "to": "+15550100", "body": "twice"});
        app.request_with(Method::POST, &path, Some(&parent.key), Some(other), &key).await.expect_problem(409, "idempotency_conflict");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "90.00");
    }

    async fn a_low_balance_alert_fires_once_per_crossing(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "1000").await;
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false,
            "credit": {"mode": "assigned_budget", "initial_credit": "50",
                       "low_balance_alert": {"threshold": "25", "emails": ["ops@acme.example"]}}
        })).await.expect(201);
        let id = sub["id"].as_str().unwrap();
        let notifications = format!("/v1/accounts/{id}/notifications");
        for _ in 0..2 {
            app.send(id, &parent.key).await.expect(201); // 40, 30: above
        }
        assert_eq!(app.get(&notifications, &parent.key).await.expect(200)["data"].as_array().unwrap().len(), 0);
        for _ in 0..3 {
            app.send(id, &parent.key).await.expect(201); // 20 (crosses), 10, 0
        }
        let list = app.get(&notifications, &parent.key).await.expect(200);
        let items = list["data"].as_array().unwrap();
        assert_eq!(items.len(), 1, "one alert for one crossing: {list}");
        assert_eq!(items[0]["kind"], "low_balance");
        assert_eq!(items[0]["threshold"], "25.00");
        assert_eq!(items[0]["budget"], "20.00");
        assert_eq!(items[0]["emails"], json!(["ops@acme.example"]));
        // Topped back above and crossing again is a second alert.
        app.post(&format!("/v1/accounts/{id}/budget"), &parent.key, json!({"amount": "30"})).await.expect(201);
        app.send(id, &parent.key).await.expect(201); // 30 -> 20
        assert_eq!(app.get(&notifications, &parent.key).await.expect(200)["data"].as_array().unwrap().len(), 2);
    }

    async fn reseller_subaccounts_see_no_money_enterprise_ones_do(app) {
        for (module, domain, sees) in [("reseller", "resell.example", false), ("enterprise", "acme.example", true)] {
            let parent = prepaid(&app, domain, module, "100").await;
            let sub = app.try_sub(&parent, "Client", &format!("client@{domain}"), json!({
                "credit": {"mode": "assigned_budget", "initial_credit": "50", "low_balance_alert": {"threshold": "45", "emails": [format!("a@{domain}")]}}
            })).await.expect(201);
            let id = sub["id"].as_str().unwrap();
            let key = app.accept(sub["invitation"]["token"].as_str().unwrap(), "Client", "correct horse battery").await;
            let sent = app.send(id, &key).await.expect(201);
            let balance = app.get(&format!("/v1/accounts/{id}/balance"), &key).await;
            let transactions = app.get(&format!("/v1/accounts/{id}/transactions"), &key).await;
            let messages = app.get(&format!("/v1/accounts/{id}/messages"), &key).await.expect(200);
            let account = app.get(&format!("/v1/accounts/{id}"), &key).await.expect(200);
            let notes = app.get(&format!("/v1/accounts/{id}/notifications"), &key).await.expect(200);
            if sees {
                assert_eq!(balance.expect(200)["budget"], "40.00");
                assert_eq!(transactions.expect(200)["data"].as_array().unwrap().len(), 2);
                assert_eq!(sent["price"], "10.00");
                assert_eq!(messages["data"][0]["price"], "10.00");
                assert!(account.get("prices").is_some());
                assert_eq!(notes["data"][0]["budget"], "40.00");
            } else {
                let denied = balance.expect_problem(403, "policy_denied");
                assert_eq!(denied["policy"]["id"], "default.visibility", "{denied}");
                transactions.expect_problem(403, "policy_denied");
                for doc in [&sent, &messages, &account, &notes] {
                    let text = doc.to_string();
                    for field in ["\"price\"", "\"prices\"", "\"budget\"", "\"threshold\"", "\"balance\""] {
                        assert!(!text.contains(field), "{field} shown to a reseller sub-account: {text}");
                    }
                }
            }
            // The parent sees each sub-account's money separately.
            assert_eq!(app.money(id, &parent.key, "budget").await, "40.00");
        }
    }

    async fn channels_and_status_gate_sending(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "100").await;
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "channels": ["sms"], "credit": {"mode": "assigned_budget", "initial_credit": "20"}
        })).await.expect(201);
        let id = sub["id"].as_str().unwrap();
        app.post(&format!("/v1/accounts/{id}/messages"), &parent.key, json!({"channel": "whatsapp", "to": "+1555", "body": "hi"}))
            .await
            .expect_problem(403, "forbidden");
        app.post(&format!("/v1/accounts/{id}/suspend"), &parent.key, json!({})).await.expect(200);
        app.send(id, &parent.key).await.expect_problem(403, "account_suspended");
        app.post(&format!("/v1/accounts/{id}/topups"), &parent.key, json!({"amount": "5"})).await.expect_problem(403, "forbidden");
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"currency": "EUR"})).await.expect_problem(409, "conflict");
    }

    async fn a_parent_admin_tops_up_its_own_prepaid_account(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "10").await;
        // Off until the operator enables it for this parent: no payment is taken.
        app.post(&format!("/v1/accounts/{}/topups", parent.id), &parent.key, json!({"amount": "1"})).await.expect_problem(403, "feature_not_enabled");
        let changed = app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"self_topups_enabled": true})).await.expect(200);
        assert_eq!(changed["self_topups_enabled"], true);
        let moved = app.post(&format!("/v1/accounts/{}/topups", parent.id), &parent.key, json!({"amount": "15.25"})).await.expect(201);
        assert_eq!(moved["kind"], "topup");
        assert_eq!(moved["balance_after"], "25.25");
        app.post(&format!("/v1/accounts/{}/topups", parent.id), &parent.key, json!({"amount": "-1"})).await.expect_problem(422, "validation_failed");
        let advanced = app.member(&parent.key, &parent.id, "adv@acme.example", "advanced").await;
        app.post(&format!("/v1/accounts/{}/topups", parent.id), &advanced, json!({"amount": "1"})).await.expect_problem(403, "policy_denied");
        let postpaid = postpaid(&app, "post.example", "100").await;
        app.op_patch(&format!("/v1/operator/accounts/{}", postpaid.id), json!({"self_topups_enabled": true})).await.expect(200);
        app.post(&format!("/v1/accounts/{}/topups", postpaid.id), &postpaid.key, json!({"amount": "1"})).await.expect_problem(409, "conflict");
        let statement = app.get(&format!("/v1/accounts/{}/transactions", parent.id), &parent.key).await.expect(200);
        // Newest first, from the parent's side: money in, its balance after.
        let newest = statement["data"][0].clone();
        assert_eq!((newest["kind"].as_str(), newest["amount"].as_str(), newest["balance_after"].as_str()), (Some("topup"), Some("15.25"), Some("25.25")));
        assert_eq!((newest["direction"].as_str(), newest["signed_amount"].as_str()), (Some("in"), Some("15.25")));
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"self_topups_enabled": false})).await.expect(200);
        app.post(&format!("/v1/accounts/{}/topups", parent.id), &parent.key, json!({"amount": "1"})).await.expect_problem(403, "feature_not_enabled");
        app.assert_ledger_balanced().await;
    }

    async fn deleting_a_parent_closes_its_money(app) {
        let parent = prepaid(&app, "acme.example", "enterprise", "100").await;
        app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "40"}
        })).await.expect(201);
        app.delete(&format!("/v1/operator/accounts/{}", parent.id), &app.operator_token.clone()).await.expect(200);
        let check = app.assert_ledger_balanced().await;
        assert!(check["accounts"].as_i64().unwrap() >= 4);
    }
}

/// Sends `n` messages at once, spread over `hosts`; returns the statuses.
async fn parallel_sends(hosts: &[&TestApp], account: &str, key: &str, n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let host = hosts[i % hosts.len()];
        let url = format!("{}/v1/accounts/{account}/messages", host.base);
        let request = reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .json(&json!({"channel": "sms", "to": "+15550100", "body": format!("m{i}")}));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_sends_through_two_hosts_on_one_postgres_database() {
    let a = canopy_e2e::spawn_app(Backend::Postgres).await;
    let b = spawn_app_with(
        Backend::Postgres,
        Options {
            database_url: Some(a.database_url.clone()),
            ..Options::default()
        },
    )
    .await;
    let parent = prepaid(&a, "acme.example", "enterprise", "1000").await;
    let sub = a
        .try_sub(
            &parent,
            "Team",
            "team@acme.example",
            json!({
                "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "100"}
            }),
        )
        .await
        .expect(201);
    let id = sub["id"].as_str().unwrap().to_string();
    let statuses = parallel_sends(&[&a, &b], &id, &parent.key, 50).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 402).count(),
        40,
        "{statuses:?}"
    );
    assert_eq!(b.money(&id, &parent.key, "budget").await, "0.00");
    b.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_balance_alerts_are_delivered_over_smtp() {
    let (smtp_url, mut inbox) = fake_smtp().await;
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            smtp_url: Some(smtp_url),
            ..Options::default()
        },
    )
    .await;
    let parent = prepaid(&app, "acme.example", "enterprise", "100").await;
    let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({
        "invite": false,
        "credit": {"mode": "assigned_budget", "initial_credit": "20",
                   "low_balance_alert": {"threshold": "15", "emails": ["ops@acme.example", "cfo@acme.example"]}}
    })).await.expect(201);
    let id = sub["id"].as_str().unwrap();
    app.send(id, &parent.key).await.expect(201);
    let (rcpt, text) = tokio::time::timeout(std::time::Duration::from_secs(10), inbox.recv())
        .await
        .expect("an e-mail within 10 s")
        .unwrap();
    assert_eq!(
        rcpt,
        vec![
            "ops@acme.example".to_string(),
            "cfo@acme.example".to_string()
        ]
    );
    assert!(text.contains(id) && text.contains("10.00"), "{text}");
    // The outbox records the delivery.
    let mut delivered = serde_json::Value::Null;
    for _ in 0..50 {
        let list = app
            .get(&format!("/v1/accounts/{id}/notifications"), &parent.key)
            .await
            .expect(200);
        delivered = list["data"][0]["delivered_at"].clone();
        if !delivered.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered.is_string(), "delivered_at is set");
}
