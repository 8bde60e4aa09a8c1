//! Customer and platform policies over HTTP: upload (Rhai and Wasm),
//! validation, activation, shadow mode, rollback, the decision log, the
//! operator's hook setting, and propagation between hosts.

use canopy_e2e::{Backend, Code, Options, both_backends, repo_file, spawn_app_with};
use serde_json::{Value, json};

const ALLOWLIST_RHAI: &str = include_str!("../../../policies/examples/domain_allowlist.rhai");

fn allowlist_wasm() -> Vec<u8> {
    repo_file("policies/examples/domain_allowlist.wasm")
}

/// A validation policy refusing names that contain `word`.
fn refuse_word(word: &str) -> String {
    format!(
        r#"fn evaluate(hook, input) {{
            let n = input.fields.name;
            if type_of(n) == "string" && n.to_lower().contains("{word}") {{
                return #{{ decision: "deny", field: "name", reason: "no {word} here" }};
            }}
            #{{ decision: "allow" }}
        }}"#
    )
}

/// An authorize policy denying `action` to everyone.
fn deny_action(action: &str) -> String {
    format!(
        r#"fn evaluate(hook, input) {{
            if input.action == "{action}" {{
                return #{{ decision: "deny", reason: "{action} is closed" }};
            }}
            #{{ decision: "allow" }}
        }}"#
    )
}

fn policy_of(problem: &Value) -> &str {
    problem["policy"]["id"].as_str().unwrap_or("")
}

