//! Bulk operations on SIMs (seed 004): transfers by filter or by id list,
//! actions by a sub-account's own admin, per-item refusals, reach, the
//! Idempotency-Key, and exactly once across a SIGKILL and across two hosts.
//! On both backends.

use std::time::Duration;

use canopy_e2e::process::Server;
use canopy_e2e::sims::{
    Remote, Tree, assert_progress, count, follow, iccids, invited_sub, provision, resources,
    sub_with_admin, tree,
};
use canopy_e2e::{Backend, both_backends, fresh_database};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(120);

fn op_id(accepted: &Value) -> String {
    accepted["operation"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no operation in {accepted}"))
        .to_string()
}

/// The resource ids of a tree, in identifier order.
async fn resource_ids(app: &canopy_e2e::TestApp, tree: &str) -> Vec<String> {
    app.query_rows(
        "SELECT id FROM resources WHERE tree_id = $1 ORDER BY identifier",
        tree,
    )
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

async fn transfer(api: &Remote, t: &Tree, body: Value) -> (u16, Value) {
    api.post(
        &format!("/v1/accounts/{}/resource-transfers", t.parent),
        &t.parent_key,
        body,
    )
    .await
}

both_backends! {
    async fn seed_004_transfer_by_filter_then_activate_as_the_subaccount(app) {
        let api = Remote::new(&app.base);
        let t = tree(&api, &app.operator_token, "fleet.example").await;
        let db = &app.database_url;
        provision(&api, &app.operator_token, &t.parent, &iccids("894400", 0, 1000), &["fleet-a"]).await;
        provision(&api, &app.operator_token, &t.parent, &iccids("894401", 0, 20), &[]).await;

        // 1,000 SIMs by tag, to the sub-account, in one operation.
        let (status, accepted) =
            transfer(&api, &t, json!({"to": t.sub, "filter": {"tag": "fleet-a"}})).await;
        assert_eq!(status, 202, "{accepted}");
        let op = &accepted["operation"];
        assert_eq!(op["kind"], "transfer");
        assert_eq!(op["total"], 1000);
        assert_eq!(op["to"], t.sub.as_str());
        assert!(matches!(op["status"].as_str(), Some("queued")), "{op}");
        let id = op_id(&accepted);
        let readings = follow(&api, &t.parent, &t.parent_key, &id, WITHIN).await;
        assert_progress(&readings);
        let end = readings.last().unwrap();
        assert_eq!(end["status"], "completed", "{end}");
        assert_eq!(end["succeeded"], 1000);
        assert_eq!(end["errors"], json!([]));
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM resources WHERE account_id = $1", &t.sub).await,
            1000
        );
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM resource_history WHERE operation_id = $1 AND event = 'transfer'", &id).await,
            1000,
            "one history row per SIM"
        );

        // The sub-account's own admin activates them.
        let (status, accepted) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.sub),
                &t.sub_key,
                json!({"action": "activate", "filter": {"kind": "sim", "status": "inventory"}}),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["operation"]["total"], 1000);
        let activation = op_id(&accepted);
        let readings = follow(&api, &t.sub, &t.sub_key, &activation, WITHIN).await;
        assert_progress(&readings);
        let end = readings.last().unwrap();
        assert_eq!((end["status"].as_str(), end["succeeded"].as_i64()), (Some("completed"), Some(1000)), "{end}");
        let active = resources(&api, &t.sub, &t.sub_key, "kind=sim&status=active").await;
        assert_eq!(active.len(), 1000, "the sub-account lists them active");
        assert!(active.iter().all(|r| r["account_id"] == t.sub.as_str() && r["status"] == "active"));
        assert!(resources(&api, &t.sub, &t.sub_key, "status=inventory").await.is_empty());
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM resources WHERE account_id = $1 AND status = 'inventory'", &t.parent).await,
            20,
            "the untagged SIMs stay in the Available pool"
        );
        assert_eq!(
            count(db, "SELECT MAX(seq) FROM resources WHERE account_id = $1", &t.sub).await,
            3,
            "provisioned, moved, activated: three history rows each"
        );

        // By prefix, and back to the Available pool from the sub-account.
        let (status, accepted) = transfer(
            &api,
            &t,
            json!({"to": t.sub, "filter": {"prefix": "894401", "place": "available"}}),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["operation"]["total"], 20);
        let end = follow(&api, &t.parent, &t.parent_key, &op_id(&accepted), WITHIN).await;
        assert_eq!(end.last().unwrap()["succeeded"], 20);
        let (status, accepted) = transfer(
            &api,
            &t,
            json!({"to": "available", "filter": {"account_id": t.sub, "prefix": "894401"}}),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["operation"]["total"], 20);
        let end = follow(&api, &t.parent, &t.parent_key, &op_id(&accepted), WITHIN).await;
        assert_eq!(end.last().unwrap()["succeeded"], 20);
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM resources WHERE account_id = $1", &t.parent).await,
            20
        );

        // The parent lists its tree's operations; the sub-account its own.
        let (status, list) = api
            .get(&format!("/v1/accounts/{}/operations", t.parent), &t.parent_key)
            .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 4, "{list}");
        assert_eq!(list["data"][3]["id"], id.as_str(), "newest first");
        let (_, list) = api
            .get(&format!("/v1/accounts/{}/operations?limit=1", t.sub), &t.sub_key)
            .await;
        assert_eq!(list["data"][0]["id"], activation.as_str(), "{list}");
        assert!(list["next_cursor"].is_null(), "only its own: {list}");
        let (status, list) = api
            .get(&format!("/v1/operator/accounts/{}/operations", t.parent), &app.operator_token)
            .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 4);
    }

    async fn a_mixed_transfer_completes_the_movable_and_names_each_refusal(app) {
        let api = Remote::new(&app.base);
        let t = tree(&api, &app.operator_token, "mixed.example").await;
        provision(&api, &app.operator_token, &t.parent, &iccids("894403", 0, 6), &[]).await;
        let ids = resource_ids(&app, &t.parent).await;

        // Two SIMs are terminated in the Available pool first.
        let (status, accepted) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.parent),
                &t.parent_key,
                json!({"action": "terminate", "resource_ids": [ids[1], ids[4]]}),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let end = follow(&api, &t.parent, &t.parent_key, &op_id(&accepted), WITHIN).await;
        assert_eq!(end.last().unwrap()["succeeded"], 2);

        let mut listed = ids.clone();
        listed.push("res_0000000000000000000000000000".into());
        let (status, accepted) =
            transfer(&api, &t, json!({"to": t.sub, "resource_ids": listed})).await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["operation"]["total"], 7);
        let readings = follow(&api, &t.parent, &t.parent_key, &op_id(&accepted), WITHIN).await;
        let end = readings.last().unwrap();
        assert_eq!(end["status"], "completed", "{end}");
        assert_eq!((end["succeeded"].as_i64(), end["failed"].as_i64()), (Some(4), Some(3)), "{end}");
        let errors: Vec<(String, String)> = end["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(!e["reason"].as_str().unwrap().is_empty(), "{e}");
                (e["resource_id"].as_str().unwrap().to_string(), e["code"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            errors,
            vec![
                (ids[1].clone(), "terminal_status".to_string()),
                (ids[4].clone(), "terminal_status".to_string()),
                (listed[6].clone(), "not_found".to_string()),
            ]
        );
        assert_eq!(
            count(&app.database_url, "SELECT COUNT(*) FROM resources WHERE account_id = $1", &t.sub).await,
            4
        );

        // Already there; and the sub-account cannot act on the pool's SIMs.
        let (_, accepted) = transfer(&api, &t, json!({"to": t.sub, "resource_ids": [ids[0]]})).await;
        let end = follow(&api, &t.parent, &t.parent_key, &op_id(&accepted), WITHIN).await;
        assert_eq!(end.last().unwrap()["errors"][0]["code"], "already_there");
        let (status, accepted) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.sub),
                &t.sub_key,
                json!({"action": "activate", "resource_ids": [ids[0], ids[1]]}),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let end = follow(&api, &t.sub, &t.sub_key, &op_id(&accepted), WITHIN).await;
        let end = end.last().unwrap();
        assert_eq!(end["succeeded"], 1, "{end}");
        assert_eq!(end["errors"][0]["resource_id"], ids[1].as_str());
        assert_eq!(end["errors"][0]["code"], "not_found", "the pool is out of its reach");
        // A wrong action for the status.
        let (_, accepted) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.sub),
                &t.sub_key,
                json!({"action": "resume", "resource_ids": [ids[0]]}),
            )
            .await;
        let end = follow(&api, &t.sub, &t.sub_key, &op_id(&accepted), WITHIN).await;
        assert_eq!(end.last().unwrap()["errors"][0]["code"], "wrong_status");
    }

    async fn subaccounts_neither_move_resources_nor_see_each_other(app) {
        let api = Remote::new(&app.base);
        let t = tree(&api, &app.operator_token, "reach.example").await;
        let (other, other_key) =
            sub_with_admin(&api, &t.parent, &t.parent_key, "Vans", "vans@reach.example").await;
        provision(&api, &app.operator_token, &t.parent, &iccids("894404", 0, 3), &["vans"]).await;
        let ids = resource_ids(&app, &t.parent).await;

        // Only the parent's admin moves resources (Twilio's 21474).
        let refused = api
            .post(
                &format!("/v1/accounts/{}/resource-transfers", t.sub),
                &t.sub_key,
                json!({"to": "available", "filter": {}}),
            )
            .await;
        assert_eq!(refused.0, 403, "{}", refused.1);
        assert_eq!(refused.1["code"], "forbidden");
        assert!(refused.1["detail"].as_str().unwrap().contains("parent account's admin"), "{}", refused.1);
        for path in [&t.parent, &other] {
            let (status, body) = api
                .post(
                    &format!("/v1/accounts/{path}/resource-transfers"),
                    &t.sub_key,
                    json!({"to": t.sub, "resource_ids": [ids[0]]}),
                )
                .await;
            assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
        }

        // The parent moves the SIMs to the other sub-account; its admin
        // activates them.
        let (_, accepted) = transfer(&api, &t, json!({"to": other, "filter": {"tag": "vans"}})).await;
        let moved = op_id(&accepted);
        follow(&api, &t.parent, &t.parent_key, &moved, WITHIN).await;
        let (_, accepted) = api
            .post(
                &format!("/v1/accounts/{other}/resource-actions"),
                &other_key,
                json!({"action": "activate", "filter": {}}),
            )
            .await;
        let activated = op_id(&accepted);
        follow(&api, &other, &other_key, &activated, WITHIN).await;

        // The first sub-account sees none of it.
        for path in [
            format!("/v1/accounts/{other}/resources"),
            format!("/v1/accounts/{other}/operations"),
            format!("/v1/accounts/{other}/operations/{activated}"),
        ] {
            let (status, body) = api.get(&path, &t.sub_key).await;
            assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{path}: {body}");
        }
        for op in [&moved, &activated] {
            let (status, _) = api
                .get(&format!("/v1/accounts/{}/operations/{op}", t.sub), &t.sub_key)
                .await;
            assert_eq!(status, 404, "another account's operation");
        }
        // Acting on another sub-account's SIMs by id finds nothing there.
        let (status, accepted) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.sub),
                &t.sub_key,
                json!({"action": "suspend", "resource_ids": ids}),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let end = follow(&api, &t.sub, &t.sub_key, &op_id(&accepted), WITHIN).await;
        let end = end.last().unwrap();
        assert_eq!((end["succeeded"].as_i64(), end["failed"].as_i64()), (Some(0), Some(3)), "{end}");
        assert!(end["errors"].as_array().unwrap().iter().all(|e| e["code"] == "not_found"), "{end}");
        assert_eq!(
            count(&app.database_url, "SELECT COUNT(*) FROM resources WHERE account_id = $1 AND status = 'active'", &other).await,
            3,
            "untouched"
        );
        // A sub-account cannot name another one in a filter.
        let (status, body) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.sub),
                &t.sub_key,
                json!({"action": "suspend", "filter": {"account_id": other}}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        // The parent's admin acts in a sub-account (path or filter).
        let (status, accepted) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.parent),
                &t.parent_key,
                json!({"action": "suspend", "filter": {"account_id": other}}),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let end = follow(&api, &t.parent, &t.parent_key, &op_id(&accepted), WITHIN).await;
        assert_eq!(end.last().unwrap()["succeeded"], 3);
    }

    async fn requests_are_checked_before_anything_is_stored(app) {
        let api = Remote::new(&app.base);
        let t = tree(&api, &app.operator_token, "checks.example").await;
        provision(&api, &app.operator_token, &t.parent, &iccids("894405", 0, 2), &[]).await;
        let ids = resource_ids(&app, &t.parent).await;
        let invited = invited_sub(&api, &t.parent, &t.parent_key, "Later", "later@checks.example").await;
        let elsewhere = tree(&api, &app.operator_token, "elsewhere.example").await;
        for (body, status, field) in [
            (json!({"to": t.sub}), 422, "resource_ids"),
            (json!({"to": t.sub, "resource_ids": ids, "filter": {}}), 422, "resource_ids"),
            (json!({"to": t.sub, "resource_ids": []}), 422, "resource_ids"),
            (json!({"to": t.sub, "resource_ids": [ids[0], ids[0]]}), 422, "resource_ids"),
            (json!({"to": elsewhere.sub, "resource_ids": ids}), 422, "to"),
            (json!({"to": t.sub, "filter": {"kind": "phone"}}), 422, "filter.kind"),
            (json!({"to": t.sub, "filter": {"prefix": "89x"}}), 422, "filter.prefix"),
            (json!({"to": t.sub, "filter": {"tag": "nothing-has-it"}}), 422, "filter"),
            (json!({"to": t.sub, "filter": {"colour": "red"}}), 422, ""),
            (json!({"to": invited["id"], "resource_ids": ids}), 409, ""),
        ] {
            let (got, problem) = transfer(&api, &t, body.clone()).await;
            assert_eq!(got, status, "{body}: {problem}");
            if !field.is_empty() {
                assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
            }
            assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
        }
        let (status, problem) = api
            .post(
                &format!("/v1/accounts/{}/resource-actions", t.parent),
                &t.parent_key,
                json!({"action": "explode", "resource_ids": ids}),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "action");
        assert_eq!(
            count(&app.database_url, "SELECT COUNT(*) FROM operations WHERE tree_id = $1", &t.parent).await,
            0,
            "nothing stored"
        );
    }

    async fn an_idempotency_key_replays_the_same_operation(app) {
        let api = Remote::new(&app.base);
        let t = tree(&api, &app.operator_token, "again.example").await;
        provision(&api, &app.operator_token, &t.parent, &iccids("894406", 0, 50), &["lot"]).await;
        let path = format!("/v1/accounts/{}/resource-transfers", t.parent);
        let body = json!({"to": t.sub, "filter": {"tag": "lot"}});
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (status, accepted) = api
                .send(reqwest::Method::POST, &path, &t.parent_key, Some(body.clone()), Some("move-lot-1"))
                .await
                .unwrap();
            assert_eq!(status, 202, "{accepted}");
            seen.push(op_id(&accepted));
        }
        assert_eq!(seen[0], seen[1], "the same operation");
        follow(&api, &t.parent, &t.parent_key, &seen[0], WITHIN).await;
        let (status, again) = api
            .send(reqwest::Method::POST, &path, &t.parent_key, Some(body.clone()), Some("move-lot-1"))
            .await
            .unwrap();
        assert_eq!((status, op_id(&again)), (202, seen[0].clone()));
        assert_eq!(
            count(&app.database_url, "SELECT COUNT(*) FROM operations WHERE tree_id = $1", &t.parent).await,
            1
        );
        assert_eq!(
            count(&app.database_url, "SELECT COUNT(*) FROM resource_history WHERE operation_id = $1", &seen[0]).await,
            50
        );
    }
}

