//! Lines and SIMs: provisioning into the Available pool, lists and
//! filters, reach, counts and the summary, on both backends.

use canopy_e2e::both_backends;
use canopy_e2e::resources::{iccids, lines};
use reqwest::Method;
use serde_json::{Value, json};

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|r| r[field].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn provisioning_is_all_or_nothing(app) {
        let parent = app.parent("lines.example", "reseller").await;
        let path = format!("/v1/operator/accounts/{}/resources", parent.id);
        // One bad number, one bad check digit, one duplicate: nothing created.
        let mut sims = iccids("894401", 1, 3);
        let mut bad = sims[1].clone();
        let last = bad.pop().unwrap().to_digit(10).unwrap();
        bad.push(char::from_digit((last + 1) % 10, 10).unwrap());
        sims[1] = bad;
        sims.push(sims[0].clone());
        let p = app
            .op_post(&path, json!({"kind": "sim", "identifiers": sims}))
            .await
            .expect_problem(422, "validation_failed");
        let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, vec!["identifiers[1]", "identifiers[3]"], "{p}");
        assert!(p["errors"][0]["reason"].as_str().unwrap().contains("Luhn"), "{p}");
        let p = app
            .op_post(&path, json!({"kind": "line", "identifiers": ["+1415555", "0044207946000"]}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{p}");
        assert!(app.all_resources(&parent.id, &parent.key, "").await.is_empty());

        // A good batch, then the same identifiers again (here or in another
        // tree): taken, named one by one.
        let numbers = lines("44", 7_946_000_000, 20);
        let created = app.provision(&parent, "line", &numbers, json!(["uk"])).await;
        assert_eq!(created["created"], 20);
        let other = app.parent("other.example", "enterprise").await;
        let p = app
            .op_post(
                &format!("/v1/operator/accounts/{}/resources", other.id),
                json!({"kind": "line", "identifiers": [numbers[3].clone(), "+33612345678"]}),
            )
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(p["errors"][0]["field"], "identifiers[0]", "{p}");
        assert!(p["errors"][0]["reason"].as_str().unwrap().contains("already provisioned"), "{p}");
        assert!(app.all_resources(&other.id, &other.key, "").await.is_empty());

        // Provisioning is the operator's: an account's own key cannot.
        app.post(&path, &parent.key, json!({"kind": "line", "identifiers": ["+33612345678"]}))
            .await
            .expect_problem(401, "unauthenticated");
        // Unknown fields and kinds are named.
        app.op_post(&path, json!({"kind": "esim", "identifiers": ["x"]}))
            .await
            .expect_problem(422, "validation_failed");
        app.op_post(&path, json!({"kind": "line", "identifiers": ["+33612345678"], "color": 1}))
            .await
            .expect_problem(422, "validation_failed");
    }

    async fn provisioning_replays_its_idempotency_key(app) {
        let parent = app.parent("replay.example", "enterprise").await;
        let path = format!("/v1/operator/accounts/{}/resources", parent.id);
        let body = json!({"kind": "sim", "identifiers": iccids("894402", 1, 5)});
        let token = app.operator_token.clone();
        let first = app
            .request_with(Method::POST, &path, Some(&token), Some(body.clone()), &[("Idempotency-Key", "prov-1")])
            .await;
        assert_eq!(first.status.as_u16(), 201, "{}", first.body);
        let again = app
            .request_with(Method::POST, &path, Some(&token), Some(body), &[("Idempotency-Key", "prov-1")])
            .await;
        assert_eq!(again.status.as_u16(), 201);
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(app.all_resources(&parent.id, &parent.key, "").await.len(), 5);
    }

    async fn lists_filter_and_page_through_the_tree(app) {
        let parent = app.parent("fleet.example", "enterprise").await;
        app.provision(&parent, "sim", &iccids("894403", 1, 30), json!(["fleet-a"])).await;
        app.provision(&parent, "sim", &iccids("894404", 1, 25), json!(["fleet-b", "eu"])).await;
        app.provision(&parent, "line", &lines("1", 4_155_550_100, 10), Value::Null).await;

        // Pages of 7 add up to everything, each resource once, in order.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/accounts/{}/resources?limit=7", parent.id);
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.get(&path, &parent.key).await.expect(200);
            let items = page["data"].as_array().unwrap();
            assert!(items.len() <= 7);
            seen.extend(ids(items, "id"));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 65);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 65, "no resource twice");

        let all = |q: &'static str| {
            let app = &app;
            let parent = &parent;
            async move { app.all_resources(&parent.id, &parent.key, q).await }
        };
        assert_eq!(all("kind=line").await.len(), 10);
        let sims = all("kind=sim&status=inventory").await;
        assert_eq!(sims.len(), 55);
        assert!(sims.iter().all(|r| r["status"] == "inventory" && r["place"] == "available" && r["account_id"] == parent.id.as_str()));
        assert_eq!(all("tag=fleet-b").await.len(), 25);
        assert_eq!(all("tag=eu&kind=sim").await.len(), 25);
        assert_eq!(all("tag=nothing").await.len(), 0);
        assert_eq!(all("prefix=894403").await.len(), 30);
        assert_eq!(all("prefix=%2B1415").await.len(), 10);
        assert_eq!(all("place=available").await.len(), 65);
        assert_eq!(all("place=assigned").await.len(), 0);
        assert_eq!(all("status=active").await.len(), 10, "lines arrive active");
        let tagged = all("tag=fleet-a").await;
        assert_eq!(tagged[0]["tags"], json!(["fleet-a"]));

        // One resource, by id.
        let one = app
            .get(&format!("/v1/accounts/{}/resources/{}", parent.id, tagged[0]["id"].as_str().unwrap()), &parent.key)
            .await
            .expect(200);
        assert_eq!(one["identifier"], tagged[0]["identifier"]);

        // Bad filters are named.
        for (q, field) in [("kind=esim", "kind"), ("place=nowhere", "place"), ("prefix=12%25", "prefix"), ("status=lost", "status"), ("color=red", "color")] {
            let p = app
                .get(&format!("/v1/accounts/{}/resources?{q}", parent.id), &parent.key)
                .await
                .expect_problem(422, "validation_failed");
            assert!(p["detail"].as_str().unwrap().contains(field), "{q}: {p}");
        }
    }

    async fn reach_keeps_trees_and_sub_accounts_apart(app) {
        let parent = app.parent("reach.example", "enterprise").await;
        let sims = iccids("894405", 1, 3);
        app.provision(&parent, "sim", &sims, Value::Null).await;
        let first = app.all_resources(&parent.id, &parent.key, "").await;
        let res_id = first[0]["id"].as_str().unwrap().to_string();

        // A sub-account's admin sees nothing of the parent's pool.
        let sub = app.sub(&parent, "Team A", "team-a@reach.example").await;
        let sub_key = app.accept(sub.invitation.as_deref().unwrap(), "Team A Admin", "correct horse battery").await;
        assert!(app.all_resources(&sub.id, &sub_key, "").await.is_empty());
        app.get(&format!("/v1/accounts/{}/resources/{res_id}", sub.id), &sub_key)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/v1/accounts/{}/resources", parent.id), &sub_key)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/v1/accounts/{}/resources?place=available", sub.id), &sub_key)
            .await
            .expect_problem(422, "validation_failed");
        app.get(&format!("/v1/accounts/{}/resources/summary", sub.id), &sub_key)
            .await
            .expect_problem(403, "forbidden");

        // Another tree cannot read it, not even by its id.
        let other = app.parent("elsewhere.example", "enterprise").await;
        app.get(&format!("/v1/accounts/{}/resources/{res_id}", other.id), &other.key)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/v1/accounts/{}/resources/{res_id}", parent.id), &other.key)
            .await
            .expect_problem(404, "not_found");

        // Counts: the sub-account holds none; the Available pool all three.
        let view = app.get(&format!("/v1/accounts/{}", sub.id), &parent.key).await.expect(200);
        assert_eq!(view["resource_counts"], json!({"line": 0, "sim": 0}));
        let list = app.get(&format!("/v1/accounts/{}/subaccounts", parent.id), &parent.key).await.expect(200);
        assert_eq!(list["data"][0]["resource_counts"], json!({"line": 0, "sim": 0}));
        let summary = app.get(&format!("/v1/accounts/{}/resources/summary", parent.id), &parent.key).await.expect(200);
        assert_eq!(summary["groups"][0], json!({"account_id": parent.id, "name": "Available", "lines": 0, "sims": 3}));
        assert_eq!(summary["total"], json!({"line": 0, "sim": 3}));
    }

    async fn every_resource_route_is_in_the_openapi_document(app) {
        let spec = app.request(Method::GET, "/openapi.json", None, None).await.expect(200);
        for path in [
            "/v1/operator/accounts/{id}/resources",
            "/v1/accounts/{id}/resources",
            "/v1/accounts/{id}/resources/summary",
            "/v1/accounts/{id}/resources/{resource_id}",
            "/v1/accounts/{id}/resource-transfers",
            "/v1/accounts/{id}/resource-actions",
            "/v1/accounts/{id}/operations",
            "/v1/accounts/{id}/operations/{op_id}",
            "/v1/operator/accounts/{id}/operations",
            "/v1/operator/offers",
            "/v1/accounts/{id}/offer",
            "/v1/accounts/{id}/billing/summary",
            "/v1/accounts/{id}/invoices",
            "/v1/accounts/{id}/invoices/{invoice}",
            "/v1/operator/accounts/{id}/adjustments",
            "/v1/accounts/{id}/merges",
            "/v1/accounts/{id}/merges/{merge_id}/approve",
            "/v1/accounts/{id}/merges/{merge_id}/reject",
            "/v1/operator/settings",
        ] {
            assert!(spec["paths"].get(path).is_some(), "{path} is documented");
        }
        let filters: Vec<&str> = spec["paths"]["/v1/accounts/{id}/resources"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for f in ["kind", "status", "place", "tag", "prefix", "account_id", "limit", "cursor"] {
            assert!(filters.contains(&f), "filter {f} is documented: {filters:?}");
        }
    }
}
