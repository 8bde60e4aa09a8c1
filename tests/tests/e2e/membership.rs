//! Membership chores over HTTP: a member's role changed with the authority
//! of inviting, the last admin kept; invitations resent (old token dead)
//! and revoked.

use canopy_e2e::{TestApp, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

async fn accept(app: &TestApp, token: &str) -> canopy_e2e::Reply {
    app.request(
        Method::POST,
        "/v1/invitations/accept",
        None,
        Some(json!({"token": token, "name": "Someone", "password": "correct horse battery"})),
    )
    .await
}

fn user_of(members: &Value, email: &str) -> String {
    members["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends! {
    async fn an_admin_changes_roles_but_never_demotes_the_last_admin(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let basic = app.member(&parent.key, &parent.id, "bob@acme.example", "basic").await;
        let members_path = format!("/v1/accounts/{}/members", parent.id);
        let members = app.get(&members_path, &parent.key).await.expect(200);
        let bob = user_of(&members, "bob@acme.example");
        let bob_path = format!("{members_path}/{bob}");
        // A basic user may not list members nor change roles; the send works.
        app.patch(&bob_path, &basic, json!({"role": "admin"})).await.expect_problem(403, "policy_denied");
        app.get(&members_path, &basic).await.expect_problem(403, "policy_denied");

        let changed = app.patch(&bob_path, &parent.key, json!({"role": "advanced"})).await.expect(200);
        assert_eq!((changed["user_id"].as_str(), changed["role"].as_str()), (Some(bob.as_str()), Some("advanced")));
        // Bob's existing key acts with the new role at once.
        app.get(&members_path, &basic).await.expect(200);
        app.patch(&bob_path, &parent.key, json!({"role": "owner"})).await.expect_problem(422, "validation_failed");
        app.patch(&bob_path, &parent.key, json!({"role": "basic", "extra": 1})).await.expect_problem(422, "validation_failed");

        // The only admin cannot be demoted; with a second admin, it can.
        let me = format!("{members_path}/{}", parent.admin_user_id);
        app.patch(&me, &parent.key, json!({"role": "basic"})).await.expect_problem(409, "conflict");
        app.patch(&bob_path, &parent.key, json!({"role": "admin"})).await.expect(200);
        app.patch(&me, &basic, json!({"role": "advanced"})).await.expect(200);
        app.patch(&bob_path, &basic, json!({"role": "basic"})).await.expect_problem(409, "conflict");
        // Unknown or other trees' members are not found.
        app.patch(&format!("{members_path}/usr_nobody"), &basic, json!({"role": "basic"})).await.expect_problem(404, "not_found");
        let other = app.parent("other.example", "enterprise").await;
        app.patch(&bob_path, &other.key, json!({"role": "basic"})).await.expect_problem(404, "not_found");
    }

    async fn an_invitation_is_resent_under_a_new_token_or_revoked(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let members_path = format!("/v1/accounts/{}/members", parent.id);
        let invited = app.post(&members_path, &parent.key, json!({"email": "eve@acme.example", "role": "basic"})).await.expect(201);
        let id = invited["invitation"]["id"].as_str().unwrap().to_string();
        let old = invited["invitation"]["token"].as_str().unwrap().to_string();
        let resent = app.post(&format!("/v1/accounts/{}/invitations/{id}/resend", parent.id), &parent.key, json!({})).await.expect(201);
        assert_eq!(resent["id"], id.as_str());
        let new = resent["token"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        accept(&app, &old).await.expect_problem(404, "not_found");
        accept(&app, &new).await.expect(200);
        // Used: neither resent nor revoked.
        app.post(&format!("/v1/accounts/{}/invitations/{id}/resend", parent.id), &parent.key, json!({})).await.expect_problem(404, "not_found");

        let second = app.post(&members_path, &parent.key, json!({"email": "sam@acme.example", "role": "advanced"})).await.expect(201);
        let second_id = second["invitation"]["id"].as_str().unwrap();
        let other = app.parent("other.example", "enterprise").await;
        app.delete(&format!("/v1/accounts/{}/invitations/{second_id}", parent.id), &other.key).await.expect_problem(404, "not_found");
        app.delete(&format!("/v1/accounts/{}/invitations/{second_id}", parent.id), &parent.key).await.expect(204);
        accept(&app, second["invitation"]["token"].as_str().unwrap()).await.expect_problem(410, "invitation_expired");
        app.delete(&format!("/v1/accounts/{}/invitations/{second_id}", parent.id), &parent.key).await.expect_problem(404, "not_found");
    }
}

/// The shipped defaults with an `authorize` that allows everything, as an
/// operator's `--policies` might: written once per test process.
fn allow_all_defaults() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("canopy-allow-all-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in [
            "subaccount_validate.rhai",
            "visibility.rhai",
            "cascade.rhai",
        ] {
            std::fs::write(
                dir.join(file),
                canopy_e2e::repo_file(&format!("policies/{file}")),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("authorize.rhai"),
            r#"fn evaluate(hook, input) { #{ decision: "allow" } }"#,
        )
        .unwrap();
        dir
    })
    .clone()
}

both_backends! {
    options = canopy_e2e::Options { policies_dir: Some(allow_all_defaults()), ..canopy_e2e::Options::default() };

    async fn nobody_changes_or_revokes_above_their_own_role_whatever_the_policy_allows(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let members_path = format!("/v1/accounts/{}/members", parent.id);
        app.member(&parent.key, &parent.id, "ann@acme.example", "admin").await;
        let ada = app.member(&parent.key, &parent.id, "ada@acme.example", "advanced").await;
        app.member(&parent.key, &parent.id, "bob@acme.example", "basic").await;
        let members = app.get(&members_path, &parent.key).await.expect(200);
        let ann = user_of(&members, "ann@acme.example");
        let bob = user_of(&members, "bob@acme.example");

        // The policy lets an advanced user manage members; the host still
        // keeps it below its own rank, on both ends of a change.
        let refused = app.patch(&format!("{members_path}/{ann}"), &ada, json!({"role": "basic"})).await.expect_problem(403, "forbidden");
        assert!(refused["detail"].as_str().unwrap().contains("cannot change the role of an `admin`"), "{refused}");
        app.patch(&format!("{members_path}/{bob}"), &ada, json!({"role": "admin"})).await.expect_problem(403, "forbidden");
        let bob_now = app.patch(&format!("{members_path}/{bob}"), &ada, json!({"role": "advanced"})).await.expect(200);
        assert_eq!(bob_now["role"], "advanced", "{bob_now}");

        let invited = app.post(&members_path, &parent.key, json!({"email": "root@acme.example", "role": "admin"})).await.expect(201);
        let id = invited["invitation"]["id"].as_str().unwrap();
        let refused = app.delete(&format!("/v1/accounts/{}/invitations/{id}", parent.id), &ada).await.expect_problem(403, "forbidden");
        assert!(refused["detail"].as_str().unwrap().contains("cannot revoke an invitation as `admin`"), "{refused}");
        accept(&app, invited["invitation"]["token"].as_str().unwrap()).await.expect(200);
    }
}
