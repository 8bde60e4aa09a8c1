//! Merges of sub-accounts and delete with retention (issue 9, items 5 and
//! 6), on both backends: a merge moves lines and budget and is approved by
//! a second admin or the operator, never by its requester; a sub-account
//! holding lines cannot be deleted; after the retention period its e-mail
//! is free again and its transfers remain.

use std::time::Duration;

use canopy_e2e::{Parent, TestApp, both_backends, micros};
use serde_json::{Value, json};

/// Puts `n` lines (status `active`) in `holder`'s hands, in `tree`,
/// directly in the database with their provisioning history row (`seq`
/// 1), numbered from `first`. Returns their ids.
async fn lines(app: &TestApp, tree: &str, holder: &str, first: u32, n: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for i in first..first + n {
        let id = format!("res_t{i:06}");
        app.query_rows(
            &format!(
                "INSERT INTO resources (id, kind, identifier, tree_id, account_id, status, tags, seq, created_at, assigned_at)
                 VALUES ('{id}', 'line', '+1555{i:07}', '{tree}', $1, 'active', '[]', 1, 0, 0)"
            ),
            holder,
        )
        .await;
        app.query_rows(
            &format!(
                "INSERT INTO resource_history (resource_id, seq, event, from_account_id, account_id, from_status, status, operation_id, at)
                 VALUES ('{id}', 1, 'provision', NULL, $1, NULL, 'active', NULL, 0)"
            ),
            holder,
        )
        .await;
        ids.push(id);
    }
    ids
}

