//! Default policies replaced from `--policies DIR`: a policy that errors or
//! runs away fails closed, names itself, and the server keeps serving.

use std::path::Path;

use canopy_e2e::{Backend, Options, spawn_app_with};
use serde_json::json;

/// The shipped defaults, with `file` replaced by `source`.
fn policies_replacing(file: &str, source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for shipped_file in [
        "authorize.rhai",
        "subaccount_validate.rhai",
        "visibility.rhai",
        "cascade.rhai",
    ] {
        std::fs::copy(shipped.join(shipped_file), dir.path().join(shipped_file)).unwrap();
    }
    std::fs::write(dir.path().join(file), source).unwrap();
    dir
}

/// The shipped defaults, with `authorize.rhai` replaced by `authorize`.
fn policies_with(authorize: &str) -> tempfile::TempDir {
    policies_replacing("authorize.rhai", authorize)
}

/// Allows everything but `subaccount.list`, where it misbehaves as told.
fn misbehaving(on_list: &str) -> String {
    format!(
        r#"fn deep(n) {{ deep(n + 1) }}
        fn evaluate(hook, input) {{
            if input.action == "subaccount.list" {{ {on_list} }}
            #{{ decision: "allow" }}
        }}"#
    )
}

async fn fails_closed(backend: Backend, on_list: &str) {
    let dir = policies_with(&misbehaving(on_list));
    let app = spawn_app_with(
        backend,
        Options {
            policies_dir: Some(dir.path().into()),
            ..Options::default()
        },
    )
    .await;
    let parent = app.parent("acme.example", "enterprise").await;
    let path = format!("/v1/accounts/{}/subaccounts", parent.id);
    let started = std::time::Instant::now();
    let (failing, serving) = tokio::join!(app.get(&path, &parent.key), async {
        // Other requests are answered meanwhile.
        app.get(&format!("/v1/accounts/{}", parent.id), &parent.key)
            .await
    });
    let body = failing.expect_problem(500, "policy_failed");
    assert_eq!(body["policy"]["id"], "default.authorize", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("default.authorize")
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fails within its deadline"
    );
    serving.expect(200);
    // And afterwards.
    app.sub(&parent, "Team", "team@acme.example").await;
    app.get(&format!("/v1/accounts/{}", parent.id), &parent.key)
        .await
        .expect(200);
}

macro_rules! hostile {
    ($($name:ident: $body:expr;)*) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { fails_closed(Backend::Sqlite, $body).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { fails_closed(Backend::Postgres, $body).await }
            }
        )*
    };
}

hostile! {
    script_error: r#"throw "policy bug";"#;
    endless_loop: "loop { }";
    deep_recursion: "deep(0);";
    memory_growth: r#"let s = "x"; loop { s += s; }"#;
    huge_output: r#"let m = #{}; for n in 0..5000 { m[`k${n}`] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; } return m;"#;
    unknown_function: "no_such_function(1);";
    malformed_output: r#"return #{ decision: "perhaps" };"#;
    wrong_type_output: "return 42;";
}

#[tokio::test]
async fn a_default_policy_that_does_not_compile_stops_the_start() {
    let dir = policies_with("fn evaluate(hook, input) { let }");
    let (url, _db) = canopy_e2e::fresh_database(Backend::Sqlite).await;
    let result = canopy::server::Host::open(canopy::server::Config {
        database_url: url,
        operator_token: Some("t".into()),
        policies_dir: Some(dir.path().into()),
        test_clock: false,
        settings: Default::default(),
        smtp: None,
        defaults_runtime: Default::default(),
        wasm_cache: None,
    })
    .await;
    let error = result.err().expect("refused");
    assert!(
        error.contains("authorize") && error.contains("does not compile"),
        "{error}"
    );
}

#[tokio::test]
async fn a_denying_policy_tightens_the_defaults() {
    let dir = policies_with(
        r#"fn evaluate(hook, input) {
        if input.action == "subaccount.create" { return #{ decision: "deny", reason: "no new teams this quarter" }; }
        #{ decision: "allow" }
    }"#,
    );
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            policies_dir: Some(dir.path().into()),
            ..Options::default()
        },
    )
    .await;
    let parent = app.parent("acme.example", "enterprise").await;
    let body = app
        .try_sub(&parent, "Team", "team@acme.example", json!({}))
        .await
        .expect_problem(403, "policy_denied");
    assert_eq!(body["policy"]["reason"], "no new teams this quarter");
}

