//! Traffic (API.md, "Traffic"; docs/TRAFFIC.md): sends from a line,
//! inbound messages, conversations and analytics, on both backends.

use canopy_e2e::both_backends;
use canopy_e2e::traffic::counts;
use serde_json::json;

fn s(v: &str) -> String {
    v.to_string()
}

both_backends! {
    async fn an_outbound_then_an_inbound_message_make_a_responded_conversation(app) {
        let parent = app.traffic_parent("conv.example", "enterprise", json!({"sms": "1.00"})).await;
        let numbers = app.traffic_lines(&parent, 1, 2).await;
        let (line, idle) = (&numbers[0], &numbers[1]);
        let sent = app.send_from(&parent.id, &parent.key, Some(line), "+15550101").await.expect(201);
        assert_eq!(sent["from"], line.as_str());
        let listed = app.get(&format!("/v1/accounts/{}/conversations", parent.id), &parent.key).await.expect(200);
        assert_eq!(listed["data"][0]["state"], "new", "{listed}");
        assert_eq!(listed["data"][0]["line"], line.as_str());
        assert_eq!(listed["data"][0]["remote"], "+15550101");

        // The reply: stored once under its Idempotency-Key, in the account
        // holding the line, attributed to the user who wrote last.
        let headers = [("Idempotency-Key", "carrier-msg-1")];
        let body = json!({"to": line, "from": "+15550101", "channel": "sms", "body": "yes"});
        let first = app.request_with(reqwest::Method::POST, "/v1/operator/inbound",
            Some(&app.operator_token.clone()), Some(body.clone()), &headers).await.expect(201);
        let again = app.request_with(reqwest::Method::POST, "/v1/operator/inbound",
            Some(&app.operator_token.clone()), Some(body), &headers).await.expect(201);
        assert_eq!(first["id"], again["id"]);
        assert_eq!(first["direction"], "inbound");
        assert_eq!(first["from"], "+15550101");
        assert_eq!(first["to"], line.as_str());
        assert_eq!(first["user_id"], parent.admin_user_id.as_str());
        let inbound = app.get(&format!("/v1/accounts/{}/messages?direction=inbound", parent.id), &parent.key).await.expect(200);
        assert_eq!(inbound["data"].as_array().unwrap().len(), 1, "{inbound}");
        let outbound = app.get(&format!("/v1/accounts/{}/messages?direction=outbound", parent.id), &parent.key).await.expect(200);
        assert_eq!(outbound["data"].as_array().unwrap().len(), 1);
        assert_eq!(outbound["data"][0]["conversation_id"], inbound["data"][0]["conversation_id"]);
        app.get(&format!("/v1/accounts/{}/messages?direction=sideways", parent.id), &parent.key).await
            .expect_problem(422, "validation_failed");

        let responded = app.get(&format!("/v1/accounts/{}/conversations?state=responded", parent.id), &parent.key).await.expect(200);
        let conv = &responded["data"][0];
        assert_eq!(conv["state"], "responded", "{responded}");
        assert_eq!(conv["messages"], 2);
        assert_eq!(conv["id"], inbound["data"][0]["conversation_id"]);
        assert!(conv["responded_at"].is_string());
        let new = app.get(&format!("/v1/accounts/{}/conversations?state=new", parent.id), &parent.key).await.expect(200);
        assert_eq!(new["data"], json!([]));
        app.get(&format!("/v1/accounts/{}/conversations?state=old", parent.id), &parent.key).await
            .expect_problem(422, "validation_failed");

        // The event is in the outbox, once.
        let events = app.query_rows("SELECT type FROM events WHERE account_id = $1 AND type = 'message.inbound'", &parent.id).await;
        assert_eq!(events.len(), 1);
        // No `sms_inbound` price: the reply cost nothing.
        let transfers = app.query_rows("SELECT COUNT(*) FROM transfers WHERE tree_id = $1 AND kind = 'usage'", &parent.id).await;
        assert_eq!(transfers[0][0].as_deref(), Some("1"));

        // An inbound message that starts a conversation: new, not responded.
        app.inbound(idle, "+15550199").await.expect(201);
        let all = app.get(&format!("/v1/accounts/{}/conversations?state=new", parent.id), &parent.key).await.expect(200);
        assert_eq!(all["data"].as_array().unwrap().len(), 1);
        assert_eq!(all["data"][0]["user_id"], serde_json::Value::Null);

        // Unknown lines and malformed input.
        app.inbound("+390000000099", "+15550101").await.expect_problem(404, "not_found");
        app.op_post("/v1/operator/inbound", json!({"to": line, "from": "+15550101", "channel": "sms", "body": ""})).await
            .expect_problem(422, "validation_failed");
        app.op_post("/v1/operator/inbound", json!({"to": "banana", "from": "+15550101", "channel": "sms", "body": "x"})).await
            .expect_problem(422, "validation_failed");
        // Not for account keys.
        app.post("/v1/operator/inbound", &parent.key, json!({"to": line, "from": "+15550101", "channel": "sms", "body": "x"})).await;
        assert_eq!(app.query_rows("SELECT COUNT(*) FROM messages WHERE direction = 'inbound' AND account_id = $1", &parent.id).await[0][0].as_deref(), Some("2"));
        app.assert_ledger_balanced().await;
    }

    async fn analytics_by_day_across_a_month_boundary_equal_hand_counts(app) {
        app.set_clock("2031-01-31T12:00:00Z").await;
        let parent = app.traffic_parent("stats.example", "enterprise", json!({"sms": "1.00"})).await;
        let (a, b, c) = (app.shared_sub(&parent, "stats.example", "Alpha").await, app.shared_sub(&parent, "stats.example", "Bravo").await, app.shared_sub(&parent, "stats.example", "Charlie").await);
        let numbers = app.traffic_lines(&parent, 100, 4).await;
        let (la, lb, lc, lp) = (&numbers[0], &numbers[1], &numbers[2], &numbers[3]);
        app.give_line(&parent, &a, la).await;
        app.give_line(&parent, &b, lb).await;
        app.give_line(&parent, &c, lc).await;
        let k = &parent.key;
        let (r1, r2, r3, r9) = ("+15550001", "+15550002", "+15550003", "+15550009");

        // January 31st.
        app.send_from(&a, k, Some(la), r1).await.expect(201);
        app.send_from(&a, k, Some(la), r2).await.expect(201);
        app.inbound(la, r1).await.expect(201);
        app.send_from(&b, k, Some(lb), r1).await.expect(201);
        app.inbound(lc, r3).await.expect(201);
        // February 1st.
        app.set_clock("2031-02-01T09:00:00Z").await;
        app.inbound(lb, r1).await.expect(201); // answers B's January message
        app.send_from(&a, k, Some(la), r1).await.expect(201);
        app.send_from(&c, k, Some(lc), r3).await.expect(201);
        app.inbound(lc, r3).await.expect(201);
        app.send_from(&parent.id, k, Some(lp), r9).await.expect(201);
        // A second reply to the same outbound message counts once.
        app.inbound(lc, r3).await.expect(201);

        // The tree, by day: (sent, received, new, outbound, responded, rate).
        let tree = app.analytics(&parent.id, k, "from=2031-01-30&to=2031-02-01&granularity=day").await.expect(200);
        let series = tree["series"].as_array().unwrap();
        assert_eq!(series.len(), 3, "{tree}");
        assert_eq!(series[0]["start"], "2031-01-30");
        assert_eq!(counts(&series[0]), (0, 0, 0, 0, 0, s("0.0000")));
        assert_eq!(series[1]["start"], "2031-01-31");
        assert_eq!(counts(&series[1]), (3, 2, 4, 3, 2, s("0.6667")));
        assert_eq!(series[1]["spend"], "3.00");
        assert_eq!(series[2]["start"], "2031-02-01");
        assert_eq!(counts(&series[2]), (3, 3, 1, 3, 1, s("0.3333")));
        assert_eq!(counts(&tree["totals"]), (6, 5, 5, 6, 3, s("0.5000")));
        assert_eq!(tree["totals"]["spend"], "6.00");

        // By month.
        let months = app.analytics(&parent.id, k, "from=2031-01&to=2031-02&granularity=month").await.expect(200);
        let series = months["series"].as_array().unwrap();
        assert_eq!(series[0]["start"], "2031-01");
        assert_eq!(counts(&series[0]), (3, 2, 4, 3, 2, s("0.6667")));
        assert_eq!(counts(&series[1]), (3, 3, 1, 3, 1, s("0.3333")));

        // By sub-account: the parent's own row first, then each sub-account.
        let by = app.analytics(&parent.id, k, "from=2031-01-31&to=2031-02-01&by=subaccount").await.expect(200);
        let rows = by["series"].as_array().unwrap();
        assert_eq!(rows.len(), 4, "{by}");
        let row = |id: &str| rows.iter().find(|r| r["account_id"] == id).unwrap_or_else(|| panic!("no {id} in {by}"));
        assert_eq!(rows[0]["account_id"], parent.id.as_str());
        assert_eq!(counts(row(&parent.id)), (1, 0, 1, 1, 0, s("0.0000")));
        assert_eq!(counts(row(&a)), (3, 1, 2, 3, 1, s("0.3333")));
        assert_eq!(counts(row(&b)), (1, 1, 1, 1, 1, s("1.0000")));
        assert_eq!(counts(row(&c)), (1, 3, 1, 1, 1, s("1.0000")));
        assert_eq!(counts(&by["totals"]), (6, 5, 5, 6, 3, s("0.5000")));
        // A page of one sub-account at a time walks them all.
        let first = app.analytics(&parent.id, k, "from=2031-01-31&to=2031-02-01&by=subaccount&limit=1").await.expect(200);
        assert_eq!(first["series"].as_array().unwrap().len(), 2);
        assert!(first["next_cursor"].is_string());

        // A sub-account's own series.
        let own = app.analytics(&a, k, "from=2031-01-31&to=2031-02-01").await.expect(200);
        assert_eq!(counts(&own["series"][0]), (2, 1, 2, 2, 1, s("0.5000")));
        assert_eq!(counts(&own["series"][1]), (1, 0, 0, 1, 0, s("0.0000")));

        // Bounds and input.
        app.analytics(&parent.id, k, "from=2031-01-01&to=2032-01-02").await.expect_problem(422, "validation_failed");
        app.analytics(&parent.id, k, "from=2020-01&to=2031-01&granularity=month").await.expect_problem(422, "validation_failed");
        app.analytics(&parent.id, k, "from=2031-02-01&to=2031-01-01").await.expect_problem(422, "validation_failed");
        app.analytics(&parent.id, k, "from=2031-01-01&to=2031-01-02&granularity=week").await.expect_problem(422, "validation_failed");
        app.analytics(&a, k, "from=2031-01-01&to=2031-01-02&by=subaccount").await.expect_problem(422, "validation_failed");
        app.analytics(&parent.id, k, "from=2031-01-01&to=2031-01-02&colour=red").await.expect_problem(422, "validation_failed");
        app.assert_ledger_balanced().await;
    }

    async fn merged_subaccounts_roll_into_their_target(app) {
        app.set_clock("2031-05-10T12:00:00Z").await;
        let parent = app.traffic_parent("merge.example", "enterprise", json!({"sms": "1.00"})).await;
        let (a, b) = (app.shared_sub(&parent, "merge.example", "Alpha").await, app.shared_sub(&parent, "merge.example", "Bravo").await);
        app.send(&a, &parent.key).await.expect(201);
        app.send(&b, &parent.key).await.expect(201);
        app.send(&b, &parent.key).await.expect(201);
        let merge = app.post(&format!("/v1/accounts/{}/merges", parent.id), &parent.key,
            json!({"sources": [b], "target": a})).await.expect(201);
        app.post(&format!("/v1/operator/accounts/{}/merges/{}/approve", parent.id, merge["id"].as_str().unwrap()),
            &app.operator_token.clone(), json!({})).await.expect(200);
        let by = app.analytics(&parent.id, &parent.key, "from=2031-05-10&to=2031-05-10&by=subaccount").await.expect(200);
        let rows = by["series"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{by}");
        assert_eq!(rows[1]["account_id"], a.as_str());
        assert_eq!(rows[1]["sent"], 3);
        let own = app.analytics(&a, &parent.key, "from=2031-05-10&to=2031-05-10").await.expect(200);
        assert_eq!(own["totals"]["sent"], 3);
    }

    async fn a_reseller_subaccount_sees_no_spend_and_a_basic_user_only_its_own(app) {
        app.set_clock("2031-03-03T10:00:00Z").await;
        let parent = app.traffic_parent("resell.example", "reseller", json!({"sms": "1.00"})).await;
        app.op_patch(&format!("/v1/operator/accounts/{}", parent.id), json!({"monthly_usage_limit_enabled": true})).await.expect(200);
        let sub = app.try_sub(&parent, "Shop", "owner@shop.example",
            json!({"credit": {"mode": "shared_usage", "monthly_usage_limit": "4.00"}})).await.expect(201);
        let sub_id = sub["id"].as_str().unwrap();
        let sub_key = app.accept(sub["invitation"]["token"].as_str().unwrap(), "Owner", "correct horse battery").await;
        app.send(sub_id, &sub_key).await.expect(201);
        let own = app.analytics(sub_id, &sub_key, "from=2031-03&to=2031-03&granularity=month").await.expect(200);
        assert_eq!(own["series"][0]["sent"], 1, "{own}");
        for row in [&own["series"][0], &own["totals"]] {
            assert!(row.get("spend").is_none(), "{own}");
            assert!(row.get("volume_limit_used").is_none(), "{own}");
        }
        assert!(own.get("currency").is_none());
        // The parent sees the spend and the share of the monthly limit used.
        let seen = app.analytics(sub_id, &parent.key, "from=2031-03&to=2031-03&granularity=month").await.expect(200);
        assert_eq!(seen["series"][0]["spend"], "1.00", "{seen}");
        assert_eq!(seen["series"][0]["volume_limit_used"], "0.2500");

        // A basic user counts only its own messages (and replies to them).
        let basic = app.member(&parent.key, &parent.id, "basic@resell.example", "basic").await;
        let numbers = app.traffic_lines(&parent, 300, 1).await;
        app.send_from(&parent.id, &parent.key, Some(&numbers[0]), "+15550001").await.expect(201);
        app.send_from(&parent.id, &parent.key, Some(&numbers[0]), "+15550002").await.expect(201);
        app.send_from(&parent.id, &basic, Some(&numbers[0]), "+15550003").await.expect(201);
        app.inbound(&numbers[0], "+15550003").await.expect(201);
        app.inbound(&numbers[0], "+15550001").await.expect(201);
        let mine = app.analytics(&parent.id, &basic, "from=2031-03-03&to=2031-03-03").await.expect(200);
        assert_eq!(counts(&mine["totals"]), (1, 1, 1, 1, 1, s("1.0000")), "{mine}");
        let all = app.analytics(&parent.id, &parent.key, "from=2031-03-03&to=2031-03-03").await.expect(200);
        assert_eq!(counts(&all["totals"]), (4, 2, 4, 4, 2, s("0.5000")), "{all}");
        let convs = app.get(&format!("/v1/accounts/{}/conversations", parent.id), &basic).await.expect(200);
        assert_eq!(convs["data"].as_array().unwrap().len(), 1, "{convs}");
        assert_eq!(convs["data"][0]["remote"], "+15550003");
        let msgs = app.get(&format!("/v1/accounts/{}/messages?direction=inbound", parent.id), &basic).await.expect(200);
        assert_eq!(msgs["data"].as_array().unwrap().len(), 1, "{msgs}");
    }

    async fn from_must_be_an_active_line_the_account_holds(app) {
        let parent = app.traffic_parent("from.example", "enterprise", json!({"sms": "1.00"})).await;
        let (a, b) = (app.shared_sub(&parent, "from.example", "Alpha").await, app.shared_sub(&parent, "from.example", "Bravo").await);
        let numbers = app.traffic_lines(&parent, 500, 3).await;
        app.give_line(&parent, &b, &numbers[0]).await;
        let k = &parent.key;
        // Another account's line, the parent's pool seen from a sub-account,
        // a number that is no line, and not a number at all.
        for from in [numbers[0].as_str(), numbers[1].as_str(), "+390000000777", "line-1"] {
            let p = app.send_from(&a, k, Some(from), "+15550001").await.expect_problem(422, "validation_failed");
            assert!(p["detail"].as_str().unwrap().contains("from"), "{p}");
        }
        app.send_from(&b, k, Some(&numbers[0]), "+15550001").await.expect(201);
        // A disconnected line.
        let id = app.query_rows("SELECT id FROM resources WHERE identifier = $1", &numbers[2]).await[0][0].clone().unwrap();
        let op = app.post(&format!("/v1/accounts/{}/resource-actions", parent.id), k,
            json!({"action": "disconnect", "resource_ids": [id]})).await.expect(202);
        let op = app.await_operation(&parent.id, k, op["operation"]["id"].as_str().unwrap()).await;
        assert_eq!(op["status"], "completed", "{op}");
        let p = app.send_from(&parent.id, k, Some(&numbers[2]), "+15550001").await.expect_problem(422, "validation_failed");
        assert!(p["detail"].as_str().unwrap().contains("disconnected"), "{p}");
        // And a disconnected line receives nothing.
        app.inbound(&numbers[2], "+15550001").await.expect_problem(409, "conflict");
        app.send_from(&parent.id, k, Some(&numbers[1]), "+15550001").await.expect(201);
        assert_eq!(app.query_rows("SELECT COUNT(*) FROM messages WHERE account_id = $1", &a).await[0][0].as_deref(), Some("0"));
    }

    async fn another_trees_key_reaches_no_analytics_or_conversations(app) {
        let parent = app.traffic_parent("mine.example", "enterprise", json!({"sms": "1.00"})).await;
        let sub = app.shared_sub(&parent, "mine.example", "Alpha").await;
        let other = app.traffic_parent("theirs.example", "enterprise", json!({"sms": "1.00"})).await;
        let other_sub = app.try_sub(&other, "Beta", "beta@theirs.example", json!({"credit": {"mode": "shared_usage"}})).await.expect(201);
        let other_sub_key = app.accept(other_sub["invitation"]["token"].as_str().unwrap(), "Beta", "correct horse battery").await;
        for account in [&parent.id, &sub] {
            for path in [
                format!("/v1/accounts/{account}/analytics?from=2031-01-01&to=2031-01-02"),
                format!("/v1/accounts/{account}/conversations"),
                format!("/v1/accounts/{account}/messages?direction=inbound"),
            ] {
                for key in [&other.key, &other_sub_key] {
                    let r = app.get(&path, key).await;
                    assert!(r.status == 404 || r.status == 403, "{path}: {} {}", r.status, r.body);
                }
            }
        }
        // A sub-account's key does not reach its parent's report either.
        let sub_owner = app.try_sub(&parent, "Gamma", "gamma@mine.example", json!({"credit": {"mode": "shared_usage"}})).await.expect(201);
        let sub_key = app.accept(sub_owner["invitation"]["token"].as_str().unwrap(), "Gamma", "correct horse battery").await;
        let r = app.analytics(&parent.id, &sub_key, "from=2031-01-01&to=2031-01-02&by=subaccount").await;
        assert!(r.status == 404 || r.status == 403, "{} {}", r.status, r.body);
    }

    async fn inbound_messages_are_charged_only_with_an_inbound_price(app) {
        app.set_clock("2031-04-02T08:00:00Z").await;
        let charged = app.traffic_parent("paid.example", "enterprise", json!({"sms": "1.00", "sms_inbound": "0.25"})).await;
        let free = app.traffic_parent("free.example", "enterprise", json!({"sms": "1.00"})).await;
        let sub = app.shared_sub(&charged, "paid.example", "Alpha").await;
        let paid_lines = app.traffic_lines(&charged, 700, 2).await;
        let free_lines = app.traffic_lines(&free, 800, 1).await;
        app.give_line(&charged, &sub, &paid_lines[1]).await;
        app.inbound(&paid_lines[0], "+15550001").await.expect(201);
        app.inbound(&paid_lines[1], "+15550002").await.expect(201);
        app.inbound(&free_lines[0], "+15550003").await.expect(201);
        let q = "from=2031-04-02&to=2031-04-02";
        let paid = app.analytics(&charged.id, &charged.key, q).await.expect(200);
        assert_eq!(paid["totals"]["received"], 2, "{paid}");
        assert_eq!(paid["totals"]["spend"], "0.50");
        assert_eq!(app.money(&sub, &charged.key, "used_this_month").await, "0.25");
        let unpaid = app.analytics(&free.id, &free.key, q).await.expect(200);
        assert_eq!(unpaid["totals"]["received"], 1);
        assert_eq!(unpaid["totals"]["spend"], "0.00");
        let app = &app;
        let usage = |tree: String| async move {
            app.query_rows("SELECT COUNT(*) FROM transfers WHERE tree_id = $1 AND kind = 'usage'", &tree).await[0][0].clone()
        };
        assert_eq!(usage(charged.id.clone()).await.as_deref(), Some("2"));
        assert_eq!(usage(free.id.clone()).await.as_deref(), Some("0"));

        // A suspended holder still gets its messages, uncharged.
        app.request(reqwest::Method::POST, &format!("/v1/accounts/{sub}/suspend"), Some(&charged.key), None).await.expect(200);
        app.inbound(&paid_lines[1], "+15550002").await.expect(201);
        assert_eq!(usage(charged.id.clone()).await.as_deref(), Some("2"));
        let received = app.query_rows("SELECT COUNT(*) FROM messages WHERE account_id = $1 AND direction = 'inbound'", &sub).await;
        assert_eq!(received[0][0].as_deref(), Some("2"));
        app.assert_ledger_balanced().await;
    }

    async fn parallel_messages_of_one_conversation_keep_counters_equal_to_their_flags(app) {
        app.set_clock("2031-06-01T10:00:00Z").await;
        let parent = app.traffic_parent("busy.example", "enterprise", json!({"sms": "1.00"})).await;
        let line = app.traffic_lines(&parent, 900, 1).await.remove(0);
        let client = reqwest::Client::new();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..48 {
            let (client, base) = (client.clone(), app.base.clone());
            let remote = format!("+1555000{}", i % 3);
            let (token, path, body) = if i % 2 == 0 {
                (parent.key.clone(), format!("{base}/v1/accounts/{}/messages", parent.id),
                 json!({"channel": "sms", "from": line, "to": remote, "body": "hi"}))
            } else {
                (app.operator_token.clone(), format!("{base}/v1/operator/inbound"),
                 json!({"channel": "sms", "to": line, "from": remote, "body": "yo"}))
            };
            tasks.spawn(async move {
                client.post(path).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            });
        }
        while let Some(status) = tasks.join_next().await {
            assert_eq!(status.unwrap(), 201);
        }
        let day = app.analytics(&parent.id, &parent.key, "from=2031-06-01&to=2031-06-01").await.expect(200);
        let (sent, received, new, outbound, responded, _) = counts(&day["totals"]);
        assert_eq!((sent, received, new), (24, 24, 3), "{day}");
        // Each counter equals the flags it is kept from: nothing lost or
        // counted twice under concurrent writes.
        let (app, id) = (&app, &parent.id);
        let flags = |col: &'static str| {
            async move {
                app.query_rows(&format!("SELECT COUNT(*) FROM conversation_periods p JOIN conversations c ON c.id = p.conversation_id
                    WHERE c.account_id = $1 AND p.granularity = 'day' AND p.{col} = 1"), id).await[0][0].clone().unwrap()
            }
        };
        assert_eq!(outbound.to_string(), flags("outbound").await);
        assert_eq!(responded.to_string(), flags("responded").await);
        assert_eq!(outbound, 3);
        let messages = app.query_rows("SELECT CAST(SUM(messages) AS BIGINT) FROM conversations WHERE account_id = $1", &parent.id).await;
        assert_eq!(messages[0][0].as_deref(), Some("48"));
        let linked = app.query_rows("SELECT COUNT(*) FROM messages WHERE account_id = $1 AND conversation_id IS NOT NULL", &parent.id).await;
        assert_eq!(linked[0][0].as_deref(), Some("48"));
        app.assert_ledger_balanced().await;
    }

    async fn the_purge_blanks_conversations_remote_numbers_and_keeps_the_counts(app) {
        app.set_clock("2031-07-01T10:00:00Z").await;
        let parent = app.traffic_parent("purge.example", "enterprise", json!({"sms": "1.00"})).await;
        let sub = app.shared_sub(&parent, "purge.example", "Leaving").await;
        app.send_from(&sub, &parent.key, None, "+15550042").await.expect(201);
        app.delete(&format!("/v1/accounts/{sub}"), &parent.key).await.expect(200);
        app.op_patch("/v1/operator/settings", json!({"data_retention_days": 1})).await.expect(200);
        app.set_clock("2031-07-03T10:00:00Z").await;
        let mut purged = false;
        for _ in 0..150 {
            if app.query_rows("SELECT purged_at FROM accounts WHERE id = $1", &sub).await[0][0].is_some() {
                purged = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(purged, "{sub} was not purged");
        let remotes = app.query_rows("SELECT remote FROM conversations WHERE account_id = $1", &sub).await;
        assert_eq!(remotes.len(), 1);
        assert!(!remotes[0][0].as_deref().unwrap().contains("5550042"), "{remotes:?}");
        let report = app.analytics(&parent.id, &parent.key, "from=2031-07-01&to=2031-07-01").await.expect(200);
        assert_eq!(report["totals"]["sent"], 1, "{report}");
    }
}

// A send's write goes to PostgreSQL as one batch with its values as
// literals: text that looks like SQL, quotes and backslashes is stored and
// answered as sent, charged once, and breaks nothing after it.
both_backends! {
    async fn a_body_that_looks_like_sql_is_stored_as_sent_and_charged_once(app) {
        let parent = app.traffic_parent("quotes.example", "enterprise", json!({"sms": "1.00"})).await;
        let hostile = r#"it's '); DROP TABLE messages; -- \'' \\ E'\x41' $1 ; COMMIT; "#;
        let url = format!("/v1/accounts/{}/messages", parent.id);
        let headers = [("Idempotency-Key", r#"key'); DELETE FROM transfers; --\"#)];
        let body = json!({"channel": "sms", "to": "+15550199", "body": hostile});
        let first = app.request_with(reqwest::Method::POST, &url, Some(&parent.key), Some(body.clone()), &headers).await.expect(201);
        assert_eq!(first["body"], hostile);
        let again = app.request_with(reqwest::Method::POST, &url, Some(&parent.key), Some(body), &headers).await.expect(201);
        assert_eq!(again["id"], first["id"], "the key replays the one send");
        let listed = app.get(&format!("{url}?direction=outbound"), &parent.key).await.expect(200);
        let data = listed["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{listed}");
        assert_eq!(data[0]["body"], hostile);
        // Tables and the ledger are intact: another send works and the
        // books balance.
        app.send_from(&parent.id, &parent.key, None, "+15550198").await.expect(201);
        let check = app.get("/v1/operator/ledger/check", &app.operator_token.clone()).await.expect(200);
        assert_eq!(check["balanced"], true, "{check}");

        let nul = json!({"channel": "sms", "to": "+15550199", "body": "a\u{0}b"});
        let refused = app.post(&url, &parent.key, nul).await.expect(422);
        assert!(refused.to_string().contains("NUL"), "{refused}");
        // A carrier's inbound message is held to the same rule.
        let line = &app.traffic_lines(&parent, 1, 1).await[0];
        let inbound = json!({"to": line, "from": "+15550199", "channel": "sms", "body": "a\u{0}b"});
        let refused = app.op_post("/v1/operator/inbound", inbound).await.expect(422);
        assert!(refused.to_string().contains("NUL"), "{refused}");
    }
}
