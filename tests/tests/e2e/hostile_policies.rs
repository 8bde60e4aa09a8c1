//! Hostile customer policies, in both runtimes: each one fails closed within
//! its deadline with an error naming the policy, while the server keeps
//! answering other requests, during and after.
//!
//! The hostile policies (tests/fixtures/hostile.rhai and hostile.wasm, built
//! from plugins/testing/hostile) behave on the upload samples and misbehave
//! when a sub-account name carries a marker, so they pass validation and
//! break at evaluation.

use std::time::{Duration, Instant};

use canopy_e2e::{Backend, Code, Parent, TestApp, repo_file, spawn_app};
use serde_json::json;

/// Generous next to the 100 ms evaluation deadline: debug builds and a
/// loaded 2-core machine are slow, but an unbounded guest would never end.
const FAILS_WITHIN: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Runtime {
    Rhai,
    Wasm,
}

async fn hostile(backend: Backend, runtime: Runtime, marker: &str) {
    let app = spawn_app(backend).await;
    let acme = app.parent("acme.example", "reseller").await;
    let wasm = repo_file("tests/fixtures/hostile.wasm");
    let rhai = String::from_utf8(repo_file("tests/fixtures/hostile.rhai")).unwrap();
    let code = match runtime {
        Runtime::Rhai => Code::Rhai(&rhai),
        Runtime::Wasm => Code::Wasm(&wasm),
    };
    let id = app
        .install_policy(
            Some(&acme),
            "hostile",
            "subaccount.validate",
            code,
            "enforce",
        )
        .await;

    // Another client keeps reading while the hostile policy runs.
    let reader = {
        let url = format!("{}/v1/accounts/{}", app.base, acme.id);
        let key = acme.key.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut answered = 0;
            let until = Instant::now() + Duration::from_millis(400);
            while Instant::now() < until {
                let reply = client.get(&url).bearer_auth(&key).send().await.unwrap();
                assert_eq!(reply.status(), 200);
                answered += 1;
            }
            answered
        })
    };
    let started = Instant::now();
    let failed = app
        .try_sub(
            &acme,
            &format!("Team {marker}"),
            "team@acme.example",
            json!({}),
        )
        .await
        .expect_problem(500, "policy_failed");
    let took = started.elapsed();
    assert_eq!(failed["policy"]["id"], id.as_str(), "{failed}");
    assert!(failed["detail"].as_str().unwrap().contains(&id), "{failed}");
    assert!(took < FAILS_WITHIN, "{marker} took {took:?}");
    assert!(
        reader.await.unwrap() > 0,
        "other requests were answered meanwhile"
    );

    // Nothing was created, and the host serves normally afterwards, the
    // same policy included (a broken instance is never reused).
    let list = app
        .get(&format!("/v1/accounts/{}/subaccounts", acme.id), &acme.key)
        .await
        .expect(200);
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    app.sub(&acme, "Calm team", "calm@acme.example").await;
    app.try_sub(
        &acme,
        &format!("Again {marker}"),
        "again@acme.example",
        json!({}),
    )
    .await
    .expect_problem(500, "policy_failed");
    app.sub(&acme, "Calm team 2", "calm2@acme.example").await;

    // The decision log records the failure against the policy.
    let path = format!(
        "/v1/accounts/{}/decisions?outcome=error&policy_id={id}",
        acme.id
    );
    let decision = app.await_decision(&path, &acme.key, |_| true).await;
    assert_eq!(decision["hook"], "subaccount.validate");
}

macro_rules! hostile_cases {
    ($($case:ident => $marker:literal),* $(,)?) => {
        $(
            mod $case {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn rhai() {
                    hostile(Backend::Sqlite, Runtime::Rhai, $marker).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn wasm() {
                    hostile(Backend::Sqlite, Runtime::Wasm, $marker).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn wasm_on_postgres() {
                    hostile(Backend::Postgres, Runtime::Wasm, $marker).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn rhai_on_postgres() {
                    hostile(Backend::Postgres, Runtime::Rhai, $marker).await;
                }
            }
        )*
    };
}

hostile_cases! {
    endless_loop => "hostile:loop",
    memory_growth => "hostile:memory",
    deep_recursion => "hostile:recursion",
    huge_output => "hostile:output",
    trap => "hostile:trap",
    malformed_output => "hostile:malformed",
}

async fn refused_at_upload(app: &TestApp, acme: &Parent, wat: &str) -> String {
    let bytes = wat::parse_str(wat).unwrap();
    let refused = app
        .upload_policy(Some(acme), "importer", "authorize", Code::Wasm(&bytes))
        .await
        .expect_problem(422, "validation_failed");
    refused["errors"][0]["reason"].as_str().unwrap().to_string()
}

/// No capability of any kind: neither WASI nor any other host function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_importing_anything_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let acme = app.parent("acme.example", "reseller").await;
    let wasi = refused_at_upload(
        &app,
        &acme,
        r#"(component
            (import "wasi:filesystem/preopens@0.2.0" (instance
                (export "get-directories" (func (result (list string))))))
        )"#,
    )
    .await;
    assert!(
        wasi.contains("imports `wasi:filesystem/preopens@0.2.0`"),
        "{wasi}"
    );
    let host_fn = refused_at_upload(
        &app,
        &acme,
        r#"(component
            (import "now" (func (result u64)))
        )"#,
    )
    .await;
    assert!(host_fn.contains("imports `now`"), "{host_fn}");
    // A component without the `evaluate` export is refused too.
    let no_export = refused_at_upload(&app, &acme, "(component)").await;
    assert!(no_export.contains("must export `evaluate"), "{no_export}");
}