both_backends! {
    async fn a_customer_policy_decides_only_inside_its_own_tree(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let other = app.parent("other.example", "reseller").await;

        let up = app
            .upload_policy(Some(&acme), "allow-list", "subaccount.validate", Code::Rhai(ALLOWLIST_RHAI))
            .await
            .expect(201);
        assert_eq!(up["status"], "inactive");
        assert_eq!(up["version"], 1);
        // Stored, not yet in force.
        app.sub(&acme, "Load Test 1", "t1@acme.example").await;

        let rhai_id = up["id"].as_str().unwrap().to_string();
        app.activate_policy(Some(&acme), &rhai_id, 1, "enforce").await.expect(200);
        let refused = app
            .try_sub(&acme, "Load Test 2", "t2@acme.example", json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(policy_of(&refused), rhai_id);
        assert_eq!(refused["errors"][0]["field"], "name");
        let refused = app
            .try_sub(&acme, "Ops", "ops@elsewhere.example", json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(refused["errors"][0]["field"], "email");
        app.sub(&acme, "Contest team", "contest@acme-corp.example").await;

        // Another customer's tree is untouched.
        app.sub(&other, "Load Test 3", "t3@other.example").await;

        // The same rule as a Wasm component decides the next request.
        app.deactivate_policy(Some(&acme), &rhai_id).await.expect(200);
        let wasm = allowlist_wasm();
        let wasm_id = app
            .install_policy(Some(&acme), "allow-list (wasm)", "subaccount.validate", Code::Wasm(&wasm), "enforce")
            .await;
        let refused = app
            .try_sub(&acme, "QA test", "qa@acme.example", json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(policy_of(&refused), wasm_id);
        app.sub(&other, "QA test", "qa@other.example").await;

        // The decision log names the policy, its version, mode and outcome.
        let path = format!(
            "/v1/accounts/{}/decisions?hook=subaccount.validate&outcome=deny&policy_id={wasm_id}",
            acme.id
        );
        let decision = app.await_decision(&path, &acme.key, |_| true).await;
        assert_eq!(decision["action"], "subaccount.create");
        let entry = decision["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == wasm_id.as_str())
            .cloned()
            .expect("the policy is in the decision");
        assert_eq!(entry["version"], 1);
        assert_eq!(entry["mode"], "enforce");
        assert_eq!(entry["outcome"], "deny");
        assert!(entry["duration_us"].as_u64().is_some());
        // The other tree's log holds none of it.
        let theirs = app
            .get(&format!("/v1/accounts/{}/decisions?policy_id={wasm_id}", other.id), &other.key)
            .await
            .expect(200);
        assert_eq!(theirs["data"].as_array().unwrap().len(), 0);

        let listed = app.get(&format!("/v1/accounts/{}/policies", acme.id), &acme.key).await.expect(200);
        let statuses: Vec<(String, String)> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap().into(), p["status"].as_str().unwrap().into()))
            .collect();
        assert!(statuses.contains(&(rhai_id.clone(), "inactive".into())), "{listed}");
        assert!(statuses.contains(&(wasm_id.clone(), "enforce".into())), "{listed}");
        // Not visible from the other tree.
        app.get(&format!("/v1/accounts/{}/policies/{wasm_id}", other.id), &other.key)
            .await
            .expect_problem(404, "not_found");
    }

    async fn shadow_mode_changes_no_outcome_and_logs_the_disagreement(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let id = app
            .install_policy(Some(&acme), "no new teams", "authorize", Code::Rhai(&deny_action("subaccount.create")), "shadow")
            .await;
        let created = app.sub(&acme, "Team", "team@acme.example").await;
        let path = format!("/v1/accounts/{}/decisions?hook=authorize&shadow_disagrees=true", acme.id);
        let decision = app
            .await_decision(&path, &acme.key, |d| d["action"] == "subaccount.create")
            .await;
        assert_eq!(decision["outcome"], "allow", "the enforced outcome stands");
        let shadow = decision["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id.as_str())
            .cloned()
            .unwrap();
        assert_eq!(shadow["mode"], "shadow");
        assert_eq!(shadow["outcome"], "deny");
        assert_eq!(shadow["reason"], "subaccount.create is closed");
        // Where the shadow agrees, no disagreement is logged.
        app.get(&format!("/v1/accounts/{}", created.id), &acme.key).await.expect(200);
        let agreeing = format!("/v1/accounts/{}/decisions?hook=authorize&action=account.read", acme.id);
        let read = app.await_decision(&agreeing, &acme.key, |_| true).await;
        assert_eq!(read["shadow_disagrees"], false);

        // The same version enforced denies.
        app.activate_policy(Some(&acme), &id, 1, "enforce").await.expect(200);
        let denied = app
            .try_sub(&acme, "Team 2", "team2@acme.example", json!({}))
            .await
            .expect_problem(403, "policy_denied");
        assert_eq!(policy_of(&denied), id);
    }

    async fn rollback_restores_the_old_behaviour(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let v1 = app
            .upload_policy(Some(&acme), "names", "subaccount.validate", Code::Rhai(&refuse_word("alpha")))
            .await
            .expect(201);
        let id = v1["id"].as_str().unwrap().to_string();
        let v2 = app
            .upload_policy(Some(&acme), "Names", "subaccount.validate", Code::Rhai(&refuse_word("beta")))
            .await
            .expect(201);
        assert_eq!(v2["id"], id.as_str(), "the same name (any case) is the same policy");
        assert_eq!(v2["version"], 2);

        app.activate_policy(Some(&acme), &id, 2, "enforce").await.expect(200);
        app.try_sub(&acme, "Beta team", "b1@acme.example", json!({})).await.expect_problem(422, "validation_failed");
        app.sub(&acme, "Alpha team", "a1@acme.example").await;

        let rolled = app.activate_policy(Some(&acme), &id, 1, "enforce").await.expect(200);
        assert_eq!(rolled["active_version"], 1);
        assert_eq!(rolled["versions"].as_array().unwrap().len(), 2);
        let refused = app
            .try_sub(&acme, "Alpha two", "a2@acme.example", json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(refused["policy"]["version"], 1);
        app.sub(&acme, "Beta two", "b2@acme.example").await;

        app.activate_policy(Some(&acme), &id, 3, "enforce").await.expect_problem(404, "not_found");
        app.activate_policy(Some(&acme), &id, 1, "sometimes").await.expect_problem(422, "validation_failed");
        // A new version may not change the hook.
        app.upload_policy(Some(&acme), "names", "authorize", Code::Rhai(&deny_action("x")))
            .await
            .expect_problem(409, "conflict");
    }

    async fn bad_uploads_are_refused_with_the_reason(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let syntax = app
            .upload_policy(Some(&acme), "broken", "authorize", Code::Rhai("fn evaluate(hook, input) { let }"))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(syntax["errors"][0]["field"], "source");
        assert!(syntax["errors"][0]["reason"].as_str().unwrap().contains("line 1"), "{syntax}");

        let not_wasm = app
            .upload_policy(Some(&acme), "junk", "authorize", Code::Wasm(b"\0asm not really"))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(not_wasm["errors"][0]["field"], "module");

        // A component importing WASI is refused: policies may import nothing.
        let importing = wat::parse_str(
            r#"(component
                (import "wasi:cli/environment@0.2.0" (instance
                    (export "get-arguments" (func (result (list string))))))
            )"#,
        )
        .unwrap();
        let refused = app
            .upload_policy(Some(&acme), "wasi", "authorize", Code::Wasm(&importing))
            .await
            .expect_problem(422, "validation_failed");
        let reason = refused["errors"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("imports `wasi:cli/environment@0.2.0`"), "{reason}");

        // Compiles, but answers the samples with something malformed.
        let malformed = app
            .upload_policy(Some(&acme), "vague", "authorize", Code::Rhai(r#"fn evaluate(hook, input) { #{ decision: "perhaps" } }"#))
            .await
            .expect_problem(422, "validation_failed");
        assert!(malformed["detail"].as_str().unwrap().contains("sample input 1"), "{malformed}");

        // Cascade is closed to customers unless the operator opens it.
        app.upload_policy(Some(&acme), "cascade", "cascade", Code::Rhai(include_str!("../../../policies/cascade.rhai")))
            .await
            .expect_problem(403, "forbidden");
        app.upload_policy(Some(&acme), "x", "nope", Code::Rhai("fn evaluate(h, i) { 1 }"))
            .await
            .expect_problem(422, "validation_failed");
        let missing = app
            .post(&format!("/v1/accounts/{}/policies", acme.id), &acme.key, json!({"name": "x", "hook": "authorize", "runtime": "rhai"}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(missing["errors"][0]["field"], "source");

        // Nothing was stored.
        let listed = app.get(&format!("/v1/accounts/{}/policies", acme.id), &acme.key).await.expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 0);

        // Only a parent admin manages its tree's policies.
        let sub = app.sub(&acme, "Team", "team@acme.example").await;
        let sub_key = app.accept(sub.invitation.as_deref().unwrap(), "Sub Admin", "a long password 1").await;
        app.upload_policy(None, "x", "authorize", Code::Rhai(&deny_action("x"))).await.expect(201);
        app.post(&format!("/v1/accounts/{}/policies", sub.id), &sub_key, json!({"name": "x", "hook": "authorize", "runtime": "rhai", "source": deny_action("x")}))
            .await
            .expect_problem(403, "forbidden");
        app.post("/v1/operator/policies", &acme.key, json!({"name": "x", "hook": "authorize", "runtime": "rhai", "source": deny_action("x")}))
            .await
            .expect_problem(403, "forbidden");
    }

    async fn customer_policies_never_lock_out_the_operator_or_policy_management(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let deny_all = r#"fn evaluate(hook, input) { #{ decision: "deny", reason: "closed for maintenance" } }"#;
        let id = app
            .install_policy(Some(&acme), "deny all", "authorize", Code::Rhai(deny_all), "enforce")
            .await;
        app.get(&format!("/v1/accounts/{}", acme.id), &acme.key)
            .await
            .expect_problem(403, "policy_denied");
        // The operator still acts on the account.
        app.get(&format!("/v1/operator/accounts/{}", acme.id), &app.operator_token.clone())
            .await
            .expect(200);
        // And the customer can still undo its own policy.
        app.deactivate_policy(Some(&acme), &id).await.expect(200);
        app.get(&format!("/v1/accounts/{}", acme.id), &acme.key).await.expect(200);
    }

    async fn platform_policies_apply_to_every_tree(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let other = app.parent("other.example", "enterprise").await;
        let id = app
            .install_policy(None, "no forbidden names", "subaccount.validate", Code::Rhai(&refuse_word("forbidden")), "enforce")
            .await;
        for (parent, email) in [(&acme, "f@acme.example"), (&other, "f@other.example")] {
            let refused = app
                .try_sub(parent, "Forbidden team", email, json!({}))
                .await
                .expect_problem(422, "validation_failed");
            assert_eq!(policy_of(&refused), id);
        }
        let listed = app.get("/v1/operator/policies", &app.operator_token.clone()).await.expect(200);
        assert_eq!(listed["data"][0]["status"], "enforce");
        let decision = app
            .await_decision("/v1/operator/decisions?outcome=deny&hook=subaccount.validate", &app.operator_token.clone(), |_| true)
            .await;
        assert_eq!(decision["policies"].as_array().unwrap().last().unwrap()["id"], id.as_str());
        app.deactivate_policy(None, &id).await.expect(200);
        app.sub(&acme, "Forbidden team", "f@acme.example").await;
    }

    async fn the_operator_decides_which_hooks_customers_may_use(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let op = app.operator_token.clone();
        let settings = app.get("/v1/operator/policy-settings", &op).await.expect(200);
        assert_eq!(settings["customer_hooks"], json!(["authorize", "subaccount.validate", "visibility"]));
        app.install_policy(Some(&acme), "names", "subaccount.validate", Code::Rhai(&refuse_word("gamma")), "enforce")
            .await;
        app.try_sub(&acme, "Gamma", "g@acme.example", json!({})).await.expect_problem(422, "validation_failed");

        app.request(reqwest::Method::PUT, "/v1/operator/policy-settings", Some(&op), Some(json!({"customer_hooks": ["authorize"]})))
            .await
            .expect(200);
        // The active validation policy no longer applies, and no new one can be added.
        app.sub(&acme, "Gamma", "g@acme.example").await;
        app.upload_policy(Some(&acme), "more names", "subaccount.validate", Code::Rhai(&refuse_word("delta")))
            .await
            .expect_problem(403, "forbidden");
        app.request(reqwest::Method::PUT, "/v1/operator/policy-settings", Some(&op), Some(json!({"customer_hooks": ["autorize"]})))
            .await
            .expect_problem(422, "validation_failed");
        app.request(reqwest::Method::PUT, "/v1/operator/policy-settings", Some(&acme.key), Some(json!({"customer_hooks": []})))
            .await
            .expect_problem(403, "forbidden");
    }
}

/// A policy activated through one host is enforced by another host on the
/// same database within 2 seconds, without a restart.
async fn activation_reaches_every_host(backend: Backend) {
    let first = canopy_e2e::spawn_app(backend).await;
    let second = spawn_app_with(
        backend,
        Options {
            database_url: Some(first.database_url.clone()),
            ..Options::default()
        },
    )
    .await;
    let acme = first.parent("acme.example", "reseller").await;
    second.sub(&acme, "Omega one", "o1@acme.example").await;
    let id = first
        .install_policy(
            Some(&acme),
            "names",
            "subaccount.validate",
            Code::Rhai(&refuse_word("omega")),
            "enforce",
        )
        .await;
    let started = std::time::Instant::now();
    loop {
        let reply = second
            .try_sub(&acme, "Omega two", "o2@acme.example", json!({}))
            .await;
        if reply.status == 422 {
            assert_eq!(policy_of(&reply.body), id);
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "not enforced by the second host within 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Deactivation travels too.
    first.deactivate_policy(Some(&acme), &id).await.expect(200);
    let started = std::time::Instant::now();
    while second
        .try_sub(&acme, "Omega three", "o3@acme.example", json!({}))
        .await
        .status
        != 201
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "still enforced after 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_reaches_every_host_on_postgres() {
    activation_reaches_every_host(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_reaches_every_host_on_sqlite() {
    activation_reaches_every_host(Backend::Sqlite).await;
}

/// The decision log is bounded: past a tree's size its oldest decisions go, and
/// decisions older than the retention go too.
async fn the_decision_log_is_bounded(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            decisions_max_per_tree: Some(20),
            purge_every: Some(std::time::Duration::from_millis(200)),
            ..Options::default()
        },
    )
    .await;
    let acme = app.parent("acme.example", "reseller").await;
    for _ in 0..30 {
        app.get(&format!("/v1/accounts/{}", acme.id), &acme.key)
            .await
            .expect(200);
    }
    let op = app.operator_token.clone();
    let started = std::time::Instant::now();
    loop {
        let page = app
            .get("/v1/operator/decisions?limit=1000", &op)
            .await
            .expect(200);
        // The cap is per tree: count the tree's own decisions.
        let n = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["tree_id"] == acme.id.as_str())
            .count();
        if n <= 20 && n > 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{n} decisions kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Past the retention (30 days by default), everything goes.
    app.set_clock("2099-01-01T00:00:00Z").await;
    app.get(&format!("/v1/accounts/{}", acme.id), &acme.key)
        .await
        .expect(200);
    let started = std::time::Instant::now();
    loop {
        let page = app
            .get("/v1/operator/decisions?limit=1000", &op)
            .await
            .expect(200);
        let data = page["data"].as_array().unwrap();
        if data
            .iter()
            .all(|d| d["created_at"].as_str().unwrap().starts_with("2099"))
            && !data.is_empty()
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "old decisions kept: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_log_is_bounded_on_sqlite() {
    the_decision_log_is_bounded(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_log_is_bounded_on_postgres() {
    the_decision_log_is_bounded(Backend::Postgres).await;
}

/// On SQLite the decision log is a database file of its own (0600, beside
/// the database), so its batches never hold the ledger's write lock; the
/// decisions an older version kept in the database move there at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_log_has_its_own_file_on_sqlite() {
    use sqlx::Connection;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canopy.db");
    let url = format!("sqlite://{}", file.display());
    let options = Options {
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let app = spawn_app_with(Backend::Sqlite, options.clone()).await;
    let acme = app.parent("acme.example", "reseller").await;
    app.get(&format!("/v1/accounts/{}", acme.id), &acme.key)
        .await
        .expect(200);
    let op = app.operator_token.clone();
    let listed = |page: serde_json::Value| page["data"].as_array().unwrap().len();
    let started = std::time::Instant::now();
    while listed(app.get("/v1/operator/decisions", &op).await.expect(200)) == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await;

    let log_file = dir.path().join("canopy.db-decisions");
    let mode = std::fs::metadata(&log_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the decision log is private");
    let mut log = sqlx::SqliteConnection::connect(&format!("sqlite://{}", log_file.display()))
        .await
        .unwrap();
    assert!(
        count(&mut log).await > 0,
        "decisions are written to the log file"
    );
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    assert_eq!(count(&mut db).await, 0, "none in the database itself");
    // The log file's own migrations make the table the database's make.
    let log_schema = decisions_schema(&mut log).await;
    assert!(log_schema.len() > 10, "{log_schema:?}");
    assert_eq!(log_schema, decisions_schema(&mut db).await);
    log.close().await.unwrap();

    // A decision an older version wrote into the database itself (a
    // recent one: retention would purge an old one at start).
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    sqlx::query(
        "INSERT INTO decisions (id, tree_id, account_id, hook, action, outcome, reason, shadow_disagrees, policies, created_at)
         VALUES ('dec_from_before', $1, $1, 'authorize', 'account.read', 'allow', NULL, 0, '[]', $2)",
    )
    .bind(&acme.id)
    .bind(now_us)
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    let app = spawn_app_with(Backend::Sqlite, options).await;
    let page = app
        .get("/v1/operator/decisions?limit=1000", &op)
        .await
        .expect(200);
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "dec_from_before"),
        "the older decision moved to the log: {page}"
    );
    app.stop().await;
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    assert_eq!(count(&mut db).await, 0, "moved, not copied");
}

/// The `decisions` table's columns and indexes, one line each.
async fn decisions_schema(c: &mut sqlx::SqliteConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT 'column ' || name || ' ' || type || ' ' || \"notnull\" || ' ' || COALESCE(dflt_value, '-') || ' ' || pk
           FROM pragma_table_info('decisions')
         UNION ALL
         SELECT 'index ' || l.name || ' ' || i.seqno || ' ' || i.name
           FROM pragma_index_list('decisions') AS l, pragma_index_info(l.name) AS i
         ORDER BY 1",
    )
    .fetch_all(c)
    .await
    .unwrap()
}

async fn count(c: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
        .fetch_one(c)
        .await
        .unwrap()
}
