//! One tenant cannot harm another: a tree's decisions never purge another
//! tree's log, a tree's slow policies never take every evaluation slot, a
//! policy that keeps failing stops being called (its circuit opens), and
//! the host's private files are private.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use canopy_e2e::{Code, Options, Parent, Sub, TestApp, both_backends, repo_file};
use serde_json::Value;

fn hostile_rhai() -> String {
    String::from_utf8(repo_file("tests/fixtures/hostile.rhai")).unwrap()
}

const ALLOW: &str = r#"fn evaluate(hook, input) { #{ decision: "allow" } }"#;

/// A parent with a sub-account named with `marker`, and the hostile policy
/// on its `authorize` hook: every read of that sub-account misbehaves.
async fn hostile_tree(app: &TestApp, domain: &str, marker: &str) -> (Parent, Sub, String) {
    let parent = app.parent(domain, "reseller").await;
    let sub = app
        .sub(
            &parent,
            &format!("Team {marker}"),
            &format!("team@{domain}"),
        )
        .await;
    let source = hostile_rhai();
    let id = app
        .install_policy(
            Some(&parent),
            "hostile",
            "authorize",
            Code::Rhai(&source),
            "enforce",
        )
        .await;
    (parent, sub, id)
}

/// The decisions of `tree` in the operator's log.
async fn tree_decisions(app: &TestApp, tree: &str) -> Vec<Value> {
    let page = app
        .get(
            "/v1/operator/decisions?limit=1000",
            &app.operator_token.clone(),
        )
        .await
        .expect(200);
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["tree_id"] == tree)
        .cloned()
        .collect()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < until, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends! {
    options = Options {
        decisions_max_per_tree: Some(20),
        purge_every: Some(Duration::from_millis(200)),
        ..Options::default()
    };

    async fn a_trees_decisions_never_purge_another_trees(app) {
        let quiet = app.parent("quiet.example", "reseller").await;
        let busy = app.parent("busy.example", "reseller").await;
        for _ in 0..5 {
            app.get(&format!("/v1/accounts/{}", quiet.id), &quiet.key)
                .await
                .expect(200);
        }
        eventually("the quiet tree's decisions are written", || async {
            tree_decisions(&app, &quiet.id).await.len() >= 5
        })
        .await;
        let kept = tree_decisions(&app, &quiet.id).await;
        // The busy tree reads far past the cap.
        for _ in 0..60 {
            app.get(&format!("/v1/accounts/{}", busy.id), &busy.key)
                .await
                .expect(200);
        }
        eventually("the busy tree is purged down to its cap", || async {
            let n = tree_decisions(&app, &busy.id).await.len();
            n > 0 && n <= 20
        })
        .await;
        // The quiet tree's log is whole.
        let after = tree_decisions(&app, &quiet.id).await;
        for d in &kept {
            assert!(
                after.iter().any(|a| a["id"] == d["id"]),
                "decision {} of the quiet tree was purged by the busy tree",
                d["id"]
            );
        }
    }
}

