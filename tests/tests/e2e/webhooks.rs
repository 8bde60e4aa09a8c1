//! Webhooks (API.md, "Traffic"; seed 002): signed events from the outbox,
//! retries with the same event id, a hanging receiver that does not slow
//! the request path, a parent's webhook seeing its tree, refused targets,
//! reach, and secrets shown once and sealed at rest.

use std::time::{Duration, Instant};

use canopy_e2e::webhooks::{Receiver, funded_parent, signature_verifies};
use canopy_e2e::{Options, both_backends};
use serde_json::{Value, json};

async fn active_sub(
    app: &canopy_e2e::TestApp,
    parent: &canopy_e2e::Parent,
    name: &str,
    email: &str,
) -> String {
    let body = app
        .try_sub(parent, name, email, json!({"invite": false}))
        .await
        .expect(201);
    body["id"].as_str().unwrap().to_string()
}

fn fast_retries() -> Options {
    Options {
        webhook_backoff_base: Some(Duration::from_millis(20)),
        ..Options::default()
    }
}

both_backends! {
    options = fast_retries();

    async fn a_receiver_gets_signed_events_that_verify(app) {
        app.allow_private_webhooks(true).await;
        let rx = Receiver::start().await;
        let parent = app.parent("acme.example", "enterprise").await;
        let (wh, secret) = app.webhook(&parent.id, &parent.key, &rx.url, &["account.*"]).await;
        assert!(secret.starts_with("whsec_"));
        let sub = active_sub(&app, &parent, "Team", "team@acme.example").await;
        app.post(&format!("/v1/accounts/{sub}/suspend"), &parent.key, json!({})).await.expect(200);
        let got = rx.wait_for(2).await;
        let mut types = Vec::new();
        for r in &got {
            let sig = r.header("canopy-signature").expect("signed");
            assert!(signature_verifies(&secret, sig, &r.body), "{sig} verifies over {}", r.body);
            assert!(!signature_verifies("whsec_other", sig, &r.body));
            assert!(!signature_verifies(&secret, sig, &format!("{} ", r.body)), "a changed body does not verify");
            let body = r.json();
            assert_eq!(body["account_id"], sub.as_str());
            assert!(body["id"].as_str().unwrap().starts_with("evt_"));
            assert_eq!(r.header("canopy-event-id"), body["id"].as_str());
            assert!(body["created_at"].is_string());
            types.push(body["type"].as_str().unwrap().to_string());
            if body["type"] == "account.suspended" {
                assert_eq!(body["data"], json!({"status": "suspended", "previous_status": "active"}));
            } else {
                assert_eq!(body["data"]["name"], "Team");
                assert_eq!(body["data"]["parent_id"], parent.id.as_str());
            }
        }
        types.sort();
        assert_eq!(types, ["account.created", "account.suspended"]);
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| {
            l.len() == 2 && l.iter().all(|d| d["status"] == "delivered")
        }).await;
        for d in &log {
            assert_eq!(d["attempts"], 1);
            assert_eq!(d["last_status"], 200);
            assert!(d["delivered_at"].is_string());
            assert!(d["next_attempt_at"].is_null());
        }
        // The secret is shown once: never in the list or the webhook itself.
        let list = app.get(&format!("/v1/accounts/{}/webhooks", parent.id), &parent.key).await.expect(200);
        let one = app.get(&format!("/v1/accounts/{}/webhooks/{wh}", parent.id), &parent.key).await.expect(200);
        for shown in [&list, &one] {
            assert!(!shown.to_string().contains(&secret), "{shown}");
        }
        assert!(one.get("secret").is_none());
        assert_eq!(one["events"], json!(["account.created", "account.suspended", "account.unsuspended", "account.deleted", "account.merged"]));
        // At rest it is sealed, not in clear.
        let rows = app.query_rows("SELECT secret FROM webhooks WHERE id = $1", &wh).await;
        let stored = rows[0][0].clone().unwrap();
        assert_ne!(stored, secret);
        assert!(!stored.contains(&secret[6..]), "sealed: {stored}");
        // Deleted, it gets nothing more.
        app.delete(&format!("/v1/accounts/{}/webhooks/{wh}", parent.id), &parent.key).await.expect(204);
        app.get(&format!("/v1/accounts/{}/webhooks/{wh}", parent.id), &parent.key).await.expect_problem(404, "not_found");
        app.post(&format!("/v1/accounts/{sub}/unsuspend"), &parent.key, json!({})).await.expect(200);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(rx.received().len(), 2);
    }

    async fn every_account_event_and_finished_operations_reach_the_trees_webhook(app) {
        app.allow_private_webhooks(true).await;
        let rx = Receiver::start().await;
        let parent = app.parent("acme.example", "enterprise").await;
        let a = active_sub(&app, &parent, "A", "a@acme.example").await;
        let b = active_sub(&app, &parent, "B", "b@acme.example").await;
        let c = active_sub(&app, &parent, "C", "c@acme.example").await;
        let (wh, _) = app.webhook(&parent.id, &parent.key, &rx.url, &["account.*", "operation.completed"]).await;
        app.post(&format!("/v1/accounts/{a}/suspend"), &parent.key, json!({})).await.expect(200);
        app.post(&format!("/v1/accounts/{a}/unsuspend"), &parent.key, json!({})).await.expect(200);
        // A parent's suspension: one event per account whose status changes.
        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({})).await.expect(200);
        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({})).await.expect(200);
        let merge = app.post(&format!("/v1/accounts/{}/merges", parent.id), &parent.key,
            json!({"sources": [c], "target": b})).await.expect(201);
        app.op_post(&format!("/v1/operator/accounts/{}/merges/{}/approve", parent.id, merge["id"].as_str().unwrap()), json!({})).await.expect(200);
        app.delete(&format!("/v1/accounts/{a}"), &parent.key).await.expect(200);
        app.provision(&parent, "line", &canopy_e2e::resources::lines("1", 5_550_000, 2), Value::Null).await;
        let ids: Vec<String> = app.all_resources(&parent.id, &parent.key, "").await.iter()
            .map(|r| r["id"].as_str().unwrap().to_string()).collect();
        let op = app.transfer(&parent, &b, &ids).await;
        let got = rx.wait_for(13).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut seen: Vec<(String, String)> = rx.received().iter().map(|r| {
            let body = r.json();
            (body["type"].as_str().unwrap().to_string(), body["account_id"].as_str().unwrap().to_string())
        }).collect();
        seen.sort();
        let p = parent.id.clone();
        let mut want: Vec<(String, String)> = [
            ("account.suspended", &a), ("account.unsuspended", &a),
            ("account.suspended", &p), ("account.suspended", &a), ("account.suspended", &b), ("account.suspended", &c),
            ("account.unsuspended", &p), ("account.unsuspended", &a), ("account.unsuspended", &b), ("account.unsuspended", &c),
            ("account.merged", &c), ("account.deleted", &a), ("operation.completed", &p),
        ].iter().map(|(t, id)| (t.to_string(), id.to_string())).collect();
        want.sort();
        assert_eq!(seen, want);
        let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
        let merged = bodies.iter().find(|b| b["type"] == "account.merged").unwrap();
        assert_eq!(merged["data"], json!({"merged_into": b, "merge_id": merge["id"]}));
        let deleted = bodies.iter().find(|b| b["type"] == "account.deleted").unwrap();
        assert_eq!(deleted["data"], json!({"status": "deleted", "previous_status": "active"}));
        let done = bodies.iter().find(|b| b["type"] == "operation.completed").unwrap();
        assert_eq!(done["data"], json!({"operation_id": op["id"], "kind": "transfer", "status": "completed",
            "total": 2, "succeeded": 2, "failed": 0}));
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| l.iter().all(|d| d["status"] == "delivered")).await;
        assert_eq!(log.len(), 13);
    }

    async fn an_https_target_must_present_a_trusted_certificate(app) {
        app.allow_private_webhooks(true).await;
        // A server that speaks plain HTTP: the TLS handshake fails, nothing
        // is sent in clear, and the delivery waits for a retry.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let https = format!("https://{}/hooks", plain.local_addr().unwrap());
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = plain.accept().await {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = seen_tx.send(buf[..n].to_vec());
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        let parent = app.parent("acme.example", "enterprise").await;
        let (wh, _) = app.webhook(&parent.id, &parent.key, &https, &["account.created"]).await;
        active_sub(&app, &parent, "Team", "team@acme.example").await;
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| {
            l.len() == 1 && l[0]["attempts"].as_i64().unwrap_or(0) >= 1
        }).await;
        assert_eq!(log[0]["status"], "pending");
        assert!(log[0]["last_error"].as_str().unwrap().contains("TLS"), "{log:?}");
        let hello = seen_rx.recv().await.unwrap();
        assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record, not a request in clear");
        assert!(!String::from_utf8_lossy(&hello).contains("evt_"));
    }

    async fn a_failing_receiver_gets_the_event_again_with_the_same_id(app) {
        app.allow_private_webhooks(true).await;
        let rx = Receiver::start().await;
        rx.fail_next(3);
        let parent = app.parent("acme.example", "enterprise").await;
        let (wh, secret) = app.webhook(&parent.id, &parent.key, &rx.url, &["account.created"]).await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let got = rx.wait_for(4).await;
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| {
            l.len() == 1 && l[0]["status"] == "delivered"
        }).await;
        let ids: Vec<Value> = got.iter().map(|r| r.json()["id"].clone()).collect();
        assert!(ids.iter().all(|i| *i == ids[0]), "one event id on every attempt: {ids:?}");
        assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 500, 200]);
        assert!(got.iter().all(|r| r.json()["account_id"] == sub.id.as_str()));
        assert!(got.iter().all(|r| signature_verifies(&secret, r.header("canopy-signature").unwrap(), &r.body)));
        assert_eq!(log[0]["attempts"], 4, "{log:?}");
        assert_eq!(log[0]["last_status"], 200);
        assert_eq!(log[0]["event_id"], ids[0]);
        assert_eq!(log[0]["event_type"], "account.created");
        // Delivered once successfully: nothing more comes.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(rx.received().len(), 4);
    }

    async fn a_hanging_receiver_slows_neither_sends_nor_other_receivers(app) {
        app.allow_private_webhooks(true).await;
        let (rx, healthy) = (Receiver::start().await, Receiver::start().await);
        let parent = funded_parent(&app, "acme.example", "enterprise", "100000").await;
        let time_sends = |n: usize| {
            let (app, parent) = (&app, &parent);
            async move {
                let mut took = Vec::with_capacity(n);
                for _ in 0..n {
                    let start = Instant::now();
                    app.send(&parent.id, &parent.key).await.expect(201);
                    took.push(start.elapsed());
                }
                took.sort();
                took[n / 2]
            }
        };
        let before = time_sends(30).await;
        rx.hang(true);
        let (wh, _) = app.webhook(&parent.id, &parent.key, &rx.url, &["account.*"]).await;
        app.webhook(&parent.id, &parent.key, &healthy.url, &["account.*"]).await;
        for i in 0..20 {
            app.sub(&parent, &format!("Team {i}"), &format!("t{i}@acme.example")).await;
        }
        rx.wait_for(4).await;
        // The other receiver gets all 20 while the first one hangs.
        let start = Instant::now();
        healthy.wait_for(20).await;
        let healthy_took = start.elapsed();
        let during = time_sends(30).await;
        eprintln!("median send: {before:?} before, {during:?} while a receiver hangs; the healthy receiver had its 20 events {healthy_took:?} after the hanging one held its slots");
        assert!(
            during < before * 3 + Duration::from_millis(50),
            "sends slowed from {before:?} to {during:?} while a receiver hangs"
        );
        assert!(healthy_took < Duration::from_secs(5), "{healthy_took:?}");
        // A receiver that hangs holds at most 4 attempts at once.
        assert_eq!(rx.received().len(), 4, "attempts held by the hanging receiver");
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| l.len() == 20).await;
        assert!(log.iter().all(|d| d["status"] == "pending" && d["delivered_at"].is_null()));
    }

    async fn a_parents_webhook_sees_its_tree_and_a_subaccounts_only_its_own(app) {
        app.allow_private_webhooks(true).await;
        let (tree_rx, own_rx) = (Receiver::start().await, Receiver::start().await);
        let parent = funded_parent(&app, "acme.example", "enterprise", "1000").await;
        let a = app.try_sub(&parent, "A", "a@acme.example", json!({
            "invite": false,
            "credit": {"mode": "assigned_budget", "initial_credit": "30",
                       "low_balance_alert": {"threshold": "15", "emails": ["ops@acme.example"]}}
        })).await.expect(201)["id"].as_str().unwrap().to_string();
        let b = active_sub(&app, &parent, "B", "b@acme.example").await;
        app.webhook(&parent.id, &parent.key, &tree_rx.url, &["account.suspended", "budget.low"]).await;
        // The parent's admin may manage a sub-account's webhooks.
        app.webhook(&a, &parent.key, &own_rx.url, &["account.*", "budget.low"]).await;
        app.post(&format!("/v1/accounts/{b}/suspend"), &parent.key, json!({})).await.expect(200);
        app.send(&a, &parent.key).await.expect(201); // 30 -> 20
        app.send(&a, &parent.key).await.expect(201); // 20 -> 10: crosses 15
        app.post(&format!("/v1/accounts/{a}/suspend"), &parent.key, json!({})).await.expect(200);
        let tree = tree_rx.wait_for(3).await;
        let own = own_rx.wait_for(2).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen = |got: &[canopy_e2e::webhooks::Received]| {
            let mut s: Vec<(String, String)> = got.iter().map(|r| {
                let b = r.json();
                (b["type"].as_str().unwrap().to_string(), b["account_id"].as_str().unwrap().to_string())
            }).collect();
            s.sort();
            s
        };
        let mut want_tree = vec![
            ("account.suspended".to_string(), a.clone()),
            ("account.suspended".to_string(), b.clone()),
            ("budget.low".to_string(), a.clone()),
        ];
        want_tree.sort();
        assert_eq!(seen(&tree_rx.received()), want_tree);
        let mut want_own = vec![("account.suspended".to_string(), a.clone()), ("budget.low".to_string(), a.clone())];
        want_own.sort();
        assert_eq!(seen(&own_rx.received()), want_own, "a sub-account's webhook sees its own events only");
        let low = tree.iter().map(|r| r.json()).find(|b| b["type"] == "budget.low").unwrap();
        assert_eq!(low["data"], json!({"budget": "10.00", "threshold": "15.00", "currency": "USD"}));
        assert!(own.iter().any(|r| r.json()["type"] == "budget.low"));
    }

    async fn a_reseller_subaccounts_own_webhook_carries_no_money(app) {
        app.allow_private_webhooks(true).await;
        let rx = Receiver::start().await;
        let parent = funded_parent(&app, "resell.example", "reseller", "1000").await;
        let sub = app.try_sub(&parent, "Client", "client@resell.example", json!({
            "credit": {"mode": "assigned_budget", "initial_credit": "30",
                       "low_balance_alert": {"threshold": "25", "emails": ["ops@resell.example"]}}
        })).await.expect(201);
        let id = sub["id"].as_str().unwrap().to_string();
        let own_key = app.accept(sub["invitation"]["token"].as_str().unwrap(), "Client", "correct horse battery").await;
        app.webhook(&id, &own_key, &rx.url, &["budget.low"]).await;
        app.send(&id, &own_key).await.expect(201); // 30 -> 20: crosses 25
        let got = rx.wait_for(1).await;
        let body = got[0].json();
        assert_eq!(body["type"], "budget.low");
        assert_eq!(body["account_id"], id.as_str());
        assert_eq!(body["data"], json!({"currency": "USD"}), "no balance for a reseller sub-account: {body}");
    }

    async fn private_loopback_and_metadata_targets_are_refused(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/webhooks", parent.id);
        let create = |url: &str| {
            let (app, path, key) = (&app, path.clone(), parent.key.clone());
            let url = url.to_string();
            async move { app.post(&path, &key, json!({"url": url, "events": ["account.*"]})).await }
        };
        let field_of = |body: &Value| body["errors"][0]["field"].as_str().unwrap_or("").to_string();
        for url in [
            "http://127.0.0.1:9/hooks",
            "http://localhost/hooks",
            "http://10.1.2.3/hooks",
            "http://192.168.0.10/",
            "http://100.64.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0/",
            "http://[ff02::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            let body = create(url).await.expect_problem(422, "validation_failed");
            assert_eq!(field_of(&body), "url", "{url}: {body}");
            assert!(body["detail"].as_str().unwrap().contains("webhooks_allow_private"), "{url}: says how to fix: {body}");
        }
        for url in ["ftp://example.com/x", "https://user:pw@example.com/x", "not a url", &format!("https://e.com/{}", "a".repeat(2100))] {
            let body = create(url).await.expect_problem(422, "validation_failed");
            assert_eq!(field_of(&body), "url", "{url}: {body}");
        }
        let body = app.post(&path, &parent.key, json!({"url": "http://127.0.0.1/", "events": ["account.nope"]})).await.expect_problem(422, "validation_failed");
        assert_eq!(field_of(&body), "events");
        app.post(&path, &parent.key, json!({"url": "http://127.0.0.1/", "events": []})).await.expect_problem(422, "validation_failed");
        // With private targets allowed, loopback is accepted; metadata never.
        app.allow_private_webhooks(true).await;
        create("http://127.0.0.1:9/hooks").await.expect(201);
        create("http://localhost:9/hooks").await.expect(201);
        for url in ["http://169.254.169.254/latest/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"] {
            let body = create(url).await.expect_problem(422, "validation_failed");
            assert_eq!(field_of(&body), "url", "{url}: {body}");
        }
    }

    async fn other_trees_and_subaccounts_cannot_reach_a_parents_webhooks(app) {
        app.allow_private_webhooks(true).await;
        let parent = app.parent("acme.example", "enterprise").await;
        let other = app.parent("other.example", "enterprise").await;
        let (wh, _) = app.webhook(&parent.id, &parent.key, "http://127.0.0.1:9/x", &["account.*"]).await;
        let sub = app.sub(&parent, "Team", "team@acme.example").await;
        let sub_key = app.accept(sub.invitation.as_deref().unwrap(), "Team", "correct horse battery").await;
        let list = format!("/v1/accounts/{}/webhooks", parent.id);
        let one = format!("{list}/{wh}");
        for key in [&other.key, &sub_key] {
            app.get(&list, key).await.expect_problem(404, "not_found");
            app.get(&one, key).await.expect_problem(404, "not_found");
            app.get(&format!("{one}/deliveries"), key).await.expect_problem(404, "not_found");
            app.delete(&one, key).await.expect_problem(404, "not_found");
            app.post(&list, key, json!({"url": "http://127.0.0.1:9/y", "events": ["account.*"]})).await.expect_problem(404, "not_found");
        }
        // Nor another account's webhook through their own account.
        app.get(&format!("/v1/accounts/{}/webhooks/{wh}", other.id), &other.key).await.expect_problem(404, "not_found");
        app.delete(&format!("/v1/accounts/{}/webhooks/{wh}", sub.id), &sub_key).await.expect_problem(404, "not_found");
        assert_eq!(app.get(&list, &parent.key).await.expect(200)["data"].as_array().unwrap().len(), 1);
        // A basic member of the parent is not an admin: no webhooks.
        let basic = app.member(&parent.key, &parent.id, "basic@acme.example", "basic").await;
        app.post(&list, &basic, json!({"url": "http://127.0.0.1:9/y", "events": ["account.*"]})).await.expect_problem(403, "policy_denied");
    }
}

