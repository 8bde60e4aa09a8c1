//! Who may act where (invariant 2) and what roles allow (the shipped
//! authorize policy).

use canopy_e2e::both_backends;
use serde_json::json;

both_backends! {
    async fn a_subaccount_key_cannot_create_subaccounts(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let key = app.accept(sub.invitation.as_deref().unwrap(), "Team Admin", "correct horse battery").await;
        app.post(&format!("/v1/accounts/{}/subaccounts", sub.id), &key, json!({"name": "Nested", "email": "n@acme.example"}))
            .await
            .expect_problem(403, "forbidden");
        // Nor under its parent.
        app.post(&format!("/v1/accounts/{}/subaccounts", parent.id), &key, json!({"name": "Nested", "email": "n@acme.example"}))
            .await
            .expect_problem(404, "not_found");
    }

    async fn a_subaccount_sees_neither_its_parent_nor_its_siblings(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let a = app.sub(&parent, "A", "a@acme.example").await;
        let b = app.sub(&parent, "B", "b@acme.example").await;
        let key = app.accept(a.invitation.as_deref().unwrap(), "A Admin", "correct horse battery").await;
        for path in [
            format!("/v1/accounts/{}", parent.id),
            format!("/v1/accounts/{}", b.id),
            format!("/v1/accounts/{}/members", b.id),
            format!("/v1/accounts/{}/subaccounts", parent.id),
            "/v1/accounts/acct_does_not_exist".to_string(),
        ] {
            let body = app.get(&path, &key).await.expect_problem(404, "not_found");
            // The same answer as for an id that does not exist.
            assert_eq!(body["title"], "Not found");
        }
        app.get(&format!("/v1/accounts/{}", a.id), &key).await.expect(200);
    }

    async fn a_parent_admin_acts_in_its_subaccounts(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let other = app.parent("other.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let path = format!("/v1/accounts/{}", sub.id);
        assert_eq!(app.get(&path, &parent.key).await.expect(200)["id"], sub.id.as_str());
        app.patch(&path, &parent.key, json!({"name": "Renamed"})).await.expect(200);
        let invited = app.post(&format!("{path}/members"), &parent.key, json!({"email": "new@acme.example", "role": "basic"})).await.expect(201);
        assert!(invited["invitation"]["token"].as_str().unwrap().starts_with("ci_"));
        app.get(&format!("{path}/members"), &parent.key).await.expect(200);
        // Another parent's admin reaches nothing of it.
        app.get(&path, &other.key).await.expect_problem(404, "not_found");
        app.patch(&path, &other.key, json!({"name": "Hijack"})).await.expect_problem(404, "not_found");
    }

    async fn a_non_admin_of_the_parent_does_not_reach_subaccounts(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let advanced = app.member(&parent.key, &parent.id, "adv@acme.example", "advanced").await;
        app.get(&format!("/v1/accounts/{}", parent.id), &advanced).await.expect(200);
        app.get(&format!("/v1/accounts/{}", sub.id), &advanced).await.expect_problem(404, "not_found");
    }

    async fn roles_limit_what_members_do(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let sub_admin = app.accept(sub.invitation.as_deref().unwrap(), "Team Admin", "correct horse battery").await;
        let basic = app.member(&sub_admin, &sub.id, "basic@acme.example", "basic").await;
        let advanced = app.member(&sub_admin, &sub.id, "adv@acme.example", "advanced").await;
        let members = format!("/v1/accounts/{}/members", sub.id);

        let body = app.post(&members, &basic, json!({"email": "x@acme.example", "role": "basic"})).await.expect_problem(403, "policy_denied");
        assert_eq!(body["policy"]["id"], "default.authorize");
        app.get(&members, &basic).await.expect_problem(403, "policy_denied");
        app.get(&members, &advanced).await.expect(200);
        app.post(&members, &advanced, json!({"email": "x@acme.example", "role": "basic"})).await.expect_problem(403, "policy_denied");
        app.post(&format!("/v1/accounts/{}/api-keys", sub.id), &basic, json!({"name": "ci"})).await.expect_problem(403, "policy_denied");
        app.get(&format!("/v1/accounts/{}", sub.id), &basic).await.expect(200);
        // A sub-account's own admin cannot suspend it (only the parent can).
        app.post(&format!("/v1/accounts/{}/suspend", sub.id), &sub_admin, json!({})).await.expect_problem(403, "policy_denied");
    }

    async fn tokens_are_checked_first(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}", parent.id);
        app.request(reqwest::Method::GET, &path, None, None).await.expect_problem(401, "unauthenticated");
        app.get(&path, "ck_not_a_key").await.expect_problem(401, "unauthenticated");
        // The operator token is for operator routes; keys are not.
        app.get("/v1/operator/accounts", &parent.key).await.expect_problem(401, "unauthenticated");
        app.get(&path, &app.operator_token.clone()).await.expect_problem(403, "forbidden");
    }

    async fn reseller_subaccounts_do_not_see_prices_enterprise_ones_do(app) {
        let reseller = app.parent("resell.example", "reseller").await;
        let sub = app.sub(&reseller, "Client", "c@client.example").await;
        let key = app.accept(sub.invitation.as_deref().unwrap(), "Client", "correct horse battery").await;
        let own = app.get(&format!("/v1/accounts/{}", sub.id), &key).await.expect(200);
        assert!(own.get("prices").is_none(), "hidden fields are absent: {own}");
        let by_parent = app.get(&format!("/v1/accounts/{}", sub.id), &reseller.key).await.expect(200);
        assert_eq!(by_parent["prices"]["sms"], "0.0075");

        let enterprise = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&enterprise, "Team", "t@acme.example").await;
        let key = app.accept(sub.invitation.as_deref().unwrap(), "Team", "correct horse battery").await;
        let own = app.get(&format!("/v1/accounts/{}", sub.id), &key).await.expect(200);
        assert_eq!(own["prices"]["sms"], "0.0075");
    }
}