const TOKEN: &str = "cop_operations_operator_token";

/// Every item of `op` was done exactly once: one history row per resource,
/// every item succeeded, every resource moved to `to` with two history rows.
async fn assert_exactly_once(url: &str, op: &str, to: &str, n: i64) {
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM resource_history WHERE operation_id = $1",
            op
        )
        .await,
        n,
        "one history row per item"
    );
    assert_eq!(
        count(
            url,
            "SELECT COUNT(DISTINCT resource_id) FROM resource_history WHERE operation_id = $1",
            op
        )
        .await,
        n
    );
    assert_eq!(
        count(url, "SELECT COUNT(*) FROM operation_items WHERE operation_id = $1 AND outcome = 'succeeded'", op).await,
        n
    );
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM resources WHERE account_id = $1 AND seq = 2",
            to
        )
        .await,
        n,
        "each resource changed exactly once"
    );
}

/// A server is killed between two chunks of a 10,000-item transfer; after a
/// restart the operation completes with each item done exactly once.
async fn killed_mid_operation(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let lease = ["--test-clock", "--operation-lease-ms", "1000"];
    let mut crashing = Server::start_with(
        &url,
        Some(TOKEN),
        &lease,
        &[("CANOPY_TEST_CRASH_AT", "between-operation-chunks")],
    );
    let api = Remote::new(&crashing.base);
    let t = tree(&api, TOKEN, "crash.example").await;
    provision(
        &api,
        TOKEN,
        &t.parent,
        &iccids("894407", 0, 10_000),
        &["bulk"],
    )
    .await;
    let path = format!("/v1/accounts/{}/resource-transfers", t.parent);
    let body = json!({"to": t.sub, "filter": {"tag": "bulk"}});
    let sent = api
        .send(
            reqwest::Method::POST,
            &path,
            &t.parent_key,
            Some(body.clone()),
            Some("bulk-1"),
        )
        .await;
    let status = crashing.child.wait().unwrap();
    assert!(!status.success(), "killed between chunks");
    let op = match sent {
        Ok((202, accepted)) => op_id(&accepted),
        other => panic!("the operation is accepted before the first chunk ends: {other:?}"),
    };
    let done = count(&url, "SELECT succeeded FROM operations WHERE id = $1", &op).await;
    assert!(
        done > 0 && done < 10_000,
        "killed mid-operation, after {done} items"
    );

    let server = Server::start_with(&url, Some(TOKEN), &lease, &[]);
    let api = Remote::new(&server.base);
    let readings = follow(&api, &t.parent, &t.parent_key, &op, WITHIN).await;
    assert_progress(&readings);
    let end = readings.last().unwrap();
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(
        (end["succeeded"].as_i64(), end["failed"].as_i64()),
        (Some(10_000), Some(0))
    );
    assert_exactly_once(&url, &op, &t.sub, 10_000).await;
    // The key still answers with the same operation.
    let (status, again) = api
        .send(
            reqwest::Method::POST,
            &path,
            &t.parent_key,
            Some(body),
            Some("bulk-1"),
        )
        .await
        .unwrap();
    assert_eq!((status, op_id(&again)), (202, op));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_operation_sqlite() {
    killed_mid_operation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_operation_postgres() {
    killed_mid_operation(Backend::Postgres).await;
}

/// Two hosts on one PostgreSQL database, with leases so short that they
/// keep taking operations over from each other, never do an item twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_never_process_one_operation_twice() {
    let (url, _dir) = fresh_database(Backend::Postgres).await;
    let lease = ["--operation-lease-ms", "50"];
    let a = Server::start_with(&url, Some(TOKEN), &lease, &[]);
    let b = Server::start_with(&url, Some(TOKEN), &lease, &[]);
    let (api_a, api_b) = (Remote::new(&a.base), Remote::new(&b.base));
    let t = tree(&api_a, TOKEN, "hosts.example").await;
    let (other, _) = sub_with_admin(
        &api_a,
        &t.parent,
        &t.parent_key,
        "Vans",
        "vans@hosts.example",
    )
    .await;
    provision(
        &api_a,
        TOKEN,
        &t.parent,
        &iccids("894408", 0, 6_000),
        &["east"],
    )
    .await;
    provision(
        &api_a,
        TOKEN,
        &t.parent,
        &iccids("894409", 0, 4_000),
        &["west"],
    )
    .await;
    let (status, east) =
        transfer(&api_a, &t, json!({"to": t.sub, "filter": {"tag": "east"}})).await;
    assert_eq!(status, 202, "{east}");
    let t_b = Tree {
        parent: t.parent.clone(),
        parent_key: t.parent_key.clone(),
        sub: other.clone(),
        sub_key: String::new(),
    };
    let (status, west) = transfer(
        &api_b,
        &t_b,
        json!({"to": other, "filter": {"tag": "west"}}),
    )
    .await;
    assert_eq!(status, 202, "{west}");
    for (op, to, n) in [(op_id(&east), &t.sub, 6_000), (op_id(&west), &other, 4_000)] {
        let readings = follow(&api_b, &t.parent, &t.parent_key, &op, WITHIN).await;
        assert_progress(&readings);
        let end = readings.last().unwrap();
        assert_eq!(end["status"], "completed", "{end}");
        assert_eq!(end["succeeded"].as_i64(), Some(n), "{end}");
        assert_exactly_once(&url, &op, to, n).await;
    }
}

/// Not a timed test: prints how fast a 10,000-SIM transfer runs on each
/// backend (BENCHMARKS.md, "Bulk operations"). Run with
/// `cargo test -p canopy-e2e --test e2e operations::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_a_10000_sim_transfer() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = canopy_e2e::spawn_app(backend).await;
        let api = Remote::new(&app.base);
        let t = tree(&api, &app.operator_token, "measure.example").await;
        provision(
            &api,
            &app.operator_token,
            &t.parent,
            &iccids("894410", 0, 10_000),
            &["bulk"],
        )
        .await;
        let started = std::time::Instant::now();
        let (status, accepted) =
            transfer(&api, &t, json!({"to": t.sub, "filter": {"tag": "bulk"}})).await;
        assert_eq!(status, 202, "{accepted}");
        let accepted_after = started.elapsed();
        let id = op_id(&accepted);
        let mut first_progress = None;
        let path = format!("/v1/accounts/{}/operations/{id}", t.parent);
        let end = loop {
            let (_, op) = api.get(&path, &t.parent_key).await;
            if first_progress.is_none() && op["succeeded"].as_i64().unwrap_or(0) > 0 {
                first_progress = Some(started.elapsed());
            }
            if op["status"] == "completed" {
                break op;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let total = started.elapsed();
        assert_eq!(end["succeeded"], 10_000);
        println!(
            "{backend:?}: accepted (filter resolved, 10,000 items stored) in {:.0} ms; first progress after {:.0} ms; completed in {:.2} s: {:.0} items/s",
            accepted_after.as_secs_f64() * 1e3,
            first_progress.unwrap_or(total).as_secs_f64() * 1e3,
            total.as_secs_f64(),
            10_000.0 / total.as_secs_f64()
        );
        app.stop().await;
    }
}