both_backends! {
    options = Options { webhook_attempt_timeout: Some(Duration::from_millis(300)), ..fast_retries() };

    async fn a_hanging_receiver_is_timed_out_and_tried_again(app) {
        app.allow_private_webhooks(true).await;
        let rx = Receiver::start().await;
        rx.hang(true);
        let parent = app.parent("acme.example", "enterprise").await;
        let (wh, _) = app.webhook(&parent.id, &parent.key, &rx.url, &["account.created"]).await;
        active_sub(&app, &parent, "Team", "team@acme.example").await;
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| {
            l.len() == 1 && l[0]["attempts"].as_i64().unwrap_or(0) >= 2
        }).await;
        assert_eq!(log[0]["status"], "pending");
        assert!(log[0]["last_status"].is_null());
        assert!(log[0]["last_error"].as_str().unwrap().contains("no answer within 300 ms"), "{log:?}");
        assert!(log[0]["next_attempt_at"].is_string());
        rx.hang(false);
        let log = app.await_deliveries(&parent.id, &parent.key, &wh, |l| l[0]["status"] == "delivered").await;
        assert_eq!(log[0]["last_status"], 200);
        let got = rx.received();
        assert!(got.iter().all(|r| r.json()["id"] == got[0].json()["id"]));
    }
}

