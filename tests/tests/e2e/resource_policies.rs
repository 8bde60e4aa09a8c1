//! Policies for lines and SIMs: a cascade plan's `resources` field suspends
//! the active SIMs of the sub-accounts it suspends and resumes them on
//! reactivation, atomically with the plan (docs/POLICIES.md "cascade").
//!
//! SIMs are provisioned over HTTP into the Available pool; moving them into
//! sub-accounts and activating them is written here as the operations do
//! it (the resource row and its next history row), with raw SQL.

use canopy_e2e::resources::iccids;
use canopy_e2e::*;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

/// Runs statements on the test's database, in one transaction.
async fn exec(app: &TestApp, statements: &[String]) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .expect("the test's database opens");
    let mut tx = conn.begin().await.expect("begin");
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.expect("commit");
}

/// Puts the SIM `identifier` in `holder` with `status`, writing its next
/// history row marked `operation_id`, as an operation does.
fn place(identifier: &str, holder: &str, status: &str, operation_id: &str) -> [String; 2] {
    [
        format!(
            "UPDATE resources SET account_id = '{holder}', status = '{status}', seq = seq + 1
             WHERE identifier = '{identifier}'"
        ),
        format!(
            "INSERT INTO resource_history
                 (resource_id, seq, event, from_account_id, account_id, from_status, status,
                  operation_id, at)
             SELECT id, seq, 'status', account_id, account_id, NULL, status, '{operation_id}', 1
               FROM resources WHERE identifier = '{identifier}'"
        ),
    ]
}

/// Each SIM of the tree as its parent's admin lists it: `(identifier,
/// holder, status)`, by identifier.
async fn sims(app: &TestApp, parent: &Parent) -> Vec<(String, String, String)> {
    let mut all: Vec<(String, String, String)> = app
        .all_resources(&parent.id, &parent.key, "kind=sim")
        .await
        .iter()
        .map(|r: &Value| {
            let text = |f: &str| r[f].as_str().expect(f).to_string();
            (text("identifier"), text("account_id"), text("status"))
        })
        .collect();
    all.sort();
    all
}

/// The same from the database, while the parent is suspended (its users
/// cannot read then).
async fn sims_in_db(app: &TestApp, parent: &Parent) -> Vec<(String, String, String)> {
    app.query_rows(
        "SELECT identifier, account_id, status FROM resources
          WHERE tree_id = $1 AND kind = 'sim' ORDER BY identifier",
        &parent.id,
    )
    .await
    .into_iter()
    .map(|r| {
        let text = |i: usize| r[i].clone().expect("not null");
        (text(0), text(1), text(2))
    })
    .collect()
}

/// How many resources of the tree are in `status`.
async fn count(app: &TestApp, parent: &Parent, status: &str) -> String {
    let sql = format!("SELECT COUNT(*) FROM resources WHERE tree_id = $1 AND status = '{status}'");
    app.query_rows(&sql, &parent.id).await[0][0]
        .clone()
        .unwrap()
}

fn status_of<'a>(all: &'a [(String, String, String)], identifier: &str) -> &'a str {
    &all.iter()
        .find(|(i, _, _)| i == identifier)
        .unwrap_or_else(|| panic!("{identifier} is not provisioned"))
        .2
}

/// The latest history row of a SIM: `(seq, event, from_status, status,
/// operation_id)`.
async fn last_history(app: &TestApp, identifier: &str) -> Vec<Option<String>> {
    let rows = app
        .query_rows(
            "SELECT h.seq, h.event, h.from_status, h.status, h.operation_id
               FROM resource_history h JOIN resources r ON r.id = h.resource_id
              WHERE r.identifier = $1 ORDER BY h.seq DESC",
            identifier,
        )
        .await;
    rows.into_iter().next().expect("a history row")
}

/// Every resource of the tree has one history row per change, numbered
/// 1..=seq without gaps, the last one its current holder and status.
async fn assert_history_complete(app: &TestApp, tree: &str) {
    let broken = app
        .query_rows(
            "SELECT r.identifier FROM resources r
              WHERE r.tree_id = $1
                AND (r.seq <> (SELECT COUNT(*) FROM resource_history h WHERE h.resource_id = r.id)
                  OR NOT EXISTS (SELECT 1 FROM resource_history h
                                  WHERE h.resource_id = r.id AND h.seq = r.seq
                                    AND h.status = r.status AND h.account_id = r.account_id))",
            tree,
        )
        .await;
    assert!(broken.is_empty(), "history out of step: {broken:?}");
}

