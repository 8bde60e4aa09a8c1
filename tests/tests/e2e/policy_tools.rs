//! Policies tried and built offline (`canopy policy check | test |
//! componentize`, as processes) and uploaded in every form the API takes
//! (JSON with base64, multipart/form-data, application/wasm).

use std::path::{Path, PathBuf};
use std::process::Output;

use canopy_e2e::process::canopy;
use canopy_e2e::{TestApp, both_backends, repo_file, repo_path as repo};
use serde_json::{Value, json};

fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = canopy(args).output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// The core module of tests/fixtures/allow_all.wat, written to `dir`.
fn core_module(dir: &Path) -> PathBuf {
    let wat = String::from_utf8(repo_file("tests/fixtures/allow_all.wat")).unwrap();
    let path = dir.join("allow_all.core.wasm");
    std::fs::write(&path, wat::parse_str(&wat).unwrap()).unwrap();
    path
}

/// `canopy policy componentize` of the allow-all module.
fn component(dir: &Path) -> Vec<u8> {
    let core = core_module(dir);
    let out = dir.join("allow_all.wasm");
    let (code, stdout, stderr) = run(&[
        "policy",
        "componentize",
        core.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(" bytes"), "{stdout}");
    std::fs::read(out).unwrap()
}

/// The shipped case files pass on the shipped defaults, in both runtimes:
/// each case is reported and the summary counts them.
#[test]
fn shipped_case_files_pass_on_the_defaults_in_both_runtimes() {
    for hook in ["authorize", "subaccount_validate", "visibility", "cascade"] {
        let cases = repo(&format!("policies/tests/{hook}.json"));
        let count =
            serde_json::from_slice::<Value>(&repo_file(&format!("policies/tests/{hook}.json")))
                .unwrap()["cases"]
                .as_array()
                .unwrap()
                .len();
        for runtime in ["rhai", "wasm"] {
            let policy = repo(&format!("policies/{hook}.{runtime}"));
            let (code, stdout, stderr) = run(&["policy", "test", &policy, &cases]);
            assert_eq!(code, 0, "{hook}.{runtime}: {stdout}{stderr}");
            assert_eq!(stdout.matches("\nPASS  ").count(), count, "{stdout}");
            assert!(
                stdout.ends_with(&format!("\n{count} passed, 0 failed\n")),
                "{stdout}"
            );
        }
    }
}

/// A policy that answers otherwise fails the cases with a diff of each
/// field, the output, the summary, and status 1.
#[test]
fn failing_cases_show_a_diff_and_exit_1() {
    let (code, stdout, _) = run(&[
        "policy",
        "test",
        &repo("policies/examples/domain_allowlist.rhai"),
        &repo("policies/tests/subaccount_validate.json"),
    ]);
    assert_eq!(code, 1, "{stdout}");
    let fail = stdout
        .split("FAIL  a name of spaces only")
        .nth(1)
        .expect("the case is reported by name");
    let lines: Vec<&str> = fail.lines().map(str::trim).collect();
    assert_eq!(
        lines[0],
        format!(
            "(subaccount.validate, {})",
            repo("policies/tests/subaccount_validate.json")
        )
    );
    assert!(
        lines[1].starts_with(".decision") && lines[1].ends_with("- expected \"deny\""),
        "{fail}"
    );
    assert_eq!(lines[2], "+ actual   \"allow\"");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(".reason") && l.ends_with("\"must not be empty\"")),
        "{fail}"
    );
    assert!(lines.contains(&"+ actual   (absent)"), "{fail}");
    assert!(lines.contains(&r#"output: {"decision":"allow"}"#), "{fail}");
    assert!(stdout.ends_with("3 passed, 5 failed\n"), "{stdout}");
}

/// A malformed case file stops the run with status 2 and one line naming
/// the file, the case and the field; nothing is evaluated.
#[test]
fn a_malformed_case_file_names_the_case_and_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        r#"{"hook": "authorize", "cases": [
            {"name": "fine", "sample": 1, "expect": {"decision": "allow"}},
            {"name": "typo", "sample": 1, "expect": {"decision": "allow"}, "hook": "authorise"}]}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "policy",
        "test",
        &repo("policies/authorize.rhai"),
        cases.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "nothing ran: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("malformed case file"), "{stderr}");
    assert!(
        stderr.contains(r#"case 2 ("typo"): `hook` must be one of"#),
        "{stderr}"
    );
}