async fn held_by(app: &TestApp, account: &str) -> i64 {
    app.query_rows(
        "SELECT COUNT(*) FROM resources WHERE account_id = $1",
        account,
    )
    .await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// A sub-account with an assigned budget of `budget`, invited and
/// accepted: returns (id, its admin's key).
async fn funded_sub(app: &TestApp, parent: &Parent, name: &str, budget: &str) -> (String, String) {
    let sub = app
        .sub(
            parent,
            name,
            &format!("{}@clients.example", name.to_lowercase()),
        )
        .await;
    let key = app
        .accept(
            sub.invitation.as_deref().unwrap(),
            name,
            "correct horse battery",
        )
        .await;
    if micros(budget) > 0 {
        app.post(
            &format!("/v1/accounts/{}/budget", sub.id),
            &parent.key,
            json!({"amount": budget}),
        )
        .await
        .expect(201);
    }
    (sub.id, key)
}

async fn budget(app: &TestApp, parent: &Parent, sub: &str) -> i64 {
    micros(&app.money(sub, &parent.key, "budget").await)
}

async fn request_merge(app: &TestApp, parent: &Parent, sources: &[&str], target: &str) -> Value {
    app.post(
        &format!("/v1/accounts/{}/merges", parent.id),
        &parent.key,
        json!({"sources": sources, "target": target}),
    )
    .await
    .expect(201)
}

/// Waits (at most 15 s) until `account` was purged.
async fn await_purge(app: &TestApp, account: &str) {
    for _ in 0..150 {
        let rows = app
            .query_rows("SELECT purged_at FROM accounts WHERE id = $1", account)
            .await;
        if rows[0][0].is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{account} was not purged");
}

both_backends! {
    async fn merge_moves_lines_and_budget_and_needs_a_second_admin(app) {
        let parent = app.parent("acme.example", "reseller").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "100.00"}))
            .await
            .expect(201);
        let (a, a_key) = funded_sub(&app, &parent, "Alpha", "10.00").await;
        let (b, _) = funded_sub(&app, &parent, "Beta", "5.50").await;
        let (t, t_key) = funded_sub(&app, &parent, "Target", "1.00").await;
        lines(&app, &parent.id, &a, 0, 3).await;
        lines(&app, &parent.id, &b, 10, 2).await;
        lines(&app, &parent.id, &t, 20, 1).await;
        // Beta suspended: a source may be active or suspended.
        app.post(&format!("/v1/accounts/{b}/suspend"), &parent.key, json!({})).await.expect(200);

        // Input and reach.
        let path = format!("/v1/accounts/{}/merges", parent.id);
        app.post(&path, &parent.key, json!({"sources": [a, t], "target": t}))
            .await
            .expect_problem(422, "validation_failed");
        app.post(&path, &parent.key, json!({"sources": ["acct_nope"], "target": t}))
            .await
            .expect_problem(422, "validation_failed");
        app.post(&path, &parent.key, json!({"sources": [a], "target": t, "when": "now"}))
            .await
            .expect_problem(422, "validation_failed");
        app.post(&path, &parent.key, json!({"sources": [a], "target": b}))
            .await
            .expect_problem(409, "conflict"); // a suspended target
        // A sub-account's admin cannot request one.
        app.post(&format!("/v1/accounts/{t}/merges"), &t_key, json!({"sources": [a], "target": t}))
            .await
            .expect_problem(403, "forbidden");

        let merge = request_merge(&app, &parent, &[&a, &b], &t).await;
        assert_eq!(merge["status"], "pending");
        assert!(merge["id"].as_str().unwrap().starts_with("mrg_"), "{merge}");
        assert_eq!(merge["sources"], json!([a, b]));
        assert_eq!(merge["target"], t);
        assert_eq!(merge["requested_by"], parent.admin_user_id.as_str());
        let id = merge["id"].as_str().unwrap();

        // The requester cannot approve it.
        app.post(&format!("{path}/{id}/approve"), &parent.key, json!({}))
            .await
            .expect_problem(403, "forbidden");
        assert_eq!(app.get(&format!("{path}/{id}"), &parent.key).await.expect(200)["status"], "pending");
        assert_eq!(held_by(&app, &a).await, 3, "nothing moved before approval");

        // A second admin of the parent approves: it runs at once.
        let second = app.member(&parent.key, &parent.id, "second@acme.example", "admin").await;
        let done = app.post(&format!("{path}/{id}/approve"), &second, json!({})).await.expect(200);
        assert_eq!(done["status"], "completed");
        assert!(done["decided_at"].is_string());
        app.post(&format!("{path}/{id}/approve"), &second, json!({}))
            .await
            .expect_problem(409, "conflict");

        // Lines: all in the target, one history row each.
        assert_eq!(held_by(&app, &t).await, 6);
        assert_eq!(held_by(&app, &a).await + held_by(&app, &b).await, 0);
        let history = app
            .query_rows(
                "SELECT COUNT(*) FROM resource_history WHERE event = 'merge' AND account_id = $1 AND seq = 2",
                &t,
            )
            .await;
        assert_eq!(history[0][0].as_deref(), Some("5"));
        // Budget: 1 + 10 + 5.50 in the target, nothing left in the sources.
        assert_eq!(budget(&app, &parent, &t).await, micros("16.50"));
        app.assert_ledger_balanced().await;
        let statement = app.get(&format!("/v1/accounts/{a}/transactions"), &parent.key).await.expect(200);
        assert!(
            statement["data"].as_array().unwrap().iter().any(|t| t["amount"].as_str().map(micros) == Some(micros("10.00")) && t["kind"] == "allocation" && t["from"].as_str().is_some_and(|f| f.contains(&a))),
            "the source's statement shows its budget leaving: {statement}"
        );

        // The sources show as merged for the parent; their keys stop working.
        for source in [&a, &b] {
            let shown = app.get(&format!("/v1/accounts/{source}"), &parent.key).await.expect(200);
            assert_eq!(shown["status"], "merged", "{shown}");
            assert_eq!(shown["merged_into"], t.as_str());
        }
        app.get(&format!("/v1/accounts/{a}"), &a_key).await.expect_problem(403, "account_suspended");
        app.send(&a, &a_key).await.expect_problem(403, "account_suspended");
        // Merged is terminal: no merge, unsuspend or delete of it.
        app.post(&path, &parent.key, json!({"sources": [a], "target": t}))
            .await
            .expect_problem(409, "conflict");
        app.post(&format!("/v1/accounts/{b}/unsuspend"), &parent.key, json!({}))
            .await
            .expect_problem(409, "conflict");
        let listed = app.get(&path, &parent.key).await.expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        // The target still works.
        assert_eq!(app.send(&t, &t_key).await.status, 201);
        app.assert_ledger_balanced().await;
    }

    async fn the_operator_approves_and_a_stale_merge_stays_pending(app) {
        // Postpaid: moving budget between sub-accounts spends no credit.
        let parent = app
            .parent_with(
                "acme.example",
                "reseller",
                json!({"billing_type": "postpaid", "monthly_credit_limit": "100.00"}),
            )
            .await;
        let (a, _) = funded_sub(&app, &parent, "Alpha", "60.00").await;
        let (t, _) = funded_sub(&app, &parent, "Target", "30.00").await;
        let shared = app
            .try_sub(&parent, "Shared", "shared@clients.example",
                json!({"invite": false, "credit": {"mode": "shared_usage"}}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();
        let gone = app
            .try_sub(&parent, "Gone", "gone@clients.example", json!({"invite": false}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();
        lines(&app, &parent.id, &shared, 0, 2).await;
        let available = app.money(&parent.id, &parent.key, "available_credit").await;
        assert_eq!(micros(&available), micros("10.00"));

        // A merge whose source is deleted meanwhile fails and stays pending.
        let stale = request_merge(&app, &parent, &[&gone], &t).await;
        let stale_id = stale["id"].as_str().unwrap();
        app.delete(&format!("/v1/accounts/{gone}"), &parent.key).await.expect(200);
        let approve = |id: &str| format!("/v1/operator/accounts/{}/merges/{id}/approve", parent.id);
        let refused = app.op_post(&approve(stale_id), json!({})).await.expect_problem(409, "conflict");
        assert!(refused["detail"].as_str().unwrap().contains("pending"), "{refused}");
        let path = format!("/v1/accounts/{}/merges", parent.id);
        assert_eq!(app.get(&format!("{path}/{stale_id}"), &parent.key).await.expect(200)["status"], "pending");
        // Its requester withdraws it.
        let rejected = app.post(&format!("{path}/{stale_id}/reject"), &parent.key, json!({})).await.expect(200);
        assert_eq!(rejected["status"], "rejected");
        app.op_post(&approve(stale_id), json!({})).await.expect_problem(409, "conflict");

        // The operator approves a merge of a budget and a shared-usage source.
        let merge = request_merge(&app, &parent, &[&a, &shared], &t).await;
        let done = app.op_post(&approve(merge["id"].as_str().unwrap()), json!({})).await.expect(200);
        assert_eq!(done["status"], "completed");
        assert_eq!(done["decided_by"], "operator");
        assert_eq!(budget(&app, &parent, &t).await, micros("90.00"));
        assert_eq!(held_by(&app, &t).await, 2);
        // The month's spending did not change: the money never left the tree.
        let after = app.money(&parent.id, &parent.key, "available_credit").await;
        assert_eq!(micros(&after), micros("10.00"));
        let shown = app.get(&format!("/v1/accounts/{shared}"), &parent.key).await.expect(200);
        assert_eq!(shown["status"], "merged");
        app.assert_ledger_balanced().await;
        // The operator's routes reach only merges of that parent.
        let other = app.parent("other.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/merges/{}/approve", other.id, merge["id"].as_str().unwrap()), json!({}))
            .await
            .expect_problem(404, "not_found");
    }

    async fn a_subaccount_with_lines_is_kept_then_purged_after_retention(app) {
        app.set_clock("2026-03-01T00:00:00Z").await;
        let settings = app.get("/v1/operator/settings", &app.operator_token.clone()).await.expect(200);
        assert_eq!(settings, json!({"data_retention_days": 30, "webhooks_allow_private": false}));
        app.op_patch("/v1/operator/settings", json!({"data_retention_days": 0}))
            .await
            .expect_problem(422, "validation_failed");
        app.op_patch("/v1/operator/settings", json!({"retention": 5}))
            .await
            .expect_problem(422, "validation_failed");

        let parent = app.parent("acme.example", "reseller").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "50.00"}))
            .await
            .expect(201);
        let (s, s_key) = funded_sub(&app, &parent, "Leaving", "7.00").await;
        app.send(&s, &s_key).await.expect(201);
        let held = lines(&app, &parent.id, &s, 0, 2).await;
        let refused = app.delete(&format!("/v1/accounts/{s}"), &parent.key).await.expect_problem(409, "conflict");
        assert!(refused["detail"].as_str().unwrap().contains("holds 2 resources"), "{refused}");
        assert_eq!(app.get(&format!("/v1/accounts/{s}"), &parent.key).await.expect(200)["status"], "active");
        // A parent whose tree holds live lines is not deleted either.
        app.delete(&format!("/v1/operator/accounts/{}", parent.id), &app.operator_token.clone())
            .await
            .expect_problem(409, "conflict");

        // Back to the Available pool (a disconnected line would not hold it either).
        for id in &held[..1] {
            app.query_rows(&format!("UPDATE resources SET account_id = '{}', seq = seq + 1 WHERE id = $1", parent.id), id).await;
        }
        app.query_rows("UPDATE resources SET status = 'disconnected' WHERE id = $1", &held[1]).await;
        let deleted = app.delete(&format!("/v1/accounts/{s}"), &parent.key).await.expect(200);
        assert_eq!(deleted["status"], "deleted");
        app.assert_ledger_balanced().await;
        // Until the purge the e-mail stays taken.
        app.try_sub(&parent, "Again", "leaving@clients.example", json!({"invite": false}))
            .await
            .expect_problem(409, "conflict");

        // The operator shortens the period to 10 days; 5 days on, nothing is purged.
        let changed = app.op_patch("/v1/operator/settings", json!({"data_retention_days": 10})).await.expect(200);
        assert_eq!(changed["data_retention_days"], 10);
        app.set_clock("2026-03-06T00:00:00Z").await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let row = app.query_rows("SELECT purged_at, name FROM accounts WHERE id = $1", &s).await;
        assert_eq!(row[0][0], None, "purged before the retention period ended");
        assert_eq!(row[0][1].as_deref(), Some("Leaving"));

        // Past 10 days: purged.
        app.set_clock("2026-03-11T00:00:01Z").await;
        await_purge(&app, &s).await;
        let row = app
            .query_rows("SELECT name, email, external_id FROM accounts WHERE id = $1", &s)
            .await;
        assert_eq!(row[0][0].as_deref(), Some("purged"));
        assert!(!row[0][1].as_deref().unwrap().contains("leaving"), "{row:?}");
        let members = app.query_rows("SELECT COUNT(*) FROM memberships WHERE account_id = $1", &s).await;
        assert_eq!(members[0][0].as_deref(), Some("0"));
        let bodies = app.query_rows("SELECT body FROM messages WHERE account_id = $1", &s).await;
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0][0].as_deref(), Some(""));
        let keys = app.query_rows("SELECT COUNT(*) FROM api_keys WHERE account_id = $1", &s).await;
        assert_eq!(keys[0][0].as_deref(), Some("0"));
        app.get(&format!("/v1/accounts/{s}"), &s_key).await.expect_problem(401, "unauthenticated");

        // Its transfers remain and still balance.
        let statement = app.get(&format!("/v1/accounts/{s}/transactions"), &parent.key).await.expect(200);
        let kinds: Vec<&str> = statement["data"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"allocation") && kinds.contains(&"usage") && kinds.contains(&"return"), "{statement}");
        app.assert_ledger_balanced().await;
        let history = app.query_rows("SELECT COUNT(*) FROM resource_history WHERE account_id = $1", &s).await;
        assert_eq!(history[0][0].as_deref(), Some("2"), "resource history is kept");

        // The e-mail is free again, for the account and for its invited user.
        let again = app.sub(&parent, "Again", "leaving@clients.example").await;
        app.accept(again.invitation.as_deref().unwrap(), "Again", "correct horse battery").await;
        // Purged once: a later pass changes nothing.
        let before = app.query_rows("SELECT purged_at FROM accounts WHERE id = $1", &s).await;
        app.set_clock("2026-03-20T00:00:00Z").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(app.query_rows("SELECT purged_at FROM accounts WHERE id = $1", &s).await, before);
    }
}