both_backends! {
    options = Options { purge_every: Some(Duration::from_millis(200)), ..fast_retries() };

    async fn the_delivery_log_and_events_are_kept_thirty_days(app) {
        app.allow_private_webhooks(true).await;
        let rx = Receiver::start().await;
        let parent = app.parent("acme.example", "enterprise").await;
        let (wh, _) = app.webhook(&parent.id, &parent.key, &rx.url, &["account.created"]).await;
        active_sub(&app, &parent, "Team", "team@acme.example").await;
        app.await_deliveries(&parent.id, &parent.key, &wh, |l| l.len() == 1 && l[0]["status"] == "delivered").await;
        let count = "SELECT COUNT(*) FROM events WHERE type = $1";
        app.set_clock(&(chrono::Utc::now() + chrono::Duration::days(29)).to_rfc3339()).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(app.deliveries(&parent.id, &parent.key, &wh).await.len(), 1, "kept 29 days");
        app.set_clock(&(chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339()).await;
        app.await_deliveries(&parent.id, &parent.key, &wh, |l| l.is_empty()).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.query_rows(count, "account.created").await[0][0].as_deref() != Some("0") {
            assert!(Instant::now() < deadline, "the event was not purged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Two hosts on one PostgreSQL database: every event reaches the receiver
/// once (one delivery per webhook and event, claimed by one host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_deliver_each_event_once() {
    use canopy_e2e::{Backend, spawn_app_with};
    let one = spawn_app_with(Backend::Postgres, fast_retries()).await;
    let two = spawn_app_with(
        Backend::Postgres,
        Options {
            database_url: Some(one.database_url.clone()),
            ..fast_retries()
        },
    )
    .await;
    one.allow_private_webhooks(true).await;
    let rx = Receiver::start().await;
    let parent = one.parent("acme.example", "enterprise").await;
    let (wh, secret) = two
        .webhook(&parent.id, &parent.key, &rx.url, &["account.created"])
        .await;
    for i in 0..20 {
        let app = if i % 2 == 0 { &one } else { &two };
        active_sub(
            app,
            &parent,
            &format!("Team {i}"),
            &format!("t{i}@acme.example"),
        )
        .await;
    }
    rx.wait_for(20).await;
    one.await_deliveries(&parent.id, &parent.key, &wh, |l| {
        l.len() == 20 && l.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = rx.received();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (20, 20), "each event once");
    // Either host opens the secret the other sealed (one data key).
    assert!(got.iter().all(|r| signature_verifies(
        &secret,
        r.header("canopy-signature").unwrap(),
        &r.body
    )));
}

/// PostgreSQL hosts share no key file: without `--data-key` a webhook
/// cannot be created, and the problem says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_a_data_key_refuses_webhooks() {
    use canopy_e2e::{Backend, spawn_app_with};
    let app = spawn_app_with(
        Backend::Postgres,
        Options {
            no_data_key: true,
            ..Options::default()
        },
    )
    .await;
    app.allow_private_webhooks(true).await;
    let parent = app.parent("acme.example", "enterprise").await;
    let body = app
        .post(
            &format!("/v1/accounts/{}/webhooks", parent.id),
            &parent.key,
            json!({"url": "http://127.0.0.1:9/x", "events": ["account.*"]}),
        )
        .await
        .expect_problem(403, "feature_not_enabled");
    assert!(body["detail"].as_str().unwrap().contains("CANOPY_DATA_KEY"));
}