/// A case may expect the policy to fail closed; the message is matched.
#[test]
fn cases_may_expect_a_policy_to_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        json!([
            {"name": "an endless loop fails closed", "hook": "authorize",
             "input": {"target": {"name": "hostile:loop"}}, "expect_error": ""},
            {"name": "expects a reason it does not give", "hook": "authorize",
             "input": {"target": {"name": "hostile:loop"}}, "expect_error": "no such words"}
        ])
        .to_string(),
    )
    .unwrap();
    let (code, stdout, _) = run(&[
        "policy",
        "test",
        &repo("tests/fixtures/hostile.rhai"),
        cases.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("PASS  an endless loop fails closed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- expected a failure containing \"no such words\""),
        "{stdout}"
    );
    assert!(stdout.contains("+ fails closed: "), "{stdout}");
}

/// `policy check` labels each built-in sample, and refuses a samples file
/// (an array) as `--input` saying it expects one object.
#[test]
fn policy_check_labels_samples_and_wants_one_object() {
    let (code, stdout, _) = run(&[
        "policy",
        "check",
        &repo("policies/authorize.rhai"),
        "--hook",
        "authorize",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let count = serde_json::from_slice::<Value>(&repo_file("policies/samples/authorize.json"))
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    assert!(
        stdout.contains(&format!(
            "sample 1/{count}: subaccount.create by admin of a parent (self)\n{{"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "sample 4/{count}: parent.suspend by the operator\n{{"
        )),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(&[
        "policy",
        "check",
        &repo("policies/authorize.rhai"),
        "--hook",
        "authorize",
        "--input",
        &repo("policies/samples/authorize.json"),
    ]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("expected one object"), "{stderr}");
    assert!(stderr.contains(&format!("an array of {count}")), "{stderr}");
}

/// `policy componentize` turns a core module into a component the host
/// loads; it refuses a component or a module that imports anything, in
/// one line.
#[test]
fn componentize_makes_a_component_the_host_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = component(dir.path());
    assert_eq!(&bytes[4..8], b"\x0d\0\x01\0", "a component's header");
    let (code, stdout, stderr) = run(&[
        "policy",
        "check",
        dir.path().join("allow_all.wasm").to_str().unwrap(),
        "--hook",
        "subaccount.validate",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout.matches(r#"{"decision":"allow"}"#).count(),
        3,
        "{stdout}"
    );

    let core = core_module(dir.path());
    let (code, _, stderr) = run(&[
        "policy",
        "check",
        core.to_str().unwrap(),
        "--hook",
        "authorize",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("core WebAssembly module, not a component"),
        "{stderr}"
    );
    assert!(stderr.contains("canopy policy componentize"), "{stderr}");

    let importing = dir.path().join("importing.wasm");
    std::fs::write(
        &importing,
        wat::parse_str(r#"(module (import "wasi_snapshot_preview1" "fd_write" (func)))"#).unwrap(),
    )
    .unwrap();
    for (input, wanted) in [
        (importing.to_str().unwrap(), "may import nothing"),
        (&*repo("policies/authorize.wasm"), "already a component"),
    ] {
        let out = dir.path().join("out.wasm");
        let (code, _, stderr) =
            run(&["policy", "componentize", input, "-o", out.to_str().unwrap()]);
        assert_eq!(code, 1, "{input}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(wanted), "{stderr}");
        assert!(!out.exists());
    }
}

/// A request to the policies route with a raw body and content type.
async fn post_raw(
    app: &TestApp,
    path_and_query: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path_and_query}", app.base))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const BOUNDARY: &str = "canopy-test-boundary";

/// A multipart/form-data body: `(field, file name, bytes)`.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

both_backends! {
    // The same component uploaded as JSON (base64), multipart and raw
    // bytes makes three versions of one policy with the same hash; a
    // Rhai script goes as a multipart `source`.
    async fn uploads_in_every_form_store_the_same_policy(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let home = format!("/v1/accounts/{}/policies", parent.id);
        let wasm = repo_file("policies/examples/domain_allowlist.wasm");
        let rhai = repo_file("policies/examples/domain_allowlist.rhai");
        use base64::Engine as _;
        let json_up = app
            .post(&home, &parent.key, json!({"name": "allow-list", "hook": "subaccount.validate",
                "runtime": "wasm", "module": base64::engine::general_purpose::STANDARD.encode(&wasm)}))
            .await
            .expect(201);
        let (status, form_up) = post_raw(&app, &home, &parent.key, &multipart(), form(&[
            ("name", None, b"allow-list"),
            ("hook", None, b"subaccount.validate"),
            ("module", Some("domain_allowlist.wasm"), &wasm),
        ])).await;
        assert_eq!(status, 201, "{form_up}");
        let (status, raw_up) = post_raw(
            &app,
            &format!("{home}?name=allow-list&hook=subaccount.validate"),
            &parent.key,
            "application/wasm",
            wasm.clone(),
        ).await;
        assert_eq!(status, 201, "{raw_up}");
        let (status, rhai_up) = post_raw(&app, &home, &parent.key, &multipart(), form(&[
            ("name", None, b"allow-list"),
            ("hook", None, b"subaccount.validate"),
            ("source", Some("domain_allowlist.rhai"), &rhai),
        ])).await;
        assert_eq!(status, 201, "{rhai_up}");
        assert_eq!(rhai_up["runtime"], "rhai");
        for (up, version) in [(&json_up, 1), (&form_up, 2), (&raw_up, 3)] {
            assert_eq!(up["version"], version);
            assert_eq!(up["runtime"], "wasm");
            assert_eq!(up["sha256"], json_up["sha256"], "the same bytes in every form");
            assert_eq!(up["id"], json_up["id"]);
        }
        // The operator's route takes the same forms.
        let (status, platform) = post_raw(
            &app,
            "/v1/operator/policies?name=platform-allow-list&hook=subaccount.validate",
            &app.operator_token,
            "application/wasm",
            wasm,
        ).await;
        assert_eq!(status, 201, "{platform}");
    }

    // Malformed multipart and raw uploads are 422s naming what is wrong;
    // a core module gets the componentize hint.
    async fn upload_forms_refuse_what_is_wrong_by_name(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let home = format!("/v1/accounts/{}/policies", parent.id);
        let wasm = repo_file("policies/examples/domain_allowlist.wasm");
        let (status, p) = post_raw(&app, &home, &parent.key, &multipart(), form(&[
            ("hook", None, b"subaccount.validate"),
            ("module", Some("p.wasm"), &wasm),
        ])).await;
        assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("name")), "{p}");
        let (status, p) = post_raw(&app, &home, &parent.key, &multipart(), form(&[
            ("name", None, b"x"),
            ("hook", None, b"subaccount.validate"),
            ("file", Some("p.wasm"), &wasm),
        ])).await;
        assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("file")), "{p}");
        assert!(p["detail"].as_str().unwrap().contains("`module`"), "{p}");
        let (status, p) = post_raw(&app, &home, &parent.key, &multipart(), b"not a form".to_vec()).await;
        assert_eq!((status, p["code"].as_str()), (422, Some("validation_failed")), "{p}");
        let (status, p) = post_raw(&app, &format!("{home}?name=x"), &parent.key, "application/wasm", wasm.clone()).await;
        assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("hook")), "{p}");

        let dir = tempfile::tempdir().unwrap();
        let core = std::fs::read(core_module(dir.path())).unwrap();
        let (status, p) = post_raw(
            &app,
            &format!("{home}?name=core&hook=authorize"),
            &parent.key,
            "application/wasm",
            core.clone(),
        ).await;
        assert_eq!(status, 422, "{p}");
        assert_eq!(p["code"], "validation_failed");
        assert_eq!(p["errors"][0]["field"], "module");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains("core WebAssembly module, not a component"), "{detail}");
        assert!(detail.contains("canopy policy componentize"), "{detail}");
        // And once componentized, it uploads.
        let (status, p) = post_raw(
            &app,
            &format!("{home}?name=core&hook=authorize"),
            &parent.key,
            "application/wasm",
            component(dir.path()),
        ).await;
        assert_eq!(status, 201, "{p}");
        // Bytes that are not WebAssembly: one line, no byte dump.
        let (status, p) = post_raw(
            &app,
            &format!("{home}?name=text&hook=authorize"),
            &parent.key,
            "application/wasm",
            b"{\"not\": \"wasm\"}\n".to_vec(),
        ).await;
        assert_eq!(status, 422, "{p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains("not WebAssembly"), "{detail}");
        assert!(!detail.contains('\n') && !detail.contains("0x"), "{detail}");
    }
}
