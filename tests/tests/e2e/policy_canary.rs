//! Canary policy versions (one enforced, one in shadow beside it, promote in
//! one step), time in policy documents (`now`, `timezone`, `local_now`, moved
//! by the test clock), and inspecting policies (names in denials and
//! decisions, a version's source, deleting an inactive policy, policies
//! suspended by the operator), over HTTP on both backends.

use canopy_e2e::webhooks::funded_parent;
use canopy_e2e::{Code, Parent, TestApp, both_backends, repo_file};
use serde_json::{Value, json};

/// Read at run time, so the module may live at any depth of `tests/`.
fn business_hours_rhai() -> String {
    String::from_utf8(repo_file("policies/examples/business_hours.rhai")).unwrap()
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

fn entry(decision: &Value, version: i64) -> &Value {
    decision["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["version"] == version && p["id"].as_str().unwrap_or("").starts_with("pol_"))
        .unwrap_or_else(|| panic!("no version {version} in {decision}"))
}

async fn policy(app: &TestApp, owner: &Parent, id: &str) -> Value {
    app.get(
        &format!("/v1/accounts/{}/policies/{id}", owner.id),
        &owner.key,
    )
    .await
    .expect(200)
}

/// The raw body and content type of a GET.
async fn raw(app: &TestApp, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

/// A basic user of a funded sub-account in `zone`; returns (sub id, key).
async fn basic_sender(app: &TestApp, parent: &Parent, zone: &str) -> (String, String) {
    let sub = app
        .try_sub(
            parent,
            "Night shift",
            "night@hours.example",
            json!({
                "timezone": zone,
                "credit": {"mode": "assigned_budget", "initial_credit": "100.00"},
            }),
        )
        .await
        .expect(201);
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let key = app
        .member(&parent.key, &sub_id, "basic@hours.example", "basic")
        .await;
    (sub_id, key)
}

/// Sends from `sub` at 17:59 and at 18:00 in Tokyo (UTC+9): the first goes,
/// the second is refused by `policy_id` naming the zone and the local time.
async fn business_hours_hold(app: &TestApp, sub: &str, key: &str, policy_id: &str) {
    app.set_clock("2026-01-15T08:59:00Z").await;
    app.send(sub, key).await.expect(201);
    app.set_clock("2026-01-15T09:00:00Z").await;
    let refused = app
        .send(sub, key)
        .await
        .expect_problem(403, "policy_denied");
    assert_eq!(refused["policy"]["id"], policy_id, "{refused}");
    assert_eq!(refused["policy"]["name"], "business hours");
    let reason = refused["policy"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("in Asia/Tokyo; it is 18:00 there"),
        "{reason}"
    );
    // 07:59 is still closed; 08:00 opens again.
    app.set_clock("2026-01-14T22:59:00Z").await;
    app.send(sub, key)
        .await
        .expect_problem(403, "policy_denied");
    app.set_clock("2026-01-14T23:00:00Z").await;
    app.send(sub, key).await.expect(201);
}

both_backends! {
    async fn a_shadow_version_runs_beside_the_enforced_one_until_promoted(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let up = app
            .upload_policy(Some(&acme), "names", "subaccount.validate", Code::Rhai(&refuse_word("blocked")))
            .await
            .expect(201);
        let id = up["id"].as_str().unwrap().to_string();
        app.activate_policy(Some(&acme), &id, 1, "enforce").await.expect(200);
        app.upload_policy(Some(&acme), "names", "subaccount.validate", Code::Rhai(&refuse_word("other")))
            .await
            .expect(201);
        let canary = app.activate_policy(Some(&acme), &id, 2, "shadow").await.expect(200);
        assert_eq!(canary["status"], "enforce", "v1 keeps enforcing: {canary}");
        assert_eq!(canary["mode"], "enforce");
        assert_eq!(canary["active_version"], 1);
        assert_eq!(canary["shadow_version"], 2);

        // v1 decides: the name it refuses is refused although v2 allows it.
        let refused = app
            .try_sub(&acme, "Blocked team", "blocked@acme.example", json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(refused["policy"]["id"], id.as_str());
        assert_eq!(refused["policy"]["name"], "names");
        assert_eq!(refused["policy"]["version"], 1);
        // Both versions are in the decision, the shadow's disagreement flagged.
        let path = format!(
            "/v1/accounts/{}/decisions?hook=subaccount.validate&policy_id={id}&shadow_disagrees=true",
            acme.id
        );
        let decision = app.await_decision(&path, &acme.key, |d| d["outcome"] == "deny").await;
        let (v1, v2) = (entry(&decision, 1), entry(&decision, 2));
        assert_eq!((&v1["mode"], &v1["outcome"], &v1["name"]), (&json!("enforce"), &json!("deny"), &json!("names")));
        assert_eq!((&v2["mode"], &v2["outcome"], &v2["name"]), (&json!("shadow"), &json!("allow"), &json!("names")));
        assert_eq!(v2["disagrees"], true, "{decision}");
        assert!(v1.get("disagrees").is_none(), "only shadow entries say it");
        // The shadow v2 refuses "other", but v1 decides.
        app.sub(&acme, "Other team", "other@acme.example").await;

        // Promote: v2 decides, v1 is retired, nothing runs in shadow.
        let promoted = app
            .post(&format!("/v1/accounts/{}/policies/{id}/promote", acme.id), &acme.key, json!({}))
            .await
            .expect(200);
        assert_eq!(promoted["active_version"], 2, "{promoted}");
        assert_eq!(promoted["status"], "enforce");
        assert_eq!(promoted["shadow_version"], Value::Null);
        app.sub(&acme, "Blocked team", "blocked@acme.example").await;
        let refused = app
            .try_sub(&acme, "Other team 2", "other2@acme.example", json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(refused["policy"]["version"], 2);
        app.post(&format!("/v1/accounts/{}/policies/{id}/promote", acme.id), &acme.key, json!({}))
            .await
            .expect_problem(409, "conflict");

        // A new canary, then cleared: the enforced version stays.
        app.activate_policy(Some(&acme), &id, 1, "shadow").await.expect(200);
        assert_eq!(policy(&app, &acme, &id).await["shadow_version"], 1);
        let cleared = app
            .delete(&format!("/v1/accounts/{}/policies/{id}/shadow", acme.id), &acme.key)
            .await
            .expect(200);
        assert_eq!((&cleared["active_version"], &cleared["shadow_version"]), (&json!(2), &Value::Null));
        // A version alone in shadow reads as before: status and active_version.
        let alone = app.activate_policy(Some(&acme), &id, 2, "shadow").await.expect(200);
        assert_eq!((&alone["status"], &alone["active_version"], &alone["shadow_version"]), (&json!("shadow"), &json!(2), &json!(2)));
        app.sub(&acme, "Other team 3", "other3@acme.example").await;

        // The platform's policies promote the same way.
        let op = app.operator_token.clone();
        let pid = app
            .install_policy(None, "platform names", "subaccount.validate", Code::Rhai(&refuse_word("zzz")), "enforce")
            .await;
        app.upload_policy(None, "platform names", "subaccount.validate", Code::Rhai(&refuse_word("yyy"))).await.expect(201);
        app.activate_policy(None, &pid, 2, "shadow").await.expect(200);
        let promoted = app.post(&format!("/v1/operator/policies/{pid}/promote"), &op, json!({})).await.expect(200);
        assert_eq!((&promoted["active_version"], &promoted["shadow_version"]), (&json!(2), &Value::Null));
        // Another tree cannot promote this tree's policy.
        let other = app.parent("other.example", "reseller").await;
        app.post(&format!("/v1/accounts/{}/policies/{id}/promote", other.id), &other.key, json!({}))
            .await
            .expect_problem(404, "not_found");
    }

    async fn a_policy_is_inspected_deleted_and_shown_suspended_by_the_operator(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let source = refuse_word("blocked");
        let id = app
            .install_policy(Some(&acme), "names", "subaccount.validate", Code::Rhai(&source), "enforce")
            .await;
        let wasm = repo_file("policies/examples/domain_allowlist.wasm");
        app.upload_policy(Some(&acme), "names", "subaccount.validate", Code::Wasm(&wasm)).await.expect(201);
        let base = format!("/v1/accounts/{}/policies/{id}", acme.id);
        let (status, ct, body) = raw(&app, &format!("{base}/versions/1/source"), &acme.key).await;
        assert_eq!((status, ct.as_str()), (200, "text/plain; charset=utf-8"));
        assert_eq!(String::from_utf8(body).unwrap(), source);
        let (status, ct, body) = raw(&app, &format!("{base}/versions/2/source"), &acme.key).await;
        assert_eq!((status, ct.as_str()), (200, "application/wasm"));
        assert!(body == wasm, "the component comes back byte for byte");
        app.get(&format!("{base}/versions/3/source"), &acme.key).await.expect_problem(404, "not_found");
        let other = app.parent("other.example", "reseller").await;
        app.get(&format!("/v1/accounts/{}/policies/{id}/versions/1/source", other.id), &other.key)
            .await
            .expect_problem(404, "not_found");

        // The operator closes `subaccount.validate` to customers.
        app.request(reqwest::Method::PUT, "/v1/operator/policy-settings", Some(&app.operator_token.clone()),
            Some(json!({"customer_hooks": ["authorize", "visibility"]})))
            .await
            .expect(200);
        let shown = policy(&app, &acme, &id).await;
        assert_eq!(shown["status"], "suspended_by_operator", "{shown}");
        assert_eq!(shown["mode"], "enforce");
        // It indeed runs nowhere.
        app.sub(&acme, "Blocked team", "blocked@acme.example").await;
        app.request(reqwest::Method::PUT, "/v1/operator/policy-settings", Some(&app.operator_token.clone()),
            Some(json!({"customer_hooks": ["authorize", "subaccount.validate", "visibility"]})))
            .await
            .expect(200);
        assert_eq!(policy(&app, &acme, &id).await["status"], "enforce");

        // Deleting a running policy is refused, saying how to proceed.
        let refused = app.delete(&base, &acme.key).await.expect_problem(409, "conflict");
        let detail = refused["detail"].as_str().unwrap();
        assert!(detail.contains("version 1 is enforced") && detail.contains("deactivate"), "{detail}");
        app.delete(&format!("/v1/accounts/{}/policies/{id}", other.id), &other.key)
            .await
            .expect_problem(404, "not_found");
        app.deactivate_policy(Some(&acme), &id).await.expect(200);
        app.delete(&base, &acme.key).await.expect(204);
        app.get(&base, &acme.key).await.expect_problem(404, "not_found");
        app.delete(&base, &acme.key).await.expect_problem(404, "not_found");
        // The name is free again: a new upload starts at version 1.
        let again = app
            .upload_policy(Some(&acme), "names", "subaccount.validate", Code::Rhai(&source))
            .await
            .expect(201);
        assert_eq!(again["version"], 1);
        assert_ne!(again["id"], id.as_str());
    }

    async fn basic_users_send_in_business_hours_of_their_zone_in_both_runtimes(app) {
        let parent = funded_parent(&app, "hours.example", "reseller", "1000.00").await;
        let (sub, key) = basic_sender(&app, &parent, "Asia/Tokyo").await;
        let rhai = app
            .install_policy(Some(&parent), "business hours", "authorize", Code::Rhai(&business_hours_rhai()), "enforce")
            .await;
        business_hours_hold(&app, &sub, &key, &rhai).await;
        // The decision's input time came from the test clock: the denial
        // is logged under it.
        let path = format!("/v1/accounts/{}/decisions?hook=authorize&outcome=deny&policy_id={rhai}", parent.id);
        let decision = app.await_decision(&path, &parent.key, |_| true).await;
        assert!(decision["created_at"].as_str().unwrap().starts_with("2026-01-1"), "{decision}");

        app.deactivate_policy(Some(&parent), &rhai).await.expect(200);
        let wasm = repo_file("policies/examples/business_hours.wasm");
        let component = app
            .install_policy(Some(&parent), "business hours", "authorize", Code::Wasm(&wasm), "enforce")
            .await;
        assert_eq!(component, rhai, "the same policy, a new version");
        business_hours_hold(&app, &sub, &key, &component).await;

        // Zones are IANA names, checked.
        app.patch(&format!("/v1/accounts/{sub}"), &parent.key, json!({"timezone": "Mars/Olympus"}))
            .await
            .expect_problem(422, "validation_failed");
    }
}
