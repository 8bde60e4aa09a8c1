//! The HTTP conventions of API.md: idempotency, pagination, limits, errors,
//! health, metrics and the generated documentation.

use canopy_e2e::both_backends;
use reqwest::Method;
use serde_json::json;

both_backends! {
    async fn idempotency_key_replays_the_first_response(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/subaccounts", parent.id);
        let body = json!({"name": "Team", "email": "team@acme.example"});
        let key = [("Idempotency-Key", "create-team-1")];
        let first = app.request_with(Method::POST, &path, Some(&parent.key), Some(body.clone()), &key).await;
        let first_body = first.body.clone();
        assert_eq!(first.expect(201)["name"], "Team");
        let again = app.request_with(Method::POST, &path, Some(&parent.key), Some(body.clone()), &key).await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        // The replay is the first response, less the secret it carried.
        assert_eq!(again.headers.get("idempotent-redacted").unwrap(), "invitation.token");
        let mut expected = first_body.clone();
        expected["invitation"].as_object_mut().unwrap().remove("token");
        assert_eq!(again.expect(201), expected, "the replay is the first response");
        let list = app.get(&path, &parent.key).await.expect(200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "created once");

        let other = json!({"name": "Other", "email": "other@acme.example"});
        app.request_with(Method::POST, &path, Some(&parent.key), Some(other), &key).await.expect_problem(409, "idempotency_conflict");

        // A 4xx is kept too: the same request replays the same refusal.
        let bad = json!({"name": "Bad", "email": "bad@gmail.com"});
        let k2 = [("Idempotency-Key", "bad-1")];
        app.request_with(Method::POST, &path, Some(&parent.key), Some(bad.clone()), &k2).await.expect_problem(422, "validation_failed");
        let replay = app.request_with(Method::POST, &path, Some(&parent.key), Some(bad), &k2).await;
        assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
        replay.expect_problem(422, "validation_failed");

        // Another caller with the same key gets no replay of someone else's answer.
        app.request_with(Method::POST, &path, Some("ck_unknown"), Some(body), &key).await.expect_problem(401, "unauthenticated");
        let long = "k".repeat(256);
        app.request_with(Method::POST, &path, Some(&parent.key), Some(json!({})), &[("Idempotency-Key", long.as_str())]).await.expect_problem(422, "validation_failed");
    }

    async fn lists_are_paginated_with_cursors(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        for i in 0..5 {
            app.sub(&parent, &format!("Team {i}"), &format!("t{i}@acme.example")).await;
        }
        let path = format!("/v1/accounts/{}/subaccounts", parent.id);
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=2&cursor={c}"),
                None => format!("{path}?limit=2"),
            };
            let page = app.get(&url, &parent.key).await.expect(200);
            let items = page["data"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|i| i["name"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, (0..5).rev().map(|i| format!("Team {i}")).collect::<Vec<_>>(), "newest first");
        app.get(&format!("{path}?limit=1001"), &parent.key).await.expect_problem(422, "validation_failed");
        app.get(&format!("{path}?limit=0"), &parent.key).await.expect_problem(422, "validation_failed");
        app.get(&format!("{path}?cursor=%%%"), &parent.key).await.expect_problem(422, "validation_failed");
        app.get(&format!("{path}?status=sleeping"), &parent.key).await.expect_problem(422, "validation_failed");
    }

    async fn bodies_over_one_mebibyte_are_refused(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let huge = "x".repeat(1024 * 1024 + 10);
        app.post(&format!("/v1/accounts/{}/subaccounts", parent.id), &parent.key, json!({"name": huge, "email": "a@acme.example"}))
            .await
            .expect_problem(413, "payload_too_large");
    }

    async fn health_metrics_and_documentation_are_served(app) {
        assert_eq!(app.request(Method::GET, "/healthz", None, None).await.expect(200)["status"], "ok");
        assert_eq!(app.request(Method::GET, "/readyz", None, None).await.expect(200)["status"], "ready");
        let spec = app.request(Method::GET, "/openapi.json", None, None).await.expect(200);
        for path in ["/v1/operator/accounts", "/v1/accounts/{id}/subaccounts", "/v1/invitations/accept", "/v1/sessions", "/v1/accounts/{id}/members", "/v1/accounts/{parent_id}/policies", "/v1/accounts/{parent_id}/policies/{policy_id}/versions/{version}/activate", "/v1/accounts/{id}/decisions", "/v1/operator/policies", "/v1/operator/policy-settings"] {
            assert!(spec["paths"].get(path).is_some(), "{path} is documented");
        }
        let docs = app.request(Method::GET, "/docs", None, None).await.expect(200);
        assert!(docs.as_str().unwrap().contains("<rapi-doc spec-url=\"/openapi.json\""));
        let metrics = app.request(Method::GET, "/metrics", None, None).await.expect(200);
        assert!(metrics.as_str().unwrap().contains("canopy_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"));
        assert!(metrics.as_str().unwrap().contains("canopy_decisions_dropped_total 0"));
        assert!(metrics.as_str().unwrap().contains("canopy_policy_generation "));
        app.request(Method::GET, "/v1/nowhere", None, None).await.expect_problem(404, "not_found");
    }

    async fn the_test_clock_moves_the_servers_time(app) {
        app.set_clock("2031-01-31T23:59:00Z").await;
        let parent = app.parent("acme.example", "enterprise").await;
        let account = app.get(&format!("/v1/accounts/{}", parent.id), &parent.key).await.expect(200);
        assert!(account["created_at"].as_str().unwrap().starts_with("2031-01-31T23:59"), "{account}");
    }
}
