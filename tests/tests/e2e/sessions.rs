//! Signing out and key hygiene: a user's sessions listed and revoked (the
//! token refused at once), API keys that expire by the host's clock and
//! say when they were last used.

use canopy_e2e::{TestApp, both_backends};
use reqwest::Method;
use serde_json::json;

async fn login(app: &TestApp, email: &str, password: &str) -> String {
    app.request(
        Method::POST,
        "/v1/sessions",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
    .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends! {
    async fn a_user_lists_their_sessions_and_signs_one_out(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        app.accept(&parent.invitation, "Ada", "correct horse battery").await;
        let laptop = login(&app, "admin@acme.example", "correct horse battery").await;
        let phone = login(&app, "admin@acme.example", "correct horse battery").await;
        let account = format!("/v1/accounts/{}", parent.id);
        app.get(&account, &phone).await.expect(200);

        let listed = app.get("/v1/sessions", &laptop).await.expect(200);
        let sessions = listed["data"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "{listed}");
        // Newest first; the caller's own is marked; no token is shown.
        assert_eq!((sessions[0]["current"].as_bool(), sessions[1]["current"].as_bool()), (Some(false), Some(true)), "{listed}");
        assert!(!listed.to_string().contains(&phone) && !listed.to_string().contains(&laptop));
        let phone_id = sessions[0]["id"].as_str().unwrap().to_string();

        // Another user cannot see or sign out this user's sessions.
        let other = app.parent("other.example", "enterprise").await;
        assert!(app.get("/v1/sessions", &other.key).await.expect(200)["data"].as_array().unwrap().is_empty());
        app.delete(&format!("/v1/sessions/{phone_id}"), &other.key).await.expect_problem(404, "not_found");
        app.get(&account, &phone).await.expect(200);

        // Signed out: refused by the very next request; the other session lives.
        app.delete(&format!("/v1/sessions/{phone_id}"), &laptop).await.expect(204);
        app.get(&account, &phone).await.expect_problem(401, "unauthenticated");
        app.get(&account, &laptop).await.expect(200);
        app.delete(&format!("/v1/sessions/{phone_id}"), &laptop).await.expect_problem(404, "not_found");
        // The operator has no sessions.
        app.get("/v1/sessions", &app.operator_token).await.expect_problem(403, "forbidden");
    }

    async fn api_keys_expire_by_the_host_clock_and_note_their_last_use(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        app.set_clock("2030-03-01T10:00:00Z").await;
        let keys = format!("/v1/accounts/{}/api-keys", parent.id);
        let bad = app.post(&keys, &parent.key, json!({"name": "past", "expires_at": "2030-02-01T00:00:00Z"})).await.expect_problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "expires_at");
        app.post(&keys, &parent.key, json!({"name": "bad", "expires_at": "next week"})).await.expect_problem(422, "validation_failed");
        let made = app.post(&keys, &parent.key, json!({"name": "ci", "expires_at": "2030-03-02T10:00:00Z"})).await.expect(201);
        let secret = made["secret"].as_str().unwrap().to_string();
        let account = format!("/v1/accounts/{}", parent.id);
        app.get(&account, &secret).await.expect(200);

        // Its use is noted (off the request, so wait for it), to the minute.
        let mut listed = serde_json::Value::Null;
        for _ in 0..100 {
            listed = app.get(&keys, &parent.key).await.expect(200);
            let key = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == made["id"]).unwrap().clone();
            if key.get("last_used_at").is_some() {
                assert_eq!(key["expires_at"], "2030-03-02T10:00:00Z");
                assert!(key["last_used_at"].as_str().unwrap().starts_with("2030-03-01T10:0"), "{key}");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let key = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == made["id"]).unwrap().clone();
        assert!(key.get("last_used_at").is_some(), "{listed}");
        // Newest first: the new key before the parent's first one.
        assert_eq!(listed["data"][0]["id"], made["id"]);

        // Past its expiry by the host's clock, refused at once.
        app.set_clock("2030-03-02T10:00:01Z").await;
        app.get(&account, &secret).await.expect_problem(401, "unauthenticated");
        app.get(&account, &parent.key).await.expect(200);
    }
}
