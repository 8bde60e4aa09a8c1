//! Invitations, members, keys and sessions; suspension, reactivation and
//! deletion with their cascades (invariant 3).

use canopy_e2e::{Parent, TestApp, both_backends};
use reqwest::Method;
use serde_json::json;

async fn status(app: &TestApp, parent: &Parent, id: &str) -> String {
    app.get(&format!("/v1/accounts/{id}"), &parent.key)
        .await
        .expect(200)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends! {
    async fn an_invited_subaccount_becomes_active_on_acceptance(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        assert_eq!(sub.body["status"], "invited");
        let accepted = app
            .request(Method::POST, "/v1/invitations/accept", None, Some(json!({
                "token": sub.invitation.clone().unwrap(), "name": "Team Admin", "password": "correct horse battery"
            })))
            .await
            .expect(200);
        assert_eq!(accepted["role"], "admin");
        assert_eq!(accepted["user"]["email"], "team@acme.example");
        let key = accepted["api_key"]["secret"].as_str().unwrap();
        assert_eq!(app.get(&format!("/v1/accounts/{}", sub.id), key).await.expect(200)["status"], "active");

        // Not invited: active at once, no token.
        let direct = app.try_sub(&parent, "Direct", "direct@acme.example", json!({"invite": false})).await.expect(201);
        assert_eq!(direct["status"], "active");
        assert!(direct.get("invitation").is_none());
    }

    async fn used_or_expired_invitations_are_gone(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let token = sub.invitation.clone().unwrap();
        app.accept(&token, "Team Admin", "correct horse battery").await;
        let accept = |token: String| {
            let app = &app;
            async move {
                app.request(Method::POST, "/v1/invitations/accept", None, Some(json!({"token": token, "name": "X", "password": "correct horse battery"}))).await
            }
        };
        accept(token).await.expect_problem(410, "invitation_expired");

        let invited = app.post(&format!("/v1/accounts/{}/members", parent.id), &parent.key, json!({"email": "late@acme.example", "role": "basic"})).await.expect(201);
        let late = invited["invitation"]["token"].as_str().unwrap().to_string();
        let expires_at = chrono::DateTime::parse_from_rfc3339(invited["invitation"]["expires_at"].as_str().unwrap()).unwrap();
        app.set_clock(&(expires_at + chrono::Duration::seconds(1)).to_rfc3339()).await;
        accept(late).await.expect_problem(410, "invitation_expired");
        accept("ci_unknown".into()).await.expect_problem(404, "not_found");
    }

    async fn api_keys_are_shown_once_listed_and_revoked(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/api-keys", parent.id);
        let created = app.post(&path, &parent.key, json!({"name": "ci"})).await.expect(201);
        let secret = created["secret"].as_str().unwrap();
        app.get(&format!("/v1/accounts/{}", parent.id), secret).await.expect(200);
        let list = app.get(&path, &parent.key).await.expect(200);
        assert!(!list.to_string().contains(secret), "secrets are never listed");
        assert_eq!(list["data"].as_array().unwrap().len(), 2);
        app.delete(&format!("{path}/{}", created["id"].as_str().unwrap()), &parent.key).await.expect(204);
        app.get(&format!("/v1/accounts/{}", parent.id), secret).await.expect_problem(401, "unauthenticated");
    }

    async fn removing_a_member_keeps_the_account_and_revokes_their_keys(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let key = app.member(&parent.key, &parent.id, "leaver@acme.example", "advanced").await;
        let members = app.get(&format!("/v1/accounts/{}/members", parent.id), &parent.key).await.expect(200);
        let leaver = members["data"].as_array().unwrap().iter().find(|m| m["email"] == "leaver@acme.example").unwrap()["user_id"].as_str().unwrap().to_string();
        app.delete(&format!("/v1/accounts/{}/members/{leaver}", parent.id), &parent.key).await.expect(204);
        app.get(&format!("/v1/accounts/{}", parent.id), &key).await.expect_problem(401, "unauthenticated");
        app.get(&format!("/v1/accounts/{}", parent.id), &parent.key).await.expect(200);
        // The last admin stays.
        app.delete(&format!("/v1/accounts/{}/members/{}", parent.id, parent.admin_user_id), &parent.key).await.expect_problem(409, "conflict");
    }

    async fn a_suspended_accounts_key_is_refused_on_every_route(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let key = app.accept(sub.invitation.as_deref().unwrap(), "Team Admin", "correct horse battery").await;
        let body = app.post(&format!("/v1/accounts/{}/suspend", sub.id), &parent.key, json!({})).await.expect(200);
        assert_eq!(body["status"], "suspended");
        let base = format!("/v1/accounts/{}", sub.id);
        let tries = [
            app.get(&base, &key).await,
            app.patch(&base, &key, json!({"timezone": "UTC"})).await,
            app.get(&format!("{base}/members"), &key).await,
            app.post(&format!("{base}/members"), &key, json!({"email": "a@acme.example", "role": "basic"})).await,
            app.get(&format!("{base}/api-keys"), &key).await,
            app.post(&format!("{base}/api-keys"), &key, json!({"name": "k"})).await,
            app.get(&format!("/v1/accounts/{}", parent.id), &key).await,
        ];
        for reply in tries {
            reply.expect_problem(403, "account_suspended");
        }
        // The parent still reads and manages it.
        app.get(&base, &parent.key).await.expect(200);
        app.post(&format!("{base}/unsuspend"), &parent.key, json!({})).await.expect(200);
        app.get(&base, &key).await.expect(200);

        // A suspended parent's own key too.
        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({})).await.expect(200);
        app.get(&format!("/v1/accounts/{}", parent.id), &parent.key).await.expect_problem(403, "account_suspended");
        app.get(&format!("{base}/members"), &parent.key).await.expect_problem(403, "account_suspended");
    }

    async fn parent_suspension_cascades_and_reactivation_restores_each_status(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let active = app.sub(&parent, "Active", "active@acme.example").await;
        app.accept(active.invitation.as_deref().unwrap(), "A", "correct horse battery").await;
        let invited = app.sub(&parent, "Invited", "invited@acme.example").await;
        let suspended = app.sub(&parent, "Suspended", "suspended@acme.example").await;
        app.accept(suspended.invitation.as_deref().unwrap(), "S", "correct horse battery").await;
        app.post(&format!("/v1/accounts/{}/suspend", suspended.id), &parent.key, json!({})).await.expect(200);
        let deleted = app.sub(&parent, "Deleted", "deleted@acme.example").await;
        app.delete(&format!("/v1/accounts/{}", deleted.id), &parent.key).await.expect(200);

        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({})).await.expect(200);
        let subs = app.get(&format!("/v1/operator/accounts/{}/subaccounts?status=suspended", parent.id), &app.operator_token.clone()).await.expect(200);
        assert_eq!(subs["data"].as_array().unwrap().len(), 3, "{subs}");
        let deleted_now = app.get(&format!("/v1/operator/accounts/{}/subaccounts?status=deleted", parent.id), &app.operator_token.clone()).await.expect(200);
        assert_eq!(deleted_now["data"][0]["id"], deleted.id.as_str(), "a deleted sub-account stays deleted");

        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({})).await.expect(200);
        assert_eq!(status(&app, &parent, &active.id).await, "active");
        assert_eq!(status(&app, &parent, &invited.id).await, "invited");
        assert_eq!(status(&app, &parent, &suspended.id).await, "suspended", "suspended before, suspended after");

        // Unsuspending twice is a state conflict.
        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({})).await.expect_problem(409, "conflict");
    }

    async fn an_invitation_accepted_while_the_parent_is_suspended_comes_back_active(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({})).await.expect(200);
        let key = app.accept(sub.invitation.as_deref().unwrap(), "Team", "correct horse battery").await;
        app.get(&format!("/v1/accounts/{}", sub.id), &key).await.expect_problem(403, "account_suspended");
        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({})).await.expect(200);
        assert_eq!(app.get(&format!("/v1/accounts/{}", sub.id), &key).await.expect(200)["status"], "active");
    }

    async fn deleting_a_parent_deletes_its_tree(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let a = app.sub(&parent, "A", "a@acme.example").await;
        let b = app.sub(&parent, "B", "b@acme.example").await;
        let b_key = app.accept(b.invitation.as_deref().unwrap(), "B", "correct horse battery").await;
        let gone = app.delete(&format!("/v1/operator/accounts/{}", parent.id), &app.operator_token.clone()).await.expect(200);
        assert_eq!(gone["status"], "deleted");
        let subs = app.get(&format!("/v1/operator/accounts/{}/subaccounts?status=deleted", parent.id), &app.operator_token.clone()).await.expect(200);
        let ids: Vec<&str> = subs["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&a.id.as_str()) && ids.contains(&b.id.as_str()));
        app.get(&format!("/v1/accounts/{}", b.id), &b_key).await.expect_problem(403, "account_suspended");
        app.delete(&format!("/v1/operator/accounts/{}", parent.id), &app.operator_token.clone()).await.expect_problem(409, "conflict");
    }
}