/// A cascade policy that returns every budget when the parent is suspended.
async fn suspension_returns_budgets(backend: Backend) {
    let dir = policies_replacing(
        "cascade.rhai",
        r#"
        fn evaluate(hook, input) {
            let changes = [];
            let returns = [];
            if input.event == "parent.suspended" {
                for s in input.subaccounts {
                    if s.status == "active" { changes.push(#{ id: s.id, status: "suspended" }); }
                    if s.budget != () && s.budget != "0.00" { returns.push(#{ id: s.id, amount: "all" }); }
                }
            }
            if input.event == "parent.unsuspended" {
                for s in input.subaccounts {
                    if s.suspended_by == "parent" { changes.push(#{ id: s.id, status: s.previous_status }); }
                }
            }
            #{ subaccounts: changes, returns: returns, campaigns: "keep" }
        }"#,
    );
    let app = spawn_app_with(
        backend,
        Options {
            policies_dir: Some(dir.path().into()),
            ..Options::default()
        },
    )
    .await;
    let parent = app.parent("acme.example", "enterprise").await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": "100"}),
    )
    .await
    .expect(201);
    let sub = app
        .try_sub(
            &parent,
            "Team",
            "team@acme.example",
            json!({
                "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "40"}
            }),
        )
        .await
        .expect(201);
    let id = sub["id"].as_str().unwrap();
    app.op_post(
        &format!("/v1/operator/accounts/{}/suspend", parent.id),
        json!({}),
    )
    .await
    .expect(200);
    let tree = app
        .get(
            &format!(
                "/v1/operator/accounts/{}/subaccounts?status=suspended",
                parent.id
            ),
            &app.operator_token.clone(),
        )
        .await
        .expect(200);
    assert_eq!(tree["data"][0]["id"], id);
    app.op_post(
        &format!("/v1/operator/accounts/{}/unsuspend", parent.id),
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(
        app.money(id, &parent.key, "budget").await,
        "0.00",
        "the plan returned the budget"
    );
    assert_eq!(
        app.money(&parent.id, &parent.key, "balance").await,
        "100.00"
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_plan_may_return_budgets_sqlite() {
    suspension_returns_budgets(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_plan_may_return_budgets_postgres() {
    suspension_returns_budgets(Backend::Postgres).await;
}

/// The shipped defaults as Wasm components decide like the Rhai ones (the
/// differential test compares them on thousands of inputs; this runs them
/// in a real server).
async fn wasm_defaults_decide_like_the_rhai_ones(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            defaults_runtime: canopy::policy::DefaultsRuntime::Wasm,
            ..Options::default()
        },
    )
    .await;
    let parent = app.parent("acme.example", "reseller").await;
    let refused = app
        .try_sub(&parent, "Team", "team@gmail.com", json!({}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["policy"]["id"], "default.subaccount.validate");
    assert_eq!(refused["errors"][0]["field"], "email");
    let sub = app.sub(&parent, "Team", "team@acme.example").await;
    let sub_admin = app
        .accept(
            sub.invitation.as_deref().unwrap(),
            "Sub Admin",
            "a long password 1",
        )
        .await;
    // Reseller sub-accounts do not see their prices; their parent does
    // (visibility).
    let own = app
        .get(&format!("/v1/accounts/{}", sub.id), &sub_admin)
        .await
        .expect(200);
    assert!(own.get("prices").is_none(), "{own}");
    let by_parent = app
        .get(&format!("/v1/accounts/{}", sub.id), &parent.key)
        .await
        .expect(200);
    assert_eq!(by_parent["prices"]["sms"], "0.0075");
    // A basic user may not invite members (authorize).
    let basic = app
        .member(&sub_admin, &sub.id, "basic@acme.example", "basic")
        .await;
    let denied = app
        .post(
            &format!("/v1/accounts/{}/members", sub.id),
            &basic,
            json!({"email": "x@acme.example", "role": "basic"}),
        )
        .await
        .expect_problem(403, "policy_denied");
    assert_eq!(denied["policy"]["id"], "default.authorize");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_defaults_on_sqlite() {
    wasm_defaults_decide_like_the_rhai_ones(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_defaults_on_postgres() {
    wasm_defaults_decide_like_the_rhai_ones(Backend::Postgres).await;
}