/// Lets customers' cascade policies replace the default's plan.
async fn open_cascade_to_customers(app: &TestApp) {
    app.request(
        Method::PUT,
        "/v1/operator/policy-settings",
        Some(&app.operator_token.clone()),
        Some(json!({"customer_hooks": ["authorize", "subaccount.validate", "visibility", "cascade"]})),
    )
    .await
    .expect(200);
}

/// An active sub-account (no invitation).
async fn active_sub(app: &TestApp, parent: &Parent, name: &str, email: &str) -> String {
    let body = app
        .try_sub(parent, name, email, json!({"invite": false}))
        .await
        .expect(201);
    assert_eq!(body["status"], "active", "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Provisions `n` SIMs into the parent's Available pool (`inventory`).
async fn provision_sims(app: &TestApp, parent: &Parent, n: u64) -> Vec<String> {
    let ids = iccids("8944", 1, n);
    let created = app.provision(parent, "sim", &ids, Value::Null).await;
    assert_eq!(created["created"], n);
    ids
}

/// A customer's cascade policy: SIMs follow a sub-account's suspension and
/// reactivation.
const SIMS_FOLLOW: &str = r#"
fn evaluate(hook, input) {
    switch input.event {
        "subaccount.suspended" => #{ campaigns: "queue", resources: "suspend" },
        "subaccount.unsuspended" => #{ campaigns: "submit", resources: "resume" },
        _ => #{}
    }
}"#;

/// A confused plan: `resume` on a suspension.
const RESUME_ON_SUSPEND: &str = r#"
fn evaluate(hook, input) {
    if input.event == "subaccount.suspended" { #{ resources: "resume" } } else { #{} }
}"#;

both_backends! {
    async fn a_customer_cascade_suspends_and_resumes_the_sims_of_a_sub_account(app) {
        open_cascade_to_customers(&app).await;
        let parent = app.parent("acme.example", "enterprise").await;
        let fleet = active_sub(&app, &parent, "Fleet", "fleet@acme.example").await;
        let other = active_sub(&app, &parent, "Other", "other@acme.example").await;
        let ids = provision_sims(&app, &parent, 6).await;
        let [s1, s2, s3, s4, s5, s6] = <[String; 6]>::try_from(ids).unwrap();
        // Fleet: two active SIMs, one never activated, one suspended by
        // hand; Other: one active; one stays in Available.
        let mut setup = Vec::new();
        setup.extend(place(&s1, &fleet, "active", "op_setup"));
        setup.extend(place(&s2, &fleet, "active", "op_setup"));
        setup.extend(place(&s3, &fleet, "inventory", "op_setup"));
        setup.extend(place(&s4, &fleet, "suspended", "op_by_hand"));
        setup.extend(place(&s5, &other, "active", "op_setup"));
        exec(&app, &setup).await;
        let follow = app
            .install_policy(Some(&parent), "sims follow", "cascade", Code::Rhai(SIMS_FOLLOW), "enforce")
            .await;

        app.post(&format!("/v1/accounts/{fleet}/suspend"), &parent.key, json!({}))
            .await
            .expect(200);
        let now = sims(&app, &parent).await;
        assert_eq!(status_of(&now, &s1), "suspended");
        assert_eq!(status_of(&now, &s2), "suspended");
        assert_eq!(status_of(&now, &s3), "inventory", "only active SIMs are suspended");
        assert_eq!(status_of(&now, &s4), "suspended");
        assert_eq!(status_of(&now, &s5), "active", "another sub-account's SIM is untouched");
        assert_eq!(status_of(&now, &s6), "inventory", "the Available pool is untouched");
        let marker = format!("cascade:subaccount.suspended:{fleet}");
        let last = last_history(&app, &s1).await;
        assert_eq!(
            last[1..],
            [Some("status".into()), Some("active".into()), Some("suspended".into()), Some(marker.clone())]
        );
        assert_eq!(last_history(&app, &s4).await[4].as_deref(), Some("op_by_hand"));
        assert_history_complete(&app, &parent.id).await;

        app.post(&format!("/v1/accounts/{fleet}/unsuspend"), &parent.key, json!({}))
            .await
            .expect(200);
        let now = sims(&app, &parent).await;
        assert_eq!(status_of(&now, &s1), "active");
        assert_eq!(status_of(&now, &s2), "active");
        assert_eq!(status_of(&now, &s3), "inventory");
        assert_eq!(status_of(&now, &s4), "suspended", "suspended by hand, not by the cascade: stays");
        assert_eq!(status_of(&now, &s5), "active");
        let last = last_history(&app, &s2).await;
        assert_eq!(
            last[1..],
            [
                Some("status".into()),
                Some("suspended".into()),
                Some("active".into()),
                Some(format!("cascade:subaccount.unsuspended:{fleet}"))
            ]
        );
        assert_history_complete(&app, &parent.id).await;

        // A SIM resumed by hand while its sub-account was suspended, then
        // suspended again by hand, is no longer the cascade's to resume.
        app.post(&format!("/v1/accounts/{fleet}/suspend"), &parent.key, json!({}))
            .await
            .expect(200);
        let mut by_hand = Vec::new();
        by_hand.extend(place(&s2, &fleet, "active", "op_resume_by_hand"));
        by_hand.extend(place(&s2, &fleet, "suspended", "op_suspend_by_hand"));
        exec(&app, &by_hand).await;
        app.post(&format!("/v1/accounts/{fleet}/unsuspend"), &parent.key, json!({}))
            .await
            .expect(200);
        let now = sims(&app, &parent).await;
        assert_eq!(status_of(&now, &s1), "active");
        assert_eq!(status_of(&now, &s2), "suspended");
        assert_history_complete(&app, &parent.id).await;

        // A plan that resumes on a suspension fails closed: nothing changes.
        app.deactivate_policy(Some(&parent), &follow).await.expect(200);
        app.install_policy(Some(&parent), "confused", "cascade", Code::Rhai(RESUME_ON_SUSPEND), "enforce")
            .await;
        let refused = app
            .post(&format!("/v1/accounts/{fleet}/suspend"), &parent.key, json!({}))
            .await
            .expect_problem(500, "policy_failed");
        assert!(
            refused.to_string().contains("applies on a reactivation"),
            "{refused}"
        );
        let account = app.get(&format!("/v1/accounts/{fleet}"), &parent.key).await.expect(200);
        assert_eq!(account["status"], "active");
        assert_eq!(sims(&app, &parent).await, now);
    }

    async fn a_platform_cascade_suspends_the_sims_of_a_whole_tree(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let a = active_sub(&app, &parent, "Alpha", "alpha@acme.example").await;
        let b = active_sub(&app, &parent, "Beta", "beta@acme.example").await;
        let ids = provision_sims(&app, &parent, 4).await;
        let mut setup = Vec::new();
        setup.extend(place(&ids[0], &a, "active", "op_setup"));
        setup.extend(place(&ids[1], &b, "active", "op_setup"));
        setup.extend(place(&ids[2], &parent.id, "active", "op_setup"));
        exec(&app, &setup).await;
        // The default's plan, with SIMs following it.
        let platform = r#"
            fn evaluate(hook, input) {
                switch input.event {
                    "parent.suspended" => #{ subaccounts: #{ by_status: #{ active: "suspended", invited: "suspended" } },
                                             resources: "suspend" },
                    "parent.unsuspended" => #{ subaccounts: #{ by_status: #{ suspended_by_parent: "restore" } },
                                               resources: "resume" },
                    _ => #{}
                }
            }"#;
        app.install_policy(None, "sims follow the tree", "cascade", Code::Rhai(platform), "enforce")
            .await;
        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({}))
            .await
            .expect(200);
        let now = sims_in_db(&app, &parent).await;
        assert_eq!(status_of(&now, &ids[0]), "suspended");
        assert_eq!(status_of(&now, &ids[1]), "suspended");
        assert_eq!(status_of(&now, &ids[2]), "active", "the parent's own pool is no sub-account");
        assert_eq!(status_of(&now, &ids[3]), "inventory");
        assert_eq!(
            last_history(&app, &ids[1]).await[4],
            Some(format!("cascade:parent.suspended:{}", parent.id))
        );
        assert_history_complete(&app, &parent.id).await;

        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({}))
            .await
            .expect(200);
        let now = sims(&app, &parent).await;
        assert_eq!(status_of(&now, &ids[0]), "active");
        assert_eq!(status_of(&now, &ids[1]), "active");
        for sub in [&a, &b] {
            let account = app.get(&format!("/v1/accounts/{sub}"), &parent.key).await.expect(200);
            assert_eq!(account["status"], "active");
        }
        assert_history_complete(&app, &parent.id).await;
    }

    async fn the_default_cascade_keeps_sims(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let fleet = active_sub(&app, &parent, "Fleet", "fleet@acme.example").await;
        let ids = provision_sims(&app, &parent, 1).await;
        exec(&app, &place(&ids[0], &fleet, "active", "op_setup")).await;
        app.post(&format!("/v1/accounts/{fleet}/suspend"), &parent.key, json!({}))
            .await
            .expect(200);
        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({}))
            .await
            .expect(200);
        assert_eq!(status_of(&sims_in_db(&app, &parent).await, &ids[0]), "active");
        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({}))
            .await
            .expect(200);
        app.post(&format!("/v1/accounts/{fleet}/unsuspend"), &parent.key, json!({}))
            .await
            .expect(200);
        assert_eq!(status_of(&sims(&app, &parent).await, &ids[0]), "active");
        assert_history_complete(&app, &parent.id).await;
    }
}

