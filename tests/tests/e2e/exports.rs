//! CSV exports of transactions and messages: admins only, newest first,
//! bounded with a cursor for the rest, cells quoted and formula-safe,
//! money as exact decimals.

use canopy_e2e::both_backends;
use serde_json::json;

both_backends! {
    async fn admins_export_transactions_and_messages_as_safe_csv(app) {
        let parent = canopy_e2e::webhooks::funded_parent(&app, "acme.example", "enterprise", "100").await;
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "30"}
        })).await.expect(201);
        let sub_id = sub["id"].as_str().unwrap();
        app.post(&format!("/v1/accounts/{sub_id}/messages"), &parent.key,
            json!({"channel": "sms", "to": "+15550100", "body": "=HYPERLINK(\"http://evil\"), \"quoted\""})).await.expect(201);
        app.post(&format!("/v1/accounts/{sub_id}/messages"), &parent.key,
            json!({"channel": "sms", "to": "+15550101", "body": "second"})).await.expect(201);

        let reply = app.get(&format!("/v1/accounts/{sub_id}/transactions/export.csv"), &parent.key).await;
        assert_eq!(reply.status, 200);
        assert!(reply.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = reply.body.as_str().unwrap().to_string();
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "id,created_at,kind,direction,amount,signed_amount,currency,balance_after,account_id,from,to,reference");
        assert_eq!(lines.len(), 4, "{csv}");
        // Newest first, from the sub-account's side, exact decimals.
        assert!(lines[1].contains(",\"usage\",\"out\",10.00,-10.00,\"USD\",10.00,"), "{csv}");
        assert!(lines[3].contains(",\"allocation\",\"in\",30.00,30.00,\"USD\",30.00,"), "{csv}");

        let reply = app.get(&format!("/v1/accounts/{sub_id}/messages/export.csv"), &parent.key).await;
        assert_eq!(reply.status, 200);
        let csv = reply.body.as_str().unwrap().to_string();
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[1].ends_with(",\"second\""), "{csv}");
        // A formula is defused with `'`, quotes doubled, the comma kept inside the cell.
        assert!(lines[2].ends_with(",\"'=HYPERLINK(\"\"http://evil\"\"), \"\"quoted\"\"\""), "{csv}");
        assert!(lines[2].contains(",10.00,\"USD\","), "{csv}");

        // Bounded: a limit and a cursor to the rest.
        let first = app.get(&format!("/v1/accounts/{sub_id}/messages/export.csv?limit=1"), &parent.key).await;
        assert_eq!(first.status, 200);
        assert!(first.body.as_str().unwrap().contains("second"));
        let next = first.headers["canopy-next-cursor"].to_str().unwrap().to_string();
        let rest = app.get(&format!("/v1/accounts/{sub_id}/messages/export.csv?limit=1&cursor={next}"), &parent.key).await;
        assert!(rest.body.as_str().unwrap().contains("HYPERLINK"));
        assert!(rest.headers.get("canopy-next-cursor").is_none());
        app.get(&format!("/v1/accounts/{sub_id}/messages/export.csv?limit=10001"), &parent.key).await.expect_problem(422, "validation_failed");
        app.get(&format!("/v1/accounts/{sub_id}/messages/export.csv?created_after=soon"), &parent.key).await.expect_problem(422, "validation_failed");

        // Admins only; other trees see nothing.
        let advanced = app.member(&parent.key, &parent.id, "adv@acme.example", "advanced").await;
        app.get(&format!("/v1/accounts/{}/messages", parent.id), &advanced).await.expect(200);
        app.get(&format!("/v1/accounts/{}/messages/export.csv", parent.id), &advanced).await.expect_problem(403, "forbidden");
        let other = app.parent("other.example", "enterprise").await;
        app.get(&format!("/v1/accounts/{sub_id}/transactions/export.csv"), &other.key).await.expect_problem(404, "not_found");
    }
}
