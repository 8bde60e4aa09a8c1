//! Creating and changing sub-accounts: validation, the shipped e-mail and
//! naming policy, uniqueness, inheritance from the parent.

use canopy_e2e::both_backends;
use serde_json::json;

both_backends! {
    async fn name_over_160_characters_is_refused_by_the_policy(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let body = app.try_sub(&parent, &"n".repeat(161), "a@acme.example", json!({})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "name");
        assert_eq!(body["policy"]["id"], "default.subaccount.validate");
        // 160 is fine, counted in characters, not bytes.
        app.try_sub(&parent, &"é".repeat(160), "a@acme.example", json!({})).await.expect(201);
    }

    async fn duplicate_name_within_a_parent_conflicts_but_not_across_parents(app) {
        let acme = app.parent("acme.example", "enterprise").await;
        let other = app.parent("other.example", "enterprise").await;
        app.sub(&acme, "Sales Team", "sales@acme.example").await;
        let body = app.try_sub(&acme, "SALES team", "sales2@acme.example", json!({})).await.expect_problem(409, "conflict");
        assert!(body["detail"].as_str().unwrap().contains("name"));
        app.sub(&other, "Sales Team", "sales@other.example").await;
    }

    async fn deleted_subaccount_frees_its_name_but_not_its_email(app) {
        let acme = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&acme, "Ops", "ops@acme.example").await;
        app.delete(&format!("/v1/accounts/{}", sub.id), &acme.key).await.expect(200);
        app.try_sub(&acme, "Ops", "ops@acme.example", json!({})).await.expect_problem(409, "conflict");
        app.try_sub(&acme, "Ops", "ops2@acme.example", json!({})).await.expect(201);
    }

    async fn free_mail_addresses_are_refused_naming_the_policy(app) {
        let parent = app.parent("acme.example", "reseller").await;
        for email in ["someone@gmail.com", "x@Yahoo.com", "y@outlook.com", "z@hotmail.com"] {
            let body = app.try_sub(&parent, "Team", email, json!({})).await.expect_problem(422, "validation_failed");
            assert_eq!(body["errors"][0]["field"], "email", "{email}");
            assert_eq!(body["policy"]["id"], "default.subaccount.validate");
            assert!(body["policy"]["reason"].as_str().unwrap().contains("business"));
        }
    }

    async fn enterprise_requires_the_parents_domain_reseller_does_not(app) {
        let enterprise = app.parent("acme.example", "enterprise").await;
        let body = app.try_sub(&enterprise, "Client", "it@client.example", json!({})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "email");
        assert!(body["detail"].as_str().unwrap().contains("acme.example"));
        app.try_sub(&enterprise, "Client", "it@acme.example", json!({})).await.expect(201);

        let reseller = app.parent("resell.example", "reseller").await;
        app.try_sub(&reseller, "Client", "it@client.example", json!({})).await.expect(201);
    }

    async fn unknown_fields_and_malformed_input_are_named(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let body = app.try_sub(&parent, "Team", "t@acme.example", json!({"colour": "red"})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "colour");
        let body = app.try_sub(&parent, "Team", "t@acme.example", json!({"credit": {"mode": "assigned_budget", "bonus": 1}})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "credit.bonus");
        let body = app.try_sub(&parent, "Team", "not-an-email", json!({})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "email");
        let body = app.try_sub(&parent, "Team", "t@acme.example", json!({"channels": ["voice"]})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "channels");
        let body = app.post(&format!("/v1/accounts/{}/subaccounts", parent.id), &parent.key, json!(["not", "an", "object"])).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "body");
    }

    async fn an_email_used_anywhere_on_the_platform_conflicts(app) {
        let acme = app.parent("acme.example", "reseller").await;
        let other = app.parent("other.example", "reseller").await;
        app.sub(&acme, "One", "shared@client.example").await;
        app.try_sub(&other, "Two", "SHARED@client.example", json!({})).await.expect_problem(409, "conflict");
        // A parent's own address is taken too.
        app.try_sub(&other, "Three", "billing@acme.example", json!({})).await.expect_problem(409, "conflict");
    }

    async fn subaccounts_need_the_operators_switch(app) {
        let body = app
            .op_post("/v1/operator/accounts", json!({
                "name": "Plain", "company_name": "Plain Ltd", "email": "billing@plain.example",
                "billing_type": "postpaid", "monthly_credit_limit": "1000", "currency": "EUR",
                "admin": {"email": "admin@plain.example", "name": "Admin"}
            }))
            .await
            .expect(201);
        let id = body["account"]["id"].as_str().unwrap();
        let key = body["api_key"]["secret"].as_str().unwrap();
        let path = format!("/v1/accounts/{id}/subaccounts");
        app.post(&path, key, json!({"name": "T", "email": "t@plain.example"})).await.expect_problem(403, "feature_not_enabled");
        app.get(&path, key).await.expect_problem(403, "feature_not_enabled");
        let parent = app.op_patch(&format!("/v1/operator/accounts/{id}"), json!({"subaccounts_enabled": true})).await.expect(200);
        assert_eq!(parent["subaccount_module"], "enterprise", "the module defaults to enterprise");
        app.post(&path, key, json!({"name": "T", "email": "t@plain.example"})).await.expect(201);
    }

    async fn subaccounts_inherit_and_follow_the_parent(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        assert_eq!(sub.body["currency"], "USD");
        assert_eq!(sub.body["company_name"], "acme.example Ltd");
        assert_eq!(sub.body["prices"]["sms"], "0.0075");
        app.patch(&format!("/v1/accounts/{}", sub.id), &parent.key, json!({"channels": ["sms", "whatsapp"]})).await.expect(200);
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({
            "prices": {"sms": "0.0100"}, "region": "eu-west", "channels": ["sms"]
        })).await.expect(200);
        let read = app.get(&format!("/v1/accounts/{}", sub.id), &parent.key).await.expect(200);
        assert_eq!(read["prices"]["sms"], "0.01");
        assert_eq!(read["region"], "eu-west");
        assert_eq!(read["channels"], json!(["sms"]), "a channel removed from the parent leaves its sub-accounts");
    }

    async fn credit_settings_follow_the_parents_billing(app) {
        let prepaid = app.parent("acme.example", "enterprise").await;
        let body = app.try_sub(&prepaid, "Shared", "s@acme.example", json!({"credit": {"mode": "shared_usage"}})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "credit.mode");
        let created = app.try_sub(&prepaid, "Budget", "b@acme.example", json!({
            "credit": {"mode": "assigned_budget", "low_balance_alert": {"threshold": "10.00", "emails": ["ops@acme.example"]}}
        })).await.expect(201);
        assert_eq!(created["credit_mode"], "assigned_budget");
        assert_eq!(created["low_balance_alert"]["threshold"], "10.00");
        app.try_sub(&prepaid, "Limit", "l@acme.example", json!({"credit": {"mode": "shared_usage", "monthly_usage_limit": "50"}}))
            .await
            .expect_problem(403, "feature_not_enabled");
    }

    async fn patch_answers_with_the_whole_account_and_guards_parent_only_fields(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let sub_key = app.accept(sub.invitation.as_deref().unwrap(), "Sub Admin", "correct horse battery").await;
        let path = format!("/v1/accounts/{}", sub.id);
        let body = app.patch(&path, &sub_key, json!({"timezone": "Europe/Rome", "external_id": "crm-7"})).await.expect(200);
        assert_eq!(body["timezone"], "Europe/Rome");
        assert_eq!(body["external_id"], "crm-7");
        assert_eq!(body["name"], "Team");
        app.patch(&path, &sub_key, json!({"email": "new@acme.example"})).await.expect_problem(403, "forbidden");
        let body = app.patch(&path, &parent.key, json!({"email": "new@gmail.com"})).await.expect_problem(422, "validation_failed");
        assert_eq!(body["policy"]["id"], "default.subaccount.validate");
        let body = app.patch(&path, &parent.key, json!({"email": "new@acme.example"})).await.expect(200);
        assert_eq!(body["email"], "new@acme.example");
        app.patch(&path, &parent.key, json!({"name": "x".repeat(161)})).await.expect_problem(422, "validation_failed");
    }
}
