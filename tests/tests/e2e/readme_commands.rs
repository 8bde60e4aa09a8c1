//! The documented policy commands, run as written: every fenced block that
//! follows a `<!-- tested: ... -->` line in README.md and plugins/README.md
//! runs in bash (with curl, jq and the `canopy` binary) against a real
//! server, and every upload or componentize command in those files must be
//! in such a block, so none can rot.

use std::path::Path;

use canopy_e2e::process::binary;
use canopy_e2e::{TestApp, both_backends, repo_file, repo_path};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MARKER: &str = "<!-- tested:";

/// The shell text of each tested block of a Markdown file: `sh` blocks as
/// they are; `console` blocks without their `$ ` prompts and the output
/// lines between commands.
fn tested_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with(MARKER) {
            continue;
        }
        let fence = lines.next().expect("a block follows the marker");
        let indent = fence.len() - fence.trim_start().len();
        assert!(fence.trim_start().starts_with("```"), "{fence}");
        let console = fence.contains("console");
        let mut script = Vec::new();
        let mut continued = false;
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            let line = line.get(indent..).unwrap_or("");
            if console {
                match line.strip_prefix("$ ") {
                    Some(command) => script.push(command.to_string()),
                    None if continued => script.push(line.to_string()),
                    None => {}
                }
            } else {
                script.push(line.to_string());
            }
            let last = script.last().map_or("", |l| l.trim_end());
            continued = last.ends_with('\\') || last.ends_with('|');
        }
        blocks.push(script.join("\n"));
    }
    blocks
}

/// Commands that upload a policy or build a component.
fn is_upload_or_build(line: &str) -> bool {
    (line.contains("/policies")
        && (line.contains("--data-binary") || line.contains(" -F ") || line.contains("-d @")))
        || line.contains("policy componentize")
        || line.contains("base64")
}

/// Every upload or componentize command of the file is in a tested block.
fn assert_all_tested(file: &str) {
    let text = String::from_utf8(repo_file(file)).unwrap();
    let tested = tested_blocks(&text).join("\n");
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code || !is_upload_or_build(line) {
            continue;
        }
        let command = line.trim().trim_start_matches("$ ").trim();
        assert!(
            tested.contains(command),
            "{file}: `{command}` is documented but not in a tested block (put {MARKER} ... --> before its block)"
        );
    }
}

async fn run_bash(script: &str, dir: &Path, env: &[(&str, String)]) -> String {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .expect("bash runs (the tests need bash, curl, jq and base64)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the documented commands failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("\"status\":4"),
        "a documented command got a problem:\n{stdout}"
    );
    stdout
}

/// A scratch directory with the repository's `policies/` and the `canopy`
/// binary on PATH.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo_path("policies"), dir.path().join("policies")).unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(binary(), dir.path().join("bin/canopy")).unwrap();
    dir
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn policy_named(app: &TestApp, parent_id: &str, key: &str, name: &str) -> Value {
    let list = app
        .get(&format!("/v1/accounts/{parent_id}/policies"), key)
        .await
        .expect(200);
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no policy {name}: {list}"))
        .clone()
}

#[test]
fn every_documented_upload_command_is_tested() {
    assert_all_tested("README.md");
    assert_all_tested("plugins/README.md");
    assert_eq!(
        tested_blocks(&String::from_utf8(repo_file("plugins/README.md")).unwrap()).len(),
        2
    );
}

both_backends! {
    // README.md's policy block: a Rhai upload, shadow then enforce, and
    // the component uploaded in each of the three forms.
    async fn readme_policy_commands_run_as_written(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let readme = String::from_utf8(repo_file("README.md")).unwrap();
        let blocks = tested_blocks(&readme);
        assert_eq!(blocks.len(), 1, "README.md's tested blocks");
        let host = app.base.trim_start_matches("http://");
        let script = blocks[0].replace("localhost:8080", host);
        let dir = workdir();
        run_bash(&script, dir.path(), &[
            ("PARENT", parent.id.clone()),
            ("KEY", format!("Authorization: Bearer {}", parent.key)),
        ]).await;
        let policy = policy_named(&app, &parent.id, &parent.key, "allow-list").await;
        assert_eq!(policy["status"], "enforce", "{policy}");
        assert_eq!(policy["active_version"], 1);
        let versions = policy["versions"].as_array().unwrap();
        let runtimes: Vec<&str> = versions.iter().map(|v| v["runtime"].as_str().unwrap()).collect();
        assert_eq!(runtimes, ["rhai", "wasm", "wasm", "wasm"], "{policy}");
        let wasm = sha256(&repo_file("policies/examples/domain_allowlist.wasm"));
        for v in &versions[1..] {
            assert_eq!(v["sha256"], wasm.as_str(), "the whole component arrived: {v}");
        }
        // The policy is in force: the example refuses a test name.
        let refused = app
            .try_sub(&parent, "Load test", "qa@acme.example", serde_json::json!({}))
            .await;
        assert_eq!(refused.status, 422, "{:?}", refused.body);
        assert!(refused.body.to_string().contains("the word"), "{:?}", refused.body);
    }

    // plugins/README.md: componentize a module where `cargo build` leaves
    // it, then upload the component in each documented form.
    async fn plugins_readme_commands_run_as_written(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let text = String::from_utf8(repo_file("plugins/README.md")).unwrap();
        let blocks = tested_blocks(&text);
        let dir = workdir();
        // What `cargo build --release --target wasm32-unknown-unknown` of a
        // policy crate makes (built from WAT: the tests need no wasm32 target).
        let release = dir.path().join("target/wasm32-unknown-unknown/release");
        std::fs::create_dir_all(&release).unwrap();
        let wat = String::from_utf8(repo_file("tests/fixtures/allow_all.wat")).unwrap();
        std::fs::write(release.join("my_policy.wasm"), wat::parse_str(&wat).unwrap()).unwrap();
        let env = [
            ("CANOPY", app.base.clone()),
            ("TOKEN", parent.key.clone()),
            ("PARENT_ID", parent.id.clone()),
        ];
        let built = run_bash(&blocks[0], dir.path(), &env).await;
        assert!(built.contains("my_policy.wasm: "), "{built}");
        run_bash(&blocks[1], dir.path(), &env).await;
        let component = std::fs::read(dir.path().join("my_policy.wasm")).unwrap();
        let policy = policy_named(&app, &parent.id, &parent.key, "e-mail domains").await;
        let versions = policy["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 3, "one version per documented form: {policy}");
        for v in versions {
            assert_eq!(v["runtime"], "wasm");
            assert_eq!(v["sha256"], sha256(&component).as_str(), "{v}");
        }
    }
}
