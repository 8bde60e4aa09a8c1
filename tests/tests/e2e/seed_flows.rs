//! The seeds' own flows, end to end over HTTP, on both backends: the
//! reseller's line portal (seed 003) and the IoT SIM portal (seed 004).

use canopy_e2e::both_backends;
use canopy_e2e::resources::lines;
use serde_json::{Value, json};

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn seed_003_lines_move_between_sub_accounts(app) {
        let parent = app.parent("partner.example", "reseller").await;
        app.provision(&parent, "line", &lines("1", 2_025_550_100, 20), Value::Null).await;
        let north = app
            .try_sub(&parent, "North", "north@partner.example", json!({"invite": false}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();
        let south = app
            .try_sub(&parent, "South", "south@partner.example", json!({"invite": false}))
            .await
            .expect(201)["id"].as_str().unwrap().to_string();

        let available = ids(&app.all_resources(&parent.id, &parent.key, "place=available").await);
        assert_eq!(available.len(), 20);
        let op = app.transfer(&parent, &north, &available[..5]).await;
        assert_eq!((op["status"].as_str(), op["succeeded"].as_i64(), op["failed"].as_i64()), (Some("completed"), Some(5), Some(0)), "{op}");
        let op = app.transfer(&parent, &south, &available[5..12]).await;
        assert_eq!(op["succeeded"], 7, "{op}");
        // Two of North's lines move to South.
        let op = app.transfer(&parent, &south, &available[..2]).await;
        assert_eq!(op["succeeded"], 2, "{op}");

        let summary = app
            .get(&format!("/v1/accounts/{}/resources/summary", parent.id), &parent.key)
            .await
            .expect(200);
        let count = |id: &str| {
            summary["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["account_id"] == id)
                .map(|g| g["lines"].as_i64().unwrap())
                .unwrap_or(0)
        };
        assert_eq!((count(&north), count(&south), count(&parent.id)), (3, 9, 8), "{summary}");
        assert_eq!(summary["groups"][0]["name"], "Available");
        assert_eq!(summary["total"]["line"], 20);

        // The billing summary groups the same way: Available as its own
        // group, each sub-account with the lines it holds.
        let billing = app
            .get(&format!("/v1/accounts/{}/billing/summary", parent.id), &parent.key)
            .await
            .expect(200);
        let billed = |id: &str| {
            billing["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["account_id"] == id)
                .map(|g| g["lines"].as_i64().unwrap())
                .unwrap_or(0)
        };
        assert_eq!((billed(&north), billed(&south), billed(&parent.id)), (3, 9, 8), "{billing}");
        let available_group = billing["groups"].as_array().unwrap().iter().find(|g| g["account_id"] == parent.id.as_str()).unwrap();
        assert_eq!(available_group["name"], "Available");

        // Each sub-account's view counts its lines; its list shows only them.
        let view = app.get(&format!("/v1/accounts/{north}"), &parent.key).await.expect(200);
        assert_eq!(view["resource_counts"], json!({"line": 3, "sim": 0}));
        let held = app.all_resources(&parent.id, &parent.key, &format!("account_id={south}")).await;
        assert_eq!(held.len(), 9);
        assert!(held.iter().all(|r| r["place"] == "assigned" && r["account_id"] == south.as_str()));

        // Back to Available.
        let op = app.transfer(&parent, "available", &available[..1]).await;
        assert_eq!(op["succeeded"], 1, "{op}");
        let back = app.get(&format!("/v1/accounts/{}/resources/{}", parent.id, available[0]), &parent.key).await.expect(200);
        assert_eq!(back["place"], "available");
        assert_eq!(back["account_id"], parent.id.as_str());
    }
}
