//! Offers, recurring charges, the billing summary, adjustments, the period
//! close into invoices (JSON and CSV) and what the ledger takes at close,
//! on both backends. Every amount is checked to the micro-unit against a
//! hand computation.

use canopy_e2e::{Parent, TestApp, both_backends, micros};
use serde_json::{Value, json};

async fn offer(app: &TestApp, name: &str, kind: &str, fee: &str, currency: &str) -> String {
    let body = app
        .op_post(
            "/v1/operator/offers",
            json!({"name": name, "kind": kind, "monthly_fee": fee, "currency": currency}),
        )
        .await
        .expect(201);
    assert_eq!(body["monthly_fee"], fee);
    body["id"].as_str().unwrap().to_string()
}

/// Lines provisioned into the parent's Available pool (API.md, provisioning).
async fn provision_lines(app: &TestApp, parent: &Parent, numbers: &[&str]) {
    let body = app
        .op_post(
            &format!("/v1/operator/accounts/{}/resources", parent.id),
            json!({"kind": "line", "identifiers": numbers}),
        )
        .await
        .expect(201);
    assert_eq!(body["created"], numbers.len());
}

async fn set_default_line_offer(app: &TestApp, parent: &Parent, offer: &str) {
    let body = app
        .op_patch(
            &format!("/v1/operator/accounts/{}", parent.id),
            json!({"default_offers": {"line": offer}}),
        )
        .await
        .expect(200);
    assert_eq!(body["offers"]["line"], offer);
}

fn group<'a>(doc: &'a Value, account_id: &str) -> &'a Value {
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["account_id"] == account_id)
        .unwrap_or_else(|| panic!("no group {account_id} in {doc}"))
}

fn m(v: &Value) -> i64 {
    micros(v.as_str().unwrap_or_else(|| panic!("{v} is not money")))
}

