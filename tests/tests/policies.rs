//! Default policies replaced from `--policies DIR`: a policy that errors or
//! runs away fails closed, names itself, and the server keeps serving.

use std::path::Path;

use canopy_e2e::{Backend, Options, spawn_app_with};
use serde_json::json;

/// The shipped defaults, with `authorize.rhai` replaced by `authorize`.
fn policies_with(authorize: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for file in [
        "subaccount_validate.rhai",
        "visibility.rhai",
        "cascade.rhai",
    ] {
        std::fs::copy(shipped.join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(dir.path().join("authorize.rhai"), authorize).unwrap();
    dir
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
