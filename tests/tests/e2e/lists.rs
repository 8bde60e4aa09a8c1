//! Lists: newest first by creation time (ties by id) with stable cursors,
//! `created_after`/`created_before`, sub-account search, transactions from
//! the viewer's side, and what a parent created without prices is told.

use canopy_e2e::{TestApp, both_backends};
use serde_json::{Value, json};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every id of a list, following `next_cursor` with pages of `limit`.
async fn walk(app: &TestApp, path: &str, key: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = app.get(&url, key).await.expect(200);
        assert!(page["data"].as_array().unwrap().len() <= limit);
        all.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

both_backends! {
    async fn lists_are_newest_first_by_creation_time_with_stable_cursors(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        // Creation times out of id order: the test clock goes forward, then back.
        app.set_clock("2030-01-10T00:00:00Z").await;
        let a = app.sub(&parent, "Alpha", "alpha@acme.example").await.id;
        app.set_clock("2030-01-20T00:00:00Z").await;
        let b = app.sub(&parent, "Bravo", "bravo@acme.example").await.id;
        app.set_clock("2030-01-05T00:00:00Z").await;
        let c = app.sub(&parent, "Charlie", "charlie@acme.example").await.id;
        app.set_clock("2030-01-15T00:00:00Z").await;
        let d = app.sub(&parent, "Delta", "delta@acme.example").await.id;
        let path = format!("/v1/accounts/{}/subaccounts", parent.id);
        let newest_first = vec![b.clone(), d.clone(), a.clone(), c.clone()];
        assert_eq!(ids(&app.get(&path, &parent.key).await.expect(200)), newest_first);
        // Pages of one and of three give the same order, each row once.
        assert_eq!(walk(&app, &path, &parent.key, 1).await, newest_first);
        assert_eq!(walk(&app, &path, &parent.key, 3).await, newest_first);

        // A window, strict on both ends, and with a cursor inside it.
        let window = format!("{path}?created_after=2030-01-05T00:00:01Z&created_before=2030-01-20T00:00:00Z");
        assert_eq!(ids(&app.get(&window, &parent.key).await.expect(200)), vec![d.clone(), a.clone()]);
        assert_eq!(walk(&app, &window, &parent.key, 1).await, vec![d.clone(), a.clone()]);
        let after = format!("{path}?created_after=2030-01-12T00:00:00%2B02:00");
        assert_eq!(ids(&app.get(&after, &parent.key).await.expect(200)), vec![b.clone(), d.clone()]);

        // Bad input is a problem naming the field.
        let bad = app.get(&format!("{path}?created_after=yesterday"), &parent.key).await.expect_problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "created_after", "{bad}");
        // A window that closes before it opens holds nothing.
        let none = app.get(&format!("{path}?created_after=2030-01-20T00:00:00Z&created_before=2030-01-10T00:00:00Z"), &parent.key).await.expect(200);
        assert!(ids(&none).is_empty(), "{none}");
        // A cursor this server did not give is a position too: the newest rows.
        let forged = app.get(&format!("{path}?cursor=bm90OmE6a2V5"), &parent.key).await.expect(200);
        assert_eq!(ids(&forged)[0], ids(&app.get(&path, &parent.key).await.expect(200))[0]);
        app.get(&format!("{path}?cursor=not%20base64"), &parent.key).await.expect_problem(422, "validation_failed");

        // The operator's lists are newest first too.
        let parents = app.get("/v1/operator/accounts", &app.operator_token).await.expect(200);
        assert_eq!(parents["data"][0]["id"], parent.id.as_str());
        let op_subs = app.get(&format!("/v1/operator/accounts/{}/subaccounts?created_before=2030-01-10T00:00:01Z", parent.id), &app.operator_token).await.expect(200);
        assert_eq!(ids(&op_subs), vec![a.clone(), c.clone()]);
    }

    async fn subaccounts_are_found_by_name_without_case_and_by_exact_external_id(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let sales = app.try_sub(&parent, "Sales Team EU", "sales@acme.example", json!({"external_id": "crm-17"})).await.expect(201);
        let presales = app.try_sub(&parent, "Pre-SALES", "pre@acme.example", json!({"external_id": "crm-170"})).await.expect(201);
        app.try_sub(&parent, "Support 100%", "support@acme.example", json!({"external_id": "crm-2"})).await.expect(201);
        let path = format!("/v1/accounts/{}/subaccounts", parent.id);
        let found = app.get(&format!("{path}?name=sales"), &parent.key).await.expect(200);
        assert_eq!(ids(&found), vec![presales["id"].as_str().unwrap(), sales["id"].as_str().unwrap()]);
        let found = app.get(&format!("{path}?name=TEAM%20eu"), &parent.key).await.expect(200);
        assert_eq!(ids(&found), vec![sales["id"].as_str().unwrap()]);
        // LIKE wildcards in the search are literal text.
        let found = app.get(&format!("{path}?name=%25"), &parent.key).await.expect(200);
        assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
        let found = app.get(&format!("{path}?name=_"), &parent.key).await.expect(200);
        assert_eq!(found["data"].as_array().unwrap().len(), 0, "{found}");
        // External ids match exactly, not as a prefix.
        let found = app.get(&format!("{path}?external_id=crm-17"), &parent.key).await.expect(200);
        assert_eq!(ids(&found), vec![sales["id"].as_str().unwrap()]);
        let found = app.get(&format!("{path}?external_id=CRM-17"), &parent.key).await.expect(200);
        assert!(found["data"].as_array().unwrap().is_empty());
        let bad = app.get(&format!("{path}?name="), &parent.key).await.expect_problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "name");
        // Another tree's key finds nothing here.
        let other = app.parent("other.example", "enterprise").await;
        app.get(&format!("{path}?name=sales"), &other.key).await.expect_problem(404, "not_found");
    }

    async fn transactions_are_signed_from_the_viewers_side(app) {
        let parent = canopy_e2e::webhooks::funded_parent(&app, "acme.example", "enterprise", "100").await;
        let sub = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "30"}
        })).await.expect(201);
        let sub_id = sub["id"].as_str().unwrap();
        app.send(sub_id, &parent.key).await.expect(201);

        // The parent: the allocation took 30 from it, after the top-up gave 100.
        let mine = app.get(&format!("/v1/accounts/{}/transactions", parent.id), &parent.key).await.expect(200);
        let rows = mine["data"].as_array().unwrap();
        let allocation = rows.iter().find(|t| t["kind"] == "allocation").unwrap();
        assert_eq!((allocation["direction"].as_str(), allocation["signed_amount"].as_str(), allocation["amount"].as_str()), (Some("out"), Some("-30.00"), Some("30.00")));
        assert_eq!(allocation["balance_after"], "70.00");
        let topup = rows.last().unwrap();
        assert_eq!((topup["kind"].as_str(), topup["direction"].as_str(), topup["balance_after"].as_str()), (Some("topup"), Some("in"), Some("100.00")));

        // The sub-account: the same allocation came in; the message went out; newest first.
        let theirs = app.get(&format!("/v1/accounts/{sub_id}/transactions"), &parent.key).await.expect(200);
        let rows = theirs["data"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{theirs}");
        assert_eq!((rows[0]["kind"].as_str(), rows[0]["direction"].as_str(), rows[0]["signed_amount"].as_str()), (Some("usage"), Some("out"), Some("-10.00")));
        assert_eq!(rows[0]["balance_after"], "20.00");
        assert_eq!((rows[1]["kind"].as_str(), rows[1]["direction"].as_str(), rows[1]["signed_amount"].as_str()), (Some("allocation"), Some("in"), Some("30.00")));
        assert_eq!(rows[1]["balance_after"], "30.00");
        // A window over transactions.
        let none = app.get(&format!("/v1/accounts/{sub_id}/transactions?created_after=2100-01-01T00:00:00Z"), &parent.key).await.expect(200);
        assert!(none["data"].as_array().unwrap().is_empty());
    }

    async fn a_parent_created_without_prices_is_told_so(app) {
        let created = app.op_post("/v1/operator/accounts", json!({
            "name": "Bare", "company_name": "Bare Ltd", "email": "billing@bare.example",
            "billing_type": "prepaid", "currency": "USD",
            "admin": {"email": "admin@bare.example", "name": "Admin"},
        })).await.expect(201);
        assert_eq!(created["warnings"][0]["code"], "no_prices", "{created}");
        assert!(created["warnings"][0]["message"].as_str().unwrap().contains("prices"));
        let priced = app.op_post("/v1/operator/accounts", json!({
            "name": "Priced", "company_name": "Priced Ltd", "email": "billing@priced.example",
            "billing_type": "prepaid", "currency": "USD", "prices": {"sms": "0.01"},
            "admin": {"email": "admin@priced.example", "name": "Admin"},
        })).await.expect(201);
        assert!(priced.get("warnings").is_none(), "{priced}");
    }
}
