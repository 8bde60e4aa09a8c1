//! Operating Canopy: `/metrics`, request ids, the access log, the command
//! line's errors, start-up failures and `canopy operator ...`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use canopy_e2e::process::{Server, canopy, free_port};
use canopy_e2e::reqwest::Method;
use canopy_e2e::{Backend, both_backends, fresh_database};
use serde_json::json;

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

both_backends! {
    async fn metrics_count_routes_statuses_decisions_and_backlogs(app) {
        let parent = app.parent("acme.example", "reseller").await;
        let account = format!("/v1/accounts/{}", parent.id);
        for _ in 0..3 {
            app.get(&account, &parent.key).await.expect(200);
        }
        app.request(Method::GET, "/v1/nowhere", None, None).await.expect_problem(404, "not_found");
        // Methods of the client's own invention share one label, however many.
        for i in 0..3 {
            let method = Method::from_bytes(format!("INVENTED{i}{}", "X".repeat(200)).as_bytes()).unwrap();
            let status = reqwest::Client::new().request(method, format!("{}/v1/nowhere", app.base)).send().await.unwrap().status();
            assert!(status.is_client_error(), "{status}");
        }
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "10.00"}))
            .await
            .expect(201);
        // A sub-account's admin may not assign offers: an `authorize` denial.
        let sub = app.sub(&parent, "Client", "client@acme.example").await;
        let key = app.accept(sub.invitation.as_deref().unwrap(), "Client", "correct horse battery").await;
        app.request(Method::PUT, &format!("/v1/accounts/{}/offer", sub.id), Some(&key), Some(json!({"kind": "line", "offer_id": "off_none"})))
            .await
            .expect_problem(403, "policy_denied");

        let text = app.request(Method::GET, "/metrics", None, None).await.expect(200);
        let text = text.as_str().unwrap();
        let at = |series: &str| sample(text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert_eq!(at(r#"canopy_http_requests_total{method="GET",route="/v1/accounts/{id}",status="200"}"#), 3.0);
        assert_eq!(at(r#"canopy_http_request_duration_seconds_count{method="GET",route="/v1/accounts/{id}",status="200"}"#), 3.0);
        assert_eq!(at(r#"canopy_http_request_duration_seconds_bucket{method="GET",route="/v1/accounts/{id}",status="200",le="+Inf"}"#), 3.0);
        assert_eq!(at(r#"canopy_http_requests_total{method="GET",route="(unmatched)",status="404"}"#), 1.0);
        assert_eq!(at(r#"canopy_http_requests_total{method="PUT",route="/v1/accounts/{id}/offer",status="403"}"#), 1.0);
        assert!(!text.contains(&parent.id), "ids never become labels");
        assert!(!text.contains("INVENTED"), "a client's method never becomes a label");
        let other: f64 = text.lines().filter(|l| l.starts_with(r#"canopy_http_requests_total{method="OTHER""#)).map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap()).sum();
        assert_eq!(other, 3.0, "{text}");

        assert_eq!(at(r#"canopy_policy_decisions_total{hook="authorize",outcome="deny"}"#), 1.0);
        assert!(at(r#"canopy_policy_decisions_total{hook="authorize",outcome="allow"}"#) >= 3.0);
        assert_eq!(at(r#"canopy_policy_evaluations_total{hook="authorize",policy="default.authorize",mode="enforce",outcome="deny"}"#), 1.0);
        assert!(at(r#"canopy_policy_evaluation_seconds_count{hook="authorize",policy="default.authorize"}"#) >= 3.0);
        assert!(at(r#"canopy_policy_decision_seconds_count{hook="visibility"}"#) >= 1.0);

        assert_eq!(at("canopy_ledger_transfers"), 1.0);
        assert_eq!(at("canopy_ledger_accounts"), 2.0);
        assert_eq!(at("canopy_webhook_deliveries_pending"), 0.0);
        assert_eq!(at("canopy_operations_pending"), 0.0);
        assert_eq!(at("canopy_campaigns_pending"), 0.0);
        assert_eq!(at("canopy_notifications_undelivered"), 0.0);
        assert!(text.contains("# TYPE canopy_http_request_duration_seconds histogram"));
    }

    async fn a_request_id_is_taken_or_made_and_echoed(app) {
        let given = app
            .request_with(Method::GET, "/v1/accounts/acct_none", Some("not-a-token"), None, &[("x-request-id", "trace-42.a:b_c")])
            .await;
        assert_eq!(given.headers["x-request-id"], "trace-42.a:b_c");
        let problem = given.expect_problem(401, "unauthenticated");
        assert_eq!(problem["request_id"], "trace-42.a:b_c", "{problem}");

        // Anything that could forge a log line, or too long, is replaced.
        for bad in ["has space", "quote\"d", &"x".repeat(129)] {
            let made = app.request_with(Method::GET, "/healthz", None, None, &[("x-request-id", bad)]).await;
            let id = made.headers["x-request-id"].to_str().unwrap().to_string();
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32, "{id}");
        }
        let first = app.request(Method::GET, "/healthz", None, None).await;
        let second = app.request(Method::GET, "/healthz", None, None).await;
        assert_ne!(first.headers["x-request-id"], second.headers["x-request-id"]);
    }
}

/// Runs to completion: (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_one_plain_line_per_request_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let log = dir.path().join("stderr.log");
    let token = "cop_secret_operator_token_in_no_log";
    let server = Server::start_to(
        &url,
        Some(token),
        &[],
        &[("CANOPY_LOG", "info")],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let client = canopy_e2e::reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/operator/accounts", server.base))
        .bearer_auth(token)
        .header("x-request-id", "req-created-1")
        .json(
            &json!({"name": "Acme", "company_name": "Acme", "email": "billing@acme.example",
            "billing_type": "prepaid", "currency": "USD",
            "admin": {"email": "admin@acme.example", "name": "Admin"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let parent = created["account"]["id"].as_str().unwrap().to_string();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let read = client
        .get(format!("{}/v1/accounts/{parent}", server.base))
        .bearer_auth(&key)
        .header("x-request-id", "req-account-3")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let login = client
        .post(format!("{}/v1/sessions", server.base))
        .header("x-request-id", "req-login-2")
        .json(&json!({"email": "admin@acme.example", "password": "hunter2-password-in-no-log"}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_client_error());
    let status = server.sigterm();
    assert!(status.success());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI colour when stderr is a file:\n{text}"
    );
    assert!(!text.contains(token), "the operator token is never logged");
    assert!(!text.contains("hunter2"), "a password is never logged");
    assert!(!text.contains(&key), "an API key is never logged");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("req-created-1"))
        .collect();
    assert_eq!(lines.len(), 1, "one access line per request:\n{text}");
    for part in [
        "method=POST",
        "route=\"/v1/operator/accounts\"",
        "status=201",
        "duration_ms=",
    ] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
    let login_line = text.lines().find(|l| l.contains("req-login-2")).unwrap();
    assert!(
        login_line.contains("route=\"/v1/sessions\""),
        "{login_line}"
    );
    // A route naming an account logs it.
    let account_line = text.lines().find(|l| l.contains("req-account-3")).unwrap();
    assert!(account_line.contains(&parent), "{account_line}");
    assert!(
        account_line.contains("route=\"/v1/accounts/{id}\""),
        "{account_line}"
    );
}

#[test]
fn an_unsupported_database_url_never_prints_its_password() {
    let (code, _, err) = run(&mut canopy(&[
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--database-url",
        "mysql://admin:hunter2@db.example/canopy",
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("unsupported database URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!err.contains("admin:"), "{err}");
}

#[test]
fn an_unreachable_postgres_says_connection_refused_at_once() {
    let started = Instant::now();
    let (code, _, err) = run(&mut canopy(&[
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--database-url",
        &format!("postgres://nobody:secret@127.0.0.1:{}/none", free_port()),
    ]));
    let took = started.elapsed();
    assert_ne!(code, 0);
    assert!(err.contains("connection refused"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
}

#[test]
fn command_line_errors_name_the_flag_the_values_and_the_commands_help() {
    let (code, _, err) = run(&mut canopy(&["policy", "check", "policies/authorize.rhai"]));
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--hook"), "{err}");
    assert!(err.contains("`canopy policy check --help`"), "{err}");

    let (code, _, err) = run(&mut canopy(&[
        "policy",
        "check",
        "policies/authorize.rhai",
        "--hook",
        "authorise",
    ]));
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    for value in ["authorize", "subaccount.validate", "visibility", "cascade"] {
        assert!(err.contains(value), "{value} listed: {err}");
    }

    // Help never shows a database URL's password from the environment.
    for command in [
        &["serve", "--help"][..],
        &["operator", "ledger-check", "--help"],
    ] {
        let (code, out, _) =
            run(canopy(command).env("CANOPY_DATABASE_URL", "postgres://u:hunter2@db/canopy"));
        assert_eq!(code, 0);
        assert!(!out.contains("hunter2"), "{out}");
    }

    let (code, _, err) = run(&mut canopy(&[
        "operator",
        "create-parent",
        "--name",
        "Acme",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--email"), "{err}");
    assert!(
        err.contains("`canopy operator create-parent --help`"),
        "{err}"
    );

    let (code, _, err) = run(&mut canopy(&[
        "operator",
        "create-parent",
        "--name",
        "A",
        "--email",
        "a@b.example",
        "--billing-type",
        "free",
        "--admin-email",
        "a@b.example",
        "--admin-name",
        "A",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("prepaid") && err.contains("postpaid"), "{err}");
}

/// `canopy operator COMMAND --database-url URL`, run to completion.
fn run_operator(command: &str, url: &str) -> (i32, String, String) {
    run(&mut canopy(&["operator", command, "--database-url", url]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_cli_creates_a_parent_checks_the_ledger_and_rotates_the_token() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (url, _dir) = fresh_database(backend).await;
        let data_key = canopy_e2e::TEST_DATA_KEY;
        let env = [("CANOPY_DATA_KEY", data_key)];
        let server = Server::start_with(&url, None, &[], &env);
        let old = server.printed_token();

        let (code, out, err) = run(canopy(&[
            "operator",
            "create-parent",
            "--database-url",
            &url,
            "--name",
            "Acme",
            "--email",
            "billing@acme.example",
            "--billing-type",
            "prepaid",
            "--price",
            "sms=0.0075",
            "--admin-email",
            "admin@acme.example",
            "--admin-name",
            "Admin",
        ])
        .env("CANOPY_DATA_KEY", data_key));
        assert_eq!(code, 0, "{err}");
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {out}"))
                .trim()
                .to_string()
        };
        let parent = field("parent:");
        let key = field("api key (shown once):");
        let client = canopy_e2e::reqwest::Client::new();
        let seen = client
            .get(format!("{}/v1/accounts/{parent}", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            seen.status(),
            200,
            "the server serves the parent the CLI made"
        );

        let (code, out, err) = run_operator("ledger-check", &url);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("balanced"), "{out}");

        let (code, out, err) = run_operator("rotate-token", &url);
        assert_eq!(code, 0, "{err}");
        let new = out.rsplit(' ').next().unwrap().trim().to_string();
        assert!(new.starts_with("cop_") && new != old, "{out}");
        let operator = |token: String| {
            let request = client
                .get(format!("{}/v1/operator/accounts", server.base))
                .bearer_auth(token);
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let started = Instant::now();
        while operator(new.clone()).await != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the running host takes up the new token"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            operator(old.clone()).await,
            401,
            "the old token no longer works"
        );
        assert!(server.sigterm().success());
    }
}