/// The invoices of a tree (listing closes the periods that ended).
async fn invoices(app: &TestApp, parent: &Parent) -> Vec<Value> {
    app.get(&format!("/v1/accounts/{}/invoices", parent.id), &parent.key)
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Three lines provisioned now (day 10 of April 2031) at the default
/// line offer of 9.00 a month; April closed. Its invoice.
async fn three_lines_closed(app: &TestApp, parent: &Parent, prefix: &str) -> Value {
    let line_offer = offer(app, "Line", "line", "9.00", "USD").await;
    set_default_line_offer(app, parent, &line_offer).await;
    let numbers: Vec<String> = (1..=3).map(|i| format!("{prefix}{i}")).collect();
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    provision_lines(app, parent, &numbers).await;
    app.set_clock("2031-05-02T00:00:00Z").await;
    let list = invoices(app, parent).await;
    assert_eq!(list.len(), 1, "{list:?}");
    app.get(
        &format!(
            "/v1/accounts/{}/invoices/{}",
            parent.id,
            list[0]["id"].as_str().unwrap()
        ),
        &parent.key,
    )
    .await
    .expect(200)
}

both_backends! {
    async fn offers_default_offers_and_assignment(app) {
        let usd_line = offer(&app, "Line basic", "line", "9.00", "USD").await;
        let premium = offer(&app, "Line premium", "line", "12.50", "USD").await;
        let eur_line = offer(&app, "Line EU", "line", "8.00", "EUR").await;
        let usd_sim = offer(&app, "IoT", "sim", "2.00", "USD").await;
        assert!(usd_line.starts_with("ofr_"));
        let with_sms = app
            .op_post(
                "/v1/operator/offers",
                json!({"name": "Bundle", "kind": "line", "monthly_fee": "15.00", "currency": "USD", "included": {"sms": 500}}),
            )
            .await
            .expect(201);
        assert_eq!(with_sms["included"], json!({"sms": 500}));
        for (body, field) in [
            (json!({"name": "X", "kind": "fax", "monthly_fee": "1.00", "currency": "USD"}), "kind"),
            (json!({"name": "X", "kind": "line", "monthly_fee": "-1.00", "currency": "USD"}), "monthly_fee"),
            (json!({"name": "X", "kind": "line", "monthly_fee": "1.001", "currency": "USD"}), "monthly_fee"),
            (json!({"name": "X", "kind": "line", "monthly_fee": "1.00", "currency": "USD", "included": {"mms": 1}}), "included.mms"),
        ] {
            let refused = app.op_post("/v1/operator/offers", body).await.expect_problem(422, "validation_failed");
            assert_eq!(refused["errors"][0]["field"], field, "{refused}");
        }
        let listed = app.get("/v1/operator/offers?limit=2", &app.operator_token.clone()).await.expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
        assert!(listed["next_cursor"].is_string());

        let parent = app.parent("resell.example", "reseller").await;
        let patch = |body: Value| {
            let path = format!("/v1/operator/accounts/{}", parent.id);
            let app = &app;
            async move { app.op_patch(&path, body).await }
        };
        // Currency and kind must match: 422 naming the field.
        let refused = patch(json!({"default_offers": {"line": eur_line}})).await.expect_problem(422, "validation_failed");
        assert_eq!(refused["errors"][0]["field"], "default_offers.line");
        let refused = patch(json!({"default_offers": {"sim": usd_line}})).await.expect_problem(422, "validation_failed");
        assert_eq!(refused["errors"][0]["field"], "default_offers.sim");
        let body = patch(json!({"default_offers": {"line": usd_line, "sim": usd_sim}})).await.expect(200);
        assert_eq!(body["offers"], json!({"line": usd_line, "sim": usd_sim}));

        let sub = app.sub(&parent, "Shop", "shop@resell.example").await;
        let path = format!("/v1/accounts/{}/offer", sub.id);
        let put = |token: String, body: Value| {
            let app = &app;
            let path = path.clone();
            async move {
                app.request(reqwest::Method::PUT, &path, Some(&token), Some(body)).await
            }
        };
        let refused = put(parent.key.clone(), json!({"kind": "line", "offer_id": usd_sim})).await.expect_problem(422, "validation_failed");
        assert_eq!(refused["errors"][0]["field"], "offer_id");
        let refused = put(parent.key.clone(), json!({"kind": "line", "offer_id": eur_line})).await.expect_problem(422, "validation_failed");
        assert_eq!(refused["errors"][0]["field"], "offer_id");
        let assigned = put(parent.key.clone(), json!({"kind": "line", "offer_id": premium})).await.expect(200);
        assert_eq!(assigned["offers"], json!({"line": premium}));
        // The parent itself has defaults, not an assigned offer: 403.
        app.request(
            reqwest::Method::PUT,
            &format!("/v1/accounts/{}/offer", parent.id),
            Some(&parent.key),
            Some(json!({"kind": "line", "offer_id": premium})),
        )
        .await
        .expect_problem(403, "forbidden");

        // The parent sees the sub-account's offer (group `plan`).
        let read = app.get(&format!("/v1/accounts/{}", sub.id), &parent.key).await.expect(200);
        assert_eq!(read["offers"]["line"], premium);

        // A reseller sub-account sees no offer or fee field, may not assign
        // offers, and cannot reach its parent's bill.
        let sub_key = app.accept(sub.invitation.as_deref().unwrap(), "Shop Admin", "correct horse battery").await;
        let own = app.get(&format!("/v1/accounts/{}", sub.id), &sub_key).await.expect(200);
        for hidden in ["offers", "prices", "billing_type", "monthly_credit_limit"] {
            assert!(own.get(hidden).is_none(), "{hidden} shown to a reseller sub-account: {own}");
        }
        put(sub_key.clone(), json!({"kind": "line", "offer_id": usd_line})).await.expect_problem(403, "policy_denied");
        app.get(&format!("/v1/accounts/{}/billing/summary", parent.id), &sub_key).await.expect_problem(404, "not_found");
        app.get(&format!("/v1/accounts/{}/invoices", parent.id), &sub_key).await.expect_problem(404, "not_found");
        app.get(&format!("/v1/accounts/{}/billing/summary", sub.id), &sub_key).await.expect_problem(403, "forbidden");
        // Nothing changed.
        let read = app.get(&format!("/v1/accounts/{}", sub.id), &parent.key).await.expect(200);
        assert_eq!(read["offers"]["line"], premium);
    }

    async fn summary_close_invoice_and_csv(app) {
        app.set_clock("2031-04-10T15:00:00Z").await;
        let parent = app.parent("bill.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "100.00"}))
            .await
            .expect(201);
        let line_offer = offer(&app, "Line", "line", "9.00", "USD").await;
        set_default_line_offer(&app, &parent, &line_offer).await;
        let a = app
            .try_sub(&parent, "Alpha", "alpha@bill.example", json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "10.00"}}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();
        let b = app
            .try_sub(&parent, "Beta", "beta@bill.example", json!({"invite": false}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();
        provision_lines(&app, &parent, &["+15550100001", "+15550100002"]).await;
        // Two messages in Alpha at 0.0075: usage 0.015.
        for _ in 0..2 {
            app.send(&a, &parent.key).await.expect(201);
        }
        app.op_post(
            &format!("/v1/operator/accounts/{}/adjustments", parent.id),
            json!({"kind": "credit", "amount": "1.00", "reason": "Goodwill", "period": "2031-04"}),
        )
        .await
        .expect(201);
        let discount = app
            .op_post(
                &format!("/v1/operator/accounts/{}/adjustments", parent.id),
                json!({"account_id": a, "kind": "discount", "amount": "0.01", "reason": "Promo", "period": "2031-04"}),
            )
            .await
            .expect(201);
        assert_eq!((discount["account_id"].as_str(), discount["amount"].as_str()), (Some(a.as_str()), Some("0.01")));
        let refused = app
            .op_post(
                &format!("/v1/operator/accounts/{}/adjustments", parent.id),
                json!({"account_id": "acct_nope", "kind": "credit", "amount": "1.00", "reason": "x", "period": "2031-04"}),
            )
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(refused["errors"][0]["field"], "account_id");

        // Live: day 10 so far, two lines at 9.00 / 30 = 0.30 a day.
        let live = app.get(&format!("/v1/accounts/{}/billing/summary", parent.id), &parent.key).await.expect(200);
        assert_eq!(live["period"], "2031-04");
        assert_eq!(live["currency"], "USD");
        assert_eq!(live["groups"].as_array().unwrap().len(), 3, "Available + 2 sub-accounts: {live}");
        let available = group(&live, &parent.id);
        assert_eq!(available["name"], "Available");
        assert_eq!((available["lines"].as_u64(), available["resource_days"].as_u64()), (Some(2), Some(2)));
        assert_eq!(m(&available["recurring"]), 600_000);
        assert_eq!(m(&available["credits"]), 1_000_000);
        assert_eq!(m(&available["total"]), 0, "credits never take a group below zero");
        let alpha = group(&live, &a);
        assert_eq!((m(&alpha["usage"]), m(&alpha["discounts"]), m(&alpha["total"])), (15_000, 10_000, 5_000));
        assert_eq!(m(&group(&live, &b)["total"]), 0);
        assert_eq!(m(&live["total"]), 5_000);

        // After the month: the close fixes April into an invoice.
        app.set_clock("2031-05-01T00:05:00Z").await;
        let list = invoices(&app, &parent).await;
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["period"], "2031-04");
        let id = list[0]["id"].as_str().unwrap().to_string();
        let invoice = app.get(&format!("/v1/accounts/{}/invoices/{id}", parent.id), &parent.key).await.expect(200);
        // Days 10-30: 21 days x 0.300000 per line = 6.300000; two lines 12.60.
        let available = group(&invoice, &parent.id);
        assert_eq!((available["resource_days"].as_u64(), m(&available["recurring"])), (Some(42), 12_600_000));
        assert_eq!(m(&available["total"]), 11_600_000);
        let items = invoice["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        for item in items {
            assert_eq!((item["days"].as_u64(), m(&item["amount"])), (Some(21), 6_300_000), "{item}");
            assert_eq!(item["account_id"], parent.id);
        }
        // 11.60 + Alpha's 0.005.
        assert_eq!(m(&invoice["total"]), 11_605_000);
        // The ledger took the recurring charges less the credit.
        assert_eq!((m(&invoice["charged"]), m(&invoice["due"])), (11_600_000, 0));
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "78.40");
        app.assert_ledger_balanced().await;

        // The CSV: a header and one row per group, summing to the total.
        let csv = app.get(&format!("/v1/accounts/{}/invoices/{id}.csv", parent.id), &parent.key).await;
        assert_eq!(csv.status.as_u16(), 200);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = csv.body.as_str().unwrap().to_string();
        let mut rows = text.lines();
        let header: Vec<&str> = rows.next().unwrap().split(',').collect();
        let total_at = header.iter().position(|h| *h == "total").unwrap();
        let rows: Vec<&str> = rows.collect();
        assert_eq!(rows.len(), invoice["groups"].as_array().unwrap().len());
        let sum: i64 = rows.iter().map(|r| micros(r.split(',').nth(total_at).unwrap())).sum();
        assert_eq!(sum, m(&invoice["total"]));

        // A closed period is fixed: its summary is the invoice's, and it
        // takes no more adjustments.
        let closed = app
            .get(&format!("/v1/accounts/{}/billing/summary?period=2031-04", parent.id), &parent.key)
            .await
            .expect(200);
        assert_eq!(m(&closed["total"]), 11_605_000);
        app.op_post(
            &format!("/v1/operator/accounts/{}/adjustments", parent.id),
            json!({"kind": "credit", "amount": "1.00", "reason": "late", "period": "2031-04"}),
        )
        .await
        .expect_problem(409, "conflict");
        app.get(&format!("/v1/accounts/{}/billing/summary?period=2031-06", parent.id), &parent.key)
            .await
            .expect_problem(422, "validation_failed");
        app.get(&format!("/v1/accounts/{}/invoices/inv_nope", parent.id), &parent.key)
            .await
            .expect_problem(404, "not_found");
        // Closing again (the background pass, another host) changes nothing.
        assert_eq!(invoices(&app, &parent).await.len(), 1);
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "78.40");
    }

    async fn a_prepaid_parent_short_of_balance_gets_due(app) {
        app.set_clock("2031-04-10T15:00:00Z").await;
        let parent = app.parent("short.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "5.00"}))
            .await
            .expect(201);
        let invoice = three_lines_closed(&app, &parent, "+1555020000").await;
        // 3 lines x 21 days x 0.30 = 18.90; the balance had 5.00.
        assert_eq!(m(&invoice["total"]), 18_900_000);
        assert_eq!((m(&invoice["charged"]), m(&invoice["due"])), (5_000_000, 13_900_000));
        assert_eq!(m(&group(&invoice, &parent.id)["due"]), 13_900_000);
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "0.00");
        app.assert_ledger_balanced().await;
    }

    async fn a_postpaid_parent_is_charged_up_to_its_limit(app) {
        app.set_clock("2031-04-10T15:00:00Z").await;
        let parent = app
            .parent_with("post.example", "enterprise", json!({"billing_type": "postpaid", "monthly_credit_limit": "10.00"}))
            .await;
        let invoice = three_lines_closed(&app, &parent, "+1555030000").await;
        assert_eq!(m(&invoice["total"]), 18_900_000);
        assert_eq!((m(&invoice["charged"]), m(&invoice["due"])), (10_000_000, 8_900_000));
        app.assert_ledger_balanced().await;
    }

    async fn two_hosts_close_a_period_once(app) {
        app.set_clock("2031-04-10T15:00:00Z").await;
        let parent = app.parent("twice.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "50.00"}))
            .await
            .expect(201);
        let line_offer = offer(&app, "Line", "line", "9.00", "USD").await;
        set_default_line_offer(&app, &parent, &line_offer).await;
        provision_lines(&app, &parent, &["+15550500001", "+15550500002"]).await;
        let other = canopy_e2e::spawn_app_with(
            app.backend,
            canopy_e2e::Options { database_url: Some(app.database_url.clone()), ..Default::default() },
        )
        .await;
        app.set_clock("2031-05-01T00:00:01Z").await;
        other.set_clock("2031-05-01T00:00:01Z").await;
        // Both hosts close April at once, several times over.
        let path = format!("/v1/accounts/{}/invoices", parent.id);
        let mut tasks = Vec::new();
        for host in [&app, &other, &app, &other] {
            let request = reqwest::Client::new().get(format!("{}{path}", host.base)).bearer_auth(&parent.key);
            tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let list = invoices(&other, &parent).await;
        assert_eq!(list.len(), 1, "{list:?}");
        // 2 lines x 21 days x 0.30 = 12.60, taken once.
        assert_eq!(m(&list[0]["total"]), 12_600_000);
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "37.40");
        app.assert_ledger_balanced().await;
        other.stop().await;
    }

    async fn a_merged_sub_account_is_billed_under_its_target(app) {
        app.set_clock("2031-04-10T15:00:00Z").await;
        let parent = app.parent("merge.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "50.00"}))
            .await
            .expect(201);
        let budgeted = json!({"invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "5.00"}});
        let source = app.try_sub(&parent, "Source", "source@merge.example", budgeted.clone()).await.expect(201)["id"]
            .as_str().unwrap().to_string();
        let target = app.try_sub(&parent, "Target", "target@merge.example", budgeted).await.expect(201)["id"]
            .as_str().unwrap().to_string();
        for _ in 0..2 {
            app.send(&source, &parent.key).await.expect(201);
        }
        app.send(&target, &parent.key).await.expect(201);
        let merge = app
            .post(&format!("/v1/accounts/{}/merges", parent.id), &parent.key, json!({"sources": [source], "target": target}))
            .await
            .expect(201);
        app.op_post(
            &format!("/v1/operator/accounts/{}/merges/{}/approve", parent.id, merge["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .expect(200);
        let summary = app.get(&format!("/v1/accounts/{}/billing/summary", parent.id), &parent.key).await.expect(200);
        let groups: Vec<&str> = summary["groups"].as_array().unwrap().iter().map(|g| g["account_id"].as_str().unwrap()).collect();
        assert_eq!(groups, vec![parent.id.as_str(), target.as_str()], "{summary}");
        // Three messages at 0.0075, two of them the source's.
        assert_eq!(m(&group(&summary, &target)["usage"]), 22_500);
        assert_eq!(m(&summary["total"]), 22_500);
    }
}

fn item<'a>(invoice: &'a Value, resource: &str, account: &str) -> &'a Value {
    invoice["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["resource_id"] == resource && i["account_id"] == account)
        .unwrap_or_else(|| panic!("no item of {resource} in {account}: {invoice}"))
}

both_backends! {
    async fn proration_of_a_move_and_an_activation_to_the_micro_unit(app) {
        app.set_clock("2031-04-05T10:00:00Z").await;
        let parent = app.parent("move.example", "enterprise").await;
        app.op_post(&format!("/v1/operator/accounts/{}/topups", parent.id), json!({"amount": "100.00"}))
            .await
            .expect(201);
        let basic = offer(&app, "Line basic", "line", "6.00", "USD").await;
        let premium = offer(&app, "Line premium", "line", "10.00", "USD").await;
        let iot = offer(&app, "IoT", "sim", "5.00", "USD").await;
        set_default_line_offer(&app, &parent, &basic).await;
        let sub = app
            .try_sub(&parent, "Mover", "mover@move.example", json!({"invite": false}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();
        for (kind, id) in [("line", &premium), ("sim", &iot)] {
            app.request(
                reqwest::Method::PUT,
                &format!("/v1/accounts/{sub}/offer"),
                Some(&parent.key),
                Some(json!({"kind": kind, "offer_id": id})),
            )
            .await
            .expect(200);
        }
        provision_lines(&app, &parent, &["+15550400001"]).await;
        let line = app.all_resources(&parent.id, &parent.key, "kind=line").await[0]["id"]
            .as_str().unwrap().to_string();

        // The line moves on day 10 of April (30 days).
        app.set_clock("2031-04-10T15:00:00Z").await;
        let op = app.transfer(&parent, &sub, std::slice::from_ref(&line)).await;
        assert_eq!(op["succeeded"], 1, "{op}");

        // A SIM arrives on day 3 of May (31 days), moves on day 15 and is
        // activated late on day 20.
        app.set_clock("2031-05-03T10:00:00Z").await;
        let iccid = canopy_e2e::resources::iccids("8988", 1, 1);
        app.provision(&parent, "sim", &iccid, Value::Null).await;
        let sim = app.all_resources(&parent.id, &parent.key, "kind=sim").await[0]["id"]
            .as_str().unwrap().to_string();
        app.set_clock("2031-05-15T10:00:00Z").await;
        assert_eq!(app.transfer(&parent, &sub, std::slice::from_ref(&sim)).await["succeeded"], 1);
        app.set_clock("2031-05-20T23:30:00Z").await;
        let accepted = app
            .post(&format!("/v1/accounts/{sub}/resource-actions"), &parent.key, json!({"action": "activate", "resource_ids": [sim]}))
            .await
            .expect(202);
        let op = app.await_operation(&sub, &parent.key, accepted["operation"]["id"].as_str().unwrap()).await;
        assert_eq!(op["succeeded"], 1, "{op}");

        app.set_clock("2031-06-01T00:05:00Z").await;
        let list = invoices(&app, &parent).await;
        let by_period = |p: &str| {
            list.iter().find(|i| i["period"] == p).unwrap()["id"].as_str().unwrap().to_string()
        };
        let april = app
            .get(&format!("/v1/accounts/{}/invoices/{}", parent.id, by_period("2031-04")), &parent.key)
            .await
            .expect(200);
        // April: days 5-9 end in Available at 6.00 / 30 = 0.200000 a day:
        // 1.000000. Days 10-30 end in the sub-account at 10.00 / 30 =
        // 0.3333333 -> 0.333333 a day: 21 x 0.333333 = 6.999993.
        let available = item(&april, &line, &parent.id);
        assert_eq!((available["days"].as_u64(), m(&available["amount"])), (Some(5), 1_000_000));
        let moved = item(&april, &line, &sub);
        assert_eq!((moved["days"].as_u64(), m(&moved["amount"])), (Some(21), 6_999_993));
        assert_eq!(m(&group(&april, &sub)["recurring"]), 6_999_993);
        assert_eq!(m(&april["total"]), 7_999_993);

        let may = app
            .get(&format!("/v1/accounts/{}/invoices/{}", parent.id, by_period("2031-05")), &parent.key)
            .await
            .expect(200);
        // May: the SIM from day 20 to 31, 12 days at 5.00 / 31 = 0.16129032
        // -> 0.161290: 1.935480. The line all 31 days at 10.00 / 31 =
        // 0.32258064 -> 0.322581: 10.000011 (rounded per day).
        let sim_item = item(&may, &sim, &sub);
        assert_eq!((sim_item["days"].as_u64(), m(&sim_item["amount"])), (Some(12), 1_935_480));
        let line_item = item(&may, &line, &sub);
        assert_eq!((line_item["days"].as_u64(), m(&line_item["amount"])), (Some(31), 10_000_011));
        let g = group(&may, &sub);
        assert_eq!((g["lines"].as_u64(), g["sims"].as_u64(), g["resource_days"].as_u64()), (Some(1), Some(1), Some(43)));
        assert_eq!(m(&g["recurring"]), 11_935_491);
        // The SIM's days in Available (inventory) cost nothing.
        assert_eq!(group(&may, &parent.id)["resource_days"], 0);
        // Charged in full from the prepaid balance: 100 - 7.999993 - 11.935491.
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "80.064516");
        app.assert_ledger_balanced().await;
    }
}