both_backends! {
    async fn a_tree_of_thousands_of_sims_is_suspended_set_based(app) {
        const SUBS: usize = 500;
        const PER_SUB: usize = 10;
        let parent = app.parent("acme.example", "enterprise").await;
        let raw: Vec<RawSub> = (0..SUBS)
            .map(|i| RawSub {
                name: format!("Fleet {i}"),
                email: format!("fleet{i}@acme.example"),
                status: "active",
            })
            .collect();
        app.insert_subaccounts(&parent.id, &raw).await;
        let subs: Vec<String> = app
            .query_rows("SELECT id FROM accounts WHERE parent_id = $1 ORDER BY id", &parent.id)
            .await
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        assert_eq!(subs.len(), SUBS);
        let ids = iccids("8945", 1, (SUBS * PER_SUB) as u64);
        app.provision(&parent, "sim", &ids, Value::Null).await;
        // PER_SUB active SIMs into each sub-account, as operations would.
        let p = &parent.id;
        let mut setup: Vec<String> = subs
            .iter()
            .map(|s| {
                format!(
                    "UPDATE resources SET account_id = '{s}', status = 'active', seq = seq + 1
                      WHERE id IN (SELECT id FROM resources WHERE account_id = '{p}' AND kind = 'sim'
                                   ORDER BY id LIMIT {PER_SUB})"
                )
            })
            .collect();
        setup.push(format!(
            "INSERT INTO resource_history
                 (resource_id, seq, event, from_account_id, account_id, from_status, status,
                  operation_id, at)
             SELECT r.id, r.seq, 'transfer', '{p}', r.account_id, 'inventory', r.status, 'op_setup', 1
               FROM resources r
              WHERE r.tree_id = '{p}' AND NOT EXISTS
                    (SELECT 1 FROM resource_history h WHERE h.resource_id = r.id AND h.seq = r.seq)"
        ));
        exec(&app, &setup).await;
        let platform = r#"
            fn evaluate(hook, input) {
                switch input.event {
                    "parent.suspended" => #{ subaccounts: #{ by_status: #{ active: "suspended" } }, resources: "suspend" },
                    "parent.unsuspended" => #{ subaccounts: #{ by_status: #{ suspended_by_parent: "restore" } }, resources: "resume" },
                    _ => #{}
                }
            }"#;
        app.install_policy(None, "sims follow the tree", "cascade", Code::Rhai(platform), "enforce")
            .await;
        assert_eq!(count(&app, &parent, "active").await, (SUBS * PER_SUB).to_string());
        let started = std::time::Instant::now();
        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({}))
            .await
            .expect(200);
        let suspend = started.elapsed();
        assert_eq!(count(&app, &parent, "suspended").await, (SUBS * PER_SUB).to_string());
        assert_history_complete(&app, &parent.id).await;
        let started = std::time::Instant::now();
        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({}))
            .await
            .expect(200);
        let resume = started.elapsed();
        assert_eq!(count(&app, &parent, "active").await, (SUBS * PER_SUB).to_string());
        assert_history_complete(&app, &parent.id).await;
        eprintln!(
            "{:?}: {SUBS} sub-accounts, {} SIMs: suspended in {suspend:?}, resumed in {resume:?}",
            app.backend,
            SUBS * PER_SUB
        );
    }
}
