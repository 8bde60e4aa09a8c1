//! The HTTP surface itself: every refusal is problem+json with a stable code
//! (query strings, path parameters, methods, unknown routes, bodies), the
//! headers every response carries, and connections that never finish their
//! request.

use std::time::{Duration, Instant};

use canopy_e2e::{Backend, Options, Reply, TestApp, both_backends, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A 422 whose `errors` name `field` (and whose reason is not empty).
#[track_caller]
fn names_field(reply: Reply, field: &str) -> Value {
    let body = reply.expect_problem(422, "validation_failed");
    let errors = body["errors"].as_array().expect("a 422 lists its errors");
    let error = errors
        .iter()
        .find(|e| e["field"] == field)
        .unwrap_or_else(|| panic!("no error names `{field}`: {body}"));
    assert!(!error["reason"].as_str().unwrap_or("").is_empty(), "{body}");
    error.clone()
}

#[track_caller]
fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no `{name}` header: {:?}", reply.headers))
}

both_backends! {
    async fn query_strings_are_checked_and_named(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/subaccounts", parent.id);
        let limit = names_field(app.get(&format!("{path}?limit=abc"), &parent.key).await, "limit");
        assert!(limit["reason"].as_str().unwrap().contains("integer"), "{limit}");
        let bogus = names_field(app.get(&format!("{path}?bogus=1"), &parent.key).await, "bogus");
        assert!(bogus["reason"].as_str().unwrap().contains("remove"), "{bogus}");
        // The same on a plain paginated list and on the operator's lists.
        names_field(app.get(&format!("/v1/accounts/{}/members?bogus=1", parent.id), &parent.key).await, "bogus");
        names_field(app.get("/v1/operator/accounts?limit=abc", &app.operator_token).await, "limit");
        names_field(app.get("/v1/operator/decisions?shadow_disagrees=maybe", &app.operator_token).await, "shadow_disagrees");
        // Routes that take no query at all refuse one too.
        names_field(app.get(&format!("/v1/accounts/{}?bogus=1", parent.id), &parent.key).await, "bogus");
        names_field(app.get(&format!("/v1/accounts/{}/balance?currency=EUR", parent.id), &parent.key).await, "currency");
        // A good query still works.
        app.get(&format!("{path}?limit=5&status=active"), &parent.key).await.expect(200);
        app.get(&format!("/v1/accounts/{}/decisions?hook=authorize&outcome=allow", parent.id), &parent.key).await.expect(200);
    }

    async fn path_parameters_are_checked_and_named(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/policies/pol_x/versions/abc/activate", parent.id);
        let version = names_field(app.post(&path, &parent.key, json!({"mode": "enforce"})).await, "version");
        assert!(version["reason"].as_str().unwrap().contains("integer"), "{version}");
        names_field(app.post("/v1/operator/policies/pol_x/versions/abc/activate", &app.operator_token, json!({"mode": "enforce"})).await, "version");
    }

    async fn wrong_methods_and_unknown_routes_are_problems(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let wrong = app.request(Method::PUT, &format!("/v1/accounts/{}", parent.id), Some(&parent.key), Some(json!({}))).await;
        let allow = header(&wrong, "allow").to_string();
        for method in ["GET", "PATCH", "DELETE"] {
            assert!(allow.contains(method), "Allow: {allow}");
        }
        wrong.expect_problem(405, "method_not_allowed");
        let wrong = app.request(Method::DELETE, "/v1/operator/ledger/check", Some(&app.operator_token), None).await;
        assert!(header(&wrong, "allow").contains("GET"));
        wrong.expect_problem(405, "method_not_allowed");
        app.request(Method::GET, "/v1/nowhere", Some(&parent.key), None).await.expect_problem(404, "not_found");
        app.request(Method::POST, "/nowhere/at/all", None, Some(json!({}))).await.expect_problem(404, "not_found");
    }

    async fn body_errors_name_the_field_and_say_what_to_send(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/operator/accounts/{}/topups", parent.id);
        let amount = names_field(app.op_post(&path, json!({"amount": 150})).await, "amount");
        let reason = amount["reason"].as_str().unwrap();
        assert!(reason.contains("decimal string") && reason.contains("\"150.00\""), "{amount}");
        assert!(!reason.contains("line 1"), "no parser positions: {amount}");
        let missing = names_field(app.op_post(&path, json!({})).await, "amount");
        assert!(missing["reason"].as_str().unwrap().contains("required"), "{missing}");
        let unknown = names_field(app.op_post(&path, json!({"amount": "1", "amont": "1"})).await, "amont");
        assert!(unknown["reason"].as_str().unwrap().contains("remove"), "{unknown}");
        // Nested fields are named by their path; wrong types say the type.
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({"invite": "yes"})).await;
        let invite = names_field(sub, "invite");
        assert!(invite["reason"].as_str().unwrap().contains("true or false"), "{invite}");
        let credit = app.try_sub(&parent, "Team", "team@acme.example", json!({"credit": {"mode": "assigned_budget", "initial_credit": 5}})).await;
        let initial = names_field(credit, "credit.initial_credit");
        assert!(initial["reason"].as_str().unwrap().contains("decimal string"), "{initial}");
        let syntax = app
            .request_with(Method::POST, &path, Some(&app.operator_token), None, &[("content-type", "application/json")])
            .await;
        names_field(syntax, "body");
    }

    async fn responses_carry_no_store_and_nosniff(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let ok = app.get(&format!("/v1/accounts/{}", parent.id), &parent.key).await;
        assert_eq!(header(&ok, "cache-control"), "no-store");
        assert_eq!(header(&ok, "x-content-type-options"), "nosniff");
        ok.expect(200);
        let refused = app.get(&format!("/v1/accounts/{}", parent.id), "ck_unknown").await;
        assert_eq!(header(&refused, "cache-control"), "no-store");
        assert_eq!(header(&refused, "x-content-type-options"), "nosniff");
        refused.expect_problem(401, "unauthenticated");
        let missing = app.request(Method::GET, "/v1/nowhere", None, None).await;
        assert_eq!(header(&missing, "cache-control"), "no-store");
        assert_eq!(header(&missing, "x-content-type-options"), "nosniff");
        let health = app.request(Method::GET, "/healthz", None, None).await;
        assert_eq!(header(&health, "x-content-type-options"), "nosniff");
    }
}

/// Runs `scenario(backend)` (which starts its own server with its own
/// options) as `scenario::sqlite` and `scenario::postgres`.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(canopy_e2e::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(canopy_e2e::Backend::Postgres).await
            }
        }
    };
}

/// Opens a raw connection and sends half a request line.
async fn half_a_request(app: &TestApp) -> tokio::net::TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream.write_all(b"GET /healthz HT").await.expect("writes");
    stream
}

async fn slow_headers_are_cut_off(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            header_read_timeout: Some(Duration::from_secs(1)),
            ..Options::default()
        },
    )
    .await;
    let mut stream = half_a_request(&app).await;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // Whatever the server says first (a 408 is fine), it closes.
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection is still open after 5 s");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "closed only after the timeout"
    );
    // The server still answers others.
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}

on_both_backends!(slow_headers_are_cut_off);

async fn shutdown_drains_for_a_bounded_time(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            header_read_timeout: Some(Duration::from_secs(60)),
            shutdown_drain: Some(Duration::from_secs(1)),
            ..Options::default()
        },
    )
    .await;
    let _stream = half_a_request(&app).await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    let started = Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} on a connection that never sent its headers",
        started.elapsed()
    );
}

on_both_backends!(shutdown_drains_for_a_bounded_time);