both_backends! {
    // The breaker would stop the spinning policy after a few failures; this
    // scenario is about the share of slots, so it never opens here.
    options = Options {
        breaker_failures: Some(0),
        ..Options::default()
    };

    async fn a_trees_spinning_policy_does_not_hold_up_other_trees(app) {
        let (spinning, sub, policy) = hostile_tree(&app, "spin.example", "hostile:loop").await;
        // The other tree has an uploaded policy too, so its evaluations go
        // through the same pool.
        let calm = app.parent("calm.example", "reseller").await;
        app.install_policy(Some(&calm), "allow", "authorize", Code::Rhai(ALLOW), "enforce")
            .await;
        app.get(&format!("/v1/accounts/{}", calm.id), &calm.key)
            .await
            .expect(200);

        // A wave of parallel requests, each spinning to its deadline.
        const WAVE: usize = 48;
        let done = Arc::new(AtomicUsize::new(0));
        let url = format!("{}/v1/accounts/{}", app.base, sub.id);
        let wave: Vec<_> = (0..WAVE)
            .map(|_| {
                let (url, key, done) = (url.clone(), spinning.key.clone(), done.clone());
                tokio::spawn(async move {
                    let reply = reqwest::Client::new()
                        .get(&url)
                        .bearer_auth(&key)
                        .send()
                        .await
                        .unwrap();
                    let status = reply.status().as_u16();
                    let body: Value = reply.json().await.unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                    (status, body)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(done.load(Ordering::SeqCst) < WAVE / 4, "the wave is running");

        // The other tree is answered while the wave is still in flight
        // (without fair shares it waits behind most of the wave).
        for _ in 0..3 {
            app.get(&format!("/v1/accounts/{}", calm.id), &calm.key)
                .await
                .expect(200);
        }
        let finished = done.load(Ordering::SeqCst);
        assert!(
            finished < WAVE / 2,
            "the calm tree was answered only after {finished} of the {WAVE} spinning requests"
        );

        // Every spinning request failed closed: its policy named, or
        // refused for being over the tree's share.
        let mut failed = 0;
        for task in wave {
            let (status, body) = task.await.unwrap();
            match (status, body["code"].as_str()) {
                (500, Some("policy_failed")) => {
                    assert_eq!(body["policy"]["id"], policy.as_str(), "{body}");
                    failed += 1;
                }
                (429, Some("rate_limited")) => {}
                other => panic!("a spinning request got {other:?}: {body}"),
            }
        }
        assert!(failed > 0);
    }
}

both_backends! {
    async fn a_policy_that_keeps_failing_opens_its_circuit(app) {
        let (acme, sub, policy) = hostile_tree(&app, "acme.example", "hostile:trap").await;
        let read = format!("/v1/accounts/{}", sub.id);
        for _ in 0..5 {
            let failed = app.get(&read, &acme.key).await.expect_problem(500, "policy_failed");
            assert_eq!(failed["policy"]["id"], policy.as_str(), "{failed}");
            assert!(!failed["detail"].as_str().unwrap().contains("circuit"), "{failed}");
        }
        // Open: it fails closed at once, naming the policy, without running.
        let refused = app.get(&read, &acme.key).await.expect_problem(500, "policy_failed");
        assert_eq!(refused["policy"]["id"], policy.as_str(), "{refused}");
        let detail = refused["detail"].as_str().unwrap();
        assert!(detail.contains(&policy) && detail.contains("circuit breaker is open"), "{refused}");
        // Every read of the tree fails closed, the calm sub-account's too.
        app.get(&format!("/v1/accounts/{}", acme.id), &acme.key)
            .await
            .expect_problem(500, "policy_failed");

        // The list shows the open circuit.
        let list = app
            .get(&format!("/v1/accounts/{}/policies", acme.id), &acme.key)
            .await
            .expect(200);
        let listed = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == policy.as_str())
            .unwrap()
            .clone();
        assert_eq!(listed["breaker"]["state"], "open", "{listed}");
        assert_eq!(listed["breaker"]["failures"], 5, "{listed}");
        assert!(listed["breaker"]["until"].is_string(), "{listed}");

        // Counted in the metrics.
        let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).await;
        let text = metrics.body.as_str().unwrap().to_string();
        assert!(text.contains("canopy_policy_breakers_open 1"), "{text}");
        assert!(text.contains("canopy_policy_breaker_opened_total 1"), "{text}");
        assert!(!text.contains("canopy_policy_breaker_refused_total 0"), "{text}");

        // Another tree is untouched.
        let other = app.parent("other.example", "reseller").await;
        app.get(&format!("/v1/accounts/{}", other.id), &other.key)
            .await
            .expect(200);
        // The refusals are in the decision log, against the policy.
        let path = format!("/v1/accounts/{}/decisions?outcome=error&policy_id={policy}", acme.id);
        app.await_decision(&path, &acme.key, |d| {
            d["reason"].as_str().unwrap_or("").contains("circuit breaker")
        })
        .await;
    }
}

/// The SQLite file (and its -wal and -shm) and the compiled Wasm cache
/// beside it are created readable by this user only, whatever the umask.
#[tokio::test]
async fn the_database_file_and_the_wasm_cache_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("canopy.db").display());
    let cache = canopy::policy::wasm_cache::default_dir(&url);
    assert_eq!(cache, dir.path().join("canopy-wasm-cache"));
    let host = canopy::server::Host::open(canopy::server::Config {
        database_url: url,
        operator_token: Some("t".into()),
        policies_dir: None,
        test_clock: false,
        settings: Default::default(),
        smtp: None,
        defaults_runtime: Default::default(),
        wasm_cache: Some(cache.clone()),
    })
    .await
    .unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    for file in ["canopy.db", "canopy.db-wal", "canopy.db-shm"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    assert_eq!(mode("canopy-wasm-cache"), 0o700);
    assert_eq!(mode("canopy-wasm-cache/cache.key"), 0o600);
    host.canopy.store.close().await;

    // A cache directory others may write to is made private again.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    canopy::policy::wasm_cache::WasmCache::open(&cache).unwrap();
    assert_eq!(mode("canopy-wasm-cache"), 0o700);
}
