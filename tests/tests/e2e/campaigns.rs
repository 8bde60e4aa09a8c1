//! Campaigns through HTTP (API.md, "Traffic"; seed 000): scheduled sends
//! at the (test) clock's time, each recipient charged exactly once; the
//! cascade queues, submits and deletes them; cancel; a campaign that runs
//! out of money stops and says so; validation and reach; exactly once across
//! a SIGKILL and across two hosts on one PostgreSQL.

use std::time::Duration;

use canopy_e2e::campaigns::{
    assert_each_recipient_once, campaign, completed_events, follow, numbers, read,
    read_as_operator, schedule,
};
use canopy_e2e::process::Server;
use canopy_e2e::sims::{Remote, count, tree};
use canopy_e2e::{Backend, TestApp, both_backends, fresh_database};
use serde_json::{Value, json};

const T0: &str = "2030-03-01T09:00:00Z";
const T1: &str = "2030-03-01T10:00:00Z";
const AFTER_T1: &str = "2030-03-01T10:00:01Z";
const WITHIN: Duration = Duration::from_secs(60);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A parent whose SMS costs `price`, topped up with `balance`.
async fn funded(app: &TestApp, domain: &str, price: &str, balance: &str) -> canopy_e2e::Parent {
    let parent = app
        .parent_with(domain, "enterprise", json!({"prices": {"sms": price}}))
        .await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": balance}),
    )
    .await
    .expect(201);
    parent
}

/// Follows a campaign through `key` until it ends.
async fn until_ended(api: &Remote, account: &str, key: &str, cid: &str) -> Value {
    let readings = follow(|| read(api, account, key, cid), WITHIN).await;
    readings.last().unwrap().clone()
}

both_backends! {
    async fn a_campaign_sends_when_the_clock_reaches_its_time_each_recipient_charged_once(app) {
        app.set_clock(T0).await;
        let api = Remote::new(&app.base);
        let parent = funded(&app, "spring.example", "0.01", "100").await;
        let to = numbers(100, 250);
        let created = schedule(&api, &parent.id, &parent.key, campaign("Spring", &to, T1)).await;
        let cid = id(&created);
        assert_eq!(created["total"], 250);
        assert_eq!(created["scheduled_at"], "2030-03-01T10:00:00Z");
        // Before its time nothing is sent, however long the workers poll.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let waiting = read(&api, &parent.id, &parent.key, &cid).await;
        assert_eq!((waiting["status"].as_str(), waiting["sent"].as_i64()), (Some("scheduled"), Some(0)), "{waiting}");
        assert_eq!(count(&app.database_url, "SELECT COUNT(*) FROM messages WHERE campaign_id = $1", &cid).await, 0);

        app.set_clock(AFTER_T1).await;
        let end = until_ended(&api, &parent.id, &parent.key, &cid).await;
        assert_eq!(end["status"], "completed", "{end}");
        assert_eq!((end["sent"].as_i64(), end["failed"].as_i64()), (Some(250), Some(0)));
        assert!(end["stop_reason"].is_null() && end["finished_at"].is_string(), "{end}");
        assert_each_recipient_once(&app.database_url, &cid, 250, true).await;
        // 250 x 0.01 left the balance, and the ledger still adds up.
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "97.50");
        app.assert_ledger_balanced().await;
        assert_eq!(completed_events(&app.database_url, &cid).await, 1);
        // The messages are the account's, like any send.
        let messages = app.get(&format!("/v1/accounts/{}/messages?limit=1000", parent.id), &parent.key).await.expect(200);
        assert_eq!(messages["data"].as_array().unwrap().len(), 250);
        let listed = app.get(&format!("/v1/accounts/{}/campaigns", parent.id), &parent.key).await.expect(200);
        assert_eq!(listed["data"][0]["id"], cid.as_str());
        assert_eq!(listed["data"][0]["sent"], 250);
    }

    async fn parent_suspension_queues_reactivation_submits_deletion_deletes(app) {
        app.set_clock(T0).await;
        let api = Remote::new(&app.base);
        let op = app.operator_token.clone();
        let parent = funded(&app, "seed000.example", "0.01", "100").await;
        let sub = app.try_sub(&parent, "Team", "team@seed000.example", json!({"invite": false})).await.expect(201);
        let sub_id = sub["id"].as_str().unwrap().to_string();
        app.post(&format!("/v1/accounts/{sub_id}/budget"), &parent.key, json!({"amount": "50"})).await.expect(201);
        let in_sub = schedule(&api, &sub_id, &parent.key, campaign("Sub", &numbers(0, 120), T1)).await;
        let in_parent = schedule(&api, &parent.id, &parent.key, campaign("Own", &numbers(500, 30), T1)).await;
        let (sub_cid, own_cid) = (id(&in_sub), id(&in_parent));

        app.op_post(&format!("/v1/operator/accounts/{}/suspend", parent.id), json!({})).await.expect(200);
        // The operator reads the tree's campaigns while it is suspended.
        for (account, cid) in [(&sub_id, &sub_cid), (&parent.id, &own_cid)] {
            let k = read_as_operator(&api, &op, account, cid).await;
            assert_eq!(k["status"], "queued", "{k}");
        }
        let tree = app.get(&format!("/v1/operator/accounts/{}/campaigns", parent.id), &op).await.expect(200);
        assert_eq!(tree["data"].as_array().unwrap().len(), 2, "a parent's list covers its tree");
        app.get(&format!("/v1/operator/accounts/{}/operations", parent.id), &op).await.expect(200);
        // Past their time, queued campaigns still send nothing.
        app.set_clock(AFTER_T1).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        for (account, cid) in [(&sub_id, &sub_cid), (&parent.id, &own_cid)] {
            let k = read_as_operator(&api, &op, account, cid).await;
            assert_eq!((k["status"].as_str(), k["sent"].as_i64()), (Some("queued"), Some(0)), "{k}");
        }
        assert_eq!(count(&app.database_url, "SELECT COUNT(*) FROM messages WHERE campaign_id IS NOT NULL AND $1 = ''", "").await, 0);

        // Reactivation submits them; their time has passed, so they go at once.
        app.op_post(&format!("/v1/operator/accounts/{}/unsuspend", parent.id), json!({})).await.expect(200);
        for (account, cid, n) in [(&sub_id, &sub_cid, 120), (&parent.id, &own_cid, 30)] {
            let end = until_ended(&api, account, &parent.key, cid).await;
            assert_eq!((end["status"].as_str(), end["sent"].as_i64()), (Some("completed"), Some(n)), "{end}");
            assert_each_recipient_once(&app.database_url, cid, n, true).await;
        }

        // A sub-account suspended on its own: its campaign is queued, then
        // submitted when it comes back.
        let later = schedule(&api, &sub_id, &parent.key, campaign("Later", &numbers(1000, 10), "2030-03-01T12:00:00Z")).await;
        let later_id = id(&later);
        app.post(&format!("/v1/accounts/{sub_id}/suspend"), &parent.key, json!({})).await.expect(200);
        assert_eq!(read(&api, &sub_id, &parent.key, &later_id).await["status"], "queued");
        app.post(&format!("/v1/accounts/{sub_id}/unsuspend"), &parent.key, json!({})).await.expect(200);
        assert_eq!(read(&api, &sub_id, &parent.key, &later_id).await["status"], "scheduled");

        // Deleting the sub-account deletes its campaigns that had not ended;
        // the completed one stays completed.
        app.delete(&format!("/v1/accounts/{sub_id}"), &parent.key).await.expect(200);
        let gone = read_as_operator(&api, &op, &sub_id, &later_id).await;
        assert_eq!(gone["status"], "deleted", "{gone}");
        assert!(gone["finished_at"].is_string());
        assert_eq!(read_as_operator(&api, &op, &sub_id, &sub_cid).await["status"], "completed");
        app.set_clock("2030-03-01T12:00:01Z").await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(count(&app.database_url, "SELECT COUNT(*) FROM messages WHERE campaign_id = $1", &later_id).await, 0);
        // Deleting the parent deletes its own.
        let last = schedule(&api, &parent.id, &parent.key, campaign("Last", &numbers(2000, 5), "2030-03-02T09:00:00Z")).await;
        app.request(reqwest::Method::DELETE, &format!("/v1/operator/accounts/{}", parent.id), Some(&op), None).await.expect(200);
        assert_eq!(read_as_operator(&api, &op, &parent.id, &id(&last)).await["status"], "deleted");
        app.assert_ledger_balanced().await;
    }

    async fn cancel_stops_what_is_not_sent_and_keeps_what_was(app) {
        app.set_clock(T0).await;
        let api = Remote::new(&app.base);
        let parent = funded(&app, "cancel.example", "0.01", "100").await;
        let created = schedule(&api, &parent.id, &parent.key, campaign("Later", &numbers(0, 50), T1)).await;
        let cid = id(&created);
        let path = format!("/v1/accounts/{}/campaigns/{cid}/cancel", parent.id);
        let canceled = app.post(&path, &parent.key, json!({})).await.expect(200);
        assert_eq!(canceled["status"], "canceled");
        // Again: still canceled (a retried request), not an error.
        assert_eq!(app.post(&path, &parent.key, json!({})).await.expect(200)["status"], "canceled");
        app.set_clock(AFTER_T1).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let k = read(&api, &parent.id, &parent.key, &cid).await;
        assert_eq!((k["status"].as_str(), k["sent"].as_i64()), (Some("canceled"), Some(0)));
        assert_each_recipient_once(&app.database_url, &cid, 0, true).await;

        // Canceled while sending: what went out stays, each once.
        let big = schedule(&api, &parent.id, &parent.key, campaign("Big", &numbers(10_000, 3_000), AFTER_T1)).await;
        let big_id = id(&big);
        let started = std::time::Instant::now();
        while read(&api, &parent.id, &parent.key, &big_id).await["sent"].as_i64() == Some(0) {
            assert!(started.elapsed() < WITHIN, "never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let path = format!("/v1/accounts/{}/campaigns/{big_id}/cancel", parent.id);
        let reply = app.post(&path, &parent.key, json!({})).await;
        let end = until_ended(&api, &parent.id, &parent.key, &big_id).await;
        let sent = end["sent"].as_i64().unwrap();
        if reply.status == 200 {
            assert_eq!(end["status"], "canceled", "{end}");
        } else {
            // It finished before the cancel arrived.
            reply.expect_problem(409, "conflict");
            assert_eq!((end["status"].as_str(), sent), (Some("completed"), 3_000));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(read(&api, &parent.id, &parent.key, &big_id).await["sent"].as_i64(), Some(sent), "nothing after the cancel");
        assert_each_recipient_once(&app.database_url, &big_id, sent, true).await;
        app.assert_ledger_balanced().await;
    }

    async fn insufficient_funds_stops_the_campaign_with_its_reason_and_what_was_sent(app) {
        app.set_clock(T0).await;
        let api = Remote::new(&app.base);
        // 5.00 pays five messages at 1.00; the campaign has eight recipients.
        let parent = funded(&app, "broke.example", "1.00", "5").await;
        let created = schedule(&api, &parent.id, &parent.key, campaign("Too big", &numbers(0, 8), T1)).await;
        let cid = id(&created);
        app.set_clock(AFTER_T1).await;
        let end = until_ended(&api, &parent.id, &parent.key, &cid).await;
        assert_eq!(end["status"], "stopped", "{end}");
        assert_eq!(end["stop_reason"], "insufficient_funds", "{end}");
        assert_eq!((end["sent"].as_i64(), end["total"].as_i64()), (Some(5), Some(8)));
        assert_each_recipient_once(&app.database_url, &cid, 5, true).await;
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "0.00");
        app.assert_ledger_balanced().await;
        assert_eq!(completed_events(&app.database_url, &cid).await, 1);
        assert_eq!(
            count(&app.database_url, "SELECT COUNT(*) FROM events WHERE type = 'campaign.completed' AND data LIKE '%insufficient_funds%' AND data LIKE '%' || $1 || '%'", &cid).await,
            1
        );
        // A stopped campaign cannot be canceled.
        app.post(&format!("/v1/accounts/{}/campaigns/{cid}/cancel", parent.id), &parent.key, json!({}))
            .await
            .expect_problem(409, "conflict");
    }

    async fn requests_are_checked_before_anything_is_stored(app) {
        app.set_clock(T0).await;
        let parent = funded(&app, "checks.example", "0.01", "10").await;
        let path = format!("/v1/accounts/{}/campaigns", parent.id);
        let post = |body: Value| app.post(&path, &parent.key, body);
        let fields = |p: &Value| -> Vec<String> {
            p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect()
        };
        // Every bad recipient is named, duplicates too.
        let bad = post(campaign("Bad", &["+15550000001".into(), "12345".into(), "+15550000001".into(), "".into()], T1)).await.expect_problem(422, "validation_failed");
        assert_eq!(fields(&bad), ["recipients[1]", "recipients[2]", "recipients[3]"], "{bad}");
        assert!(bad["errors"][1]["reason"].as_str().unwrap().contains("recipients[0]"), "{bad}");
        // At most the first 100 are named.
        let many: Vec<String> = (0..150).map(|i| format!("x{i}")).collect();
        let bad = post(campaign("Bad", &many, T1)).await.expect_problem(422, "validation_failed");
        assert_eq!(fields(&bad).len(), 100);
        post(campaign("Empty", &[], T1)).await.expect_problem(422, "validation_failed");
        let too_many = numbers(0, 10_001);
        let bad = post(campaign("Huge", &too_many, T1)).await.expect_problem(422, "validation_failed");
        assert_eq!(fields(&bad), ["recipients"]);
        let ok = numbers(0, 2);
        for (at, why) in [("tomorrow", "RFC 3339"), ("2030-03-01", "RFC 3339"), ("2030-03-01T08:00:00Z", "past"), ("2031-06-01T00:00:00Z", "ahead")] {
            let bad = post(campaign("When", &ok, at)).await.expect_problem(422, "validation_failed");
            assert_eq!(fields(&bad), ["scheduled_at"], "{at}");
            assert!(bad["errors"][0]["reason"].as_str().unwrap().contains(why), "{bad}");
        }
        let mut long = campaign("Long", &ok, T1);
        long["body"] = json!("x".repeat(1601));
        assert_eq!(fields(&post(long).await.expect_problem(422, "validation_failed")), ["body"]);
        let mut unnamed = campaign("", &ok, T1);
        unnamed["name"] = json!("  ");
        assert_eq!(fields(&post(unnamed).await.expect_problem(422, "validation_failed")), ["name"]);
        // A line the account does not hold.
        let mut from = campaign("From", &ok, T1);
        from["from"] = json!("+15559990000");
        assert_eq!(fields(&post(from).await.expect_problem(422, "validation_failed")), ["from"]);
        // A channel the account lacks, or has without a price.
        let mut fax = campaign("Fax", &ok, T1);
        fax["channel"] = json!("fax");
        post(fax).await.expect_problem(403, "forbidden");
        let mut wa = campaign("WA", &["alice".into()], T1);
        wa["channel"] = json!("whatsapp");
        assert_eq!(fields(&post(wa).await.expect_problem(422, "validation_failed")), ["channel"]);
        let mut extra = campaign("Extra", &ok, T1);
        extra["priority"] = json!("high");
        post(extra).await.expect_problem(422, "validation_failed");
        // Nothing was stored.
        let listed = app.get(&path, &parent.key).await.expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
        // A time a little in the past means now.
        let api = Remote::new(&app.base);
        let now = schedule(&api, &parent.id, &parent.key, campaign("Now", &ok, "2030-03-01T08:58:00Z")).await;
        let end = until_ended(&api, &parent.id, &parent.key, &id(&now)).await;
        assert_eq!((end["status"].as_str(), end["sent"].as_i64()), (Some("completed"), Some(2)));
    }

    async fn an_idempotency_key_replays_the_same_campaign(app) {
        app.set_clock(T0).await;
        let parent = funded(&app, "replay.example", "0.01", "10").await;
        let path = format!("/v1/accounts/{}/campaigns", parent.id);
        let body = campaign("Once", &numbers(0, 20), T1);
        let headers = [("Idempotency-Key", "spring-1")];
        let first = app.request_with(reqwest::Method::POST, &path, Some(&parent.key), Some(body.clone()), &headers).await.expect(201);
        let again = app.request_with(reqwest::Method::POST, &path, Some(&parent.key), Some(body), &headers).await.expect(201);
        assert_eq!(first["id"], again["id"]);
        let listed = app.get(&path, &parent.key).await.expect(200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(count(&app.database_url, "SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = $1", first["id"].as_str().unwrap()).await, 20);
    }

    async fn campaigns_stay_within_reach(app) {
        app.set_clock(T0).await;
        let api = Remote::new(&app.base);
        let parent = funded(&app, "reach.example", "0.01", "10").await;
        let other = funded(&app, "elsewhere.example", "0.01", "10").await;
        let sub = app.sub(&parent, "Team", "team@reach.example").await;
        let sub_key = app.accept(sub.invitation.as_deref().unwrap(), "Team Admin", "correct horse battery").await;
        let own = schedule(&api, &parent.id, &parent.key, campaign("Own", &numbers(0, 3), T1)).await;
        let theirs = schedule(&api, &sub.id, &sub_key, campaign("Theirs", &numbers(0, 3), T1)).await;
        let base = format!("/v1/accounts/{}/campaigns", parent.id);
        let one = format!("{base}/{}", id(&own));
        // Another tree's key: nothing exists.
        app.get(&base, &other.key).await.expect_problem(404, "not_found");
        app.get(&one, &other.key).await.expect_problem(404, "not_found");
        app.post(&format!("{one}/cancel"), &other.key, json!({})).await.expect_problem(404, "not_found");
        app.post(&base, &other.key, campaign("X", &numbers(0, 1), T1)).await.expect_problem(404, "not_found");
        // A campaign id of another account, through this account's path.
        app.get(&format!("/v1/accounts/{}/campaigns/{}", other.id, id(&own)), &other.key).await.expect_problem(404, "not_found");
        // The sub-account's key cannot read its parent's campaigns.
        app.get(&base, &sub_key).await.expect_problem(404, "not_found");
        app.get(&one, &sub_key).await.expect_problem(404, "not_found");
        // Through its own path, a parent's campaign id is not found.
        app.get(&format!("/v1/accounts/{}/campaigns/{}", sub.id, id(&own)), &sub_key).await.expect_problem(404, "not_found");
        // The parent's admin reads and cancels the sub-account's.
        let listed = app.get(&format!("/v1/accounts/{}/campaigns", sub.id), &parent.key).await.expect(200);
        assert_eq!(listed["data"][0]["id"], theirs["id"]);
        app.post(&format!("/v1/accounts/{}/campaigns/{}/cancel", sub.id, id(&theirs)), &parent.key, json!({})).await.expect(200);
        // A basic user neither schedules nor lists campaigns.
        let basic = app.member(&parent.key, &parent.id, "basic@reach.example", "basic").await;
        app.post(&base, &basic, campaign("B", &numbers(0, 1), T1)).await.expect_problem(403, "policy_denied");
        app.get(&base, &basic).await.expect_problem(403, "policy_denied");
        // The operator token is for operator routes only.
        app.get(&base, &app.operator_token.clone()).await.expect_problem(403, "forbidden");
    }
}

const TOKEN: &str = "cop_campaigns_operator_token";

/// A funded tree on a server run as a process: the parent tops up 1,000.
async fn funded_tree(api: &Remote, domain: &str) -> canopy_e2e::sims::Tree {
    let t = tree(api, TOKEN, domain).await;
    let (status, body) = api
        .post(
            &format!("/v1/operator/accounts/{}/topups", t.parent),
            TOKEN,
            json!({"amount": "1000"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Its sub-account pays from a budget of its own.
    let (status, body) = api
        .post(
            &format!("/v1/accounts/{}/budget", t.sub),
            &t.parent_key,
            json!({"amount": "500"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    t
}

/// A server is killed between two chunks of a 1,000-recipient campaign;
/// after a restart it completes, each recipient charged exactly once.
async fn killed_mid_campaign(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let lease = ["--test-clock", "--operation-lease-ms", "1000"];
    let mut crashing = Server::start_with(
        &url,
        Some(TOKEN),
        &lease,
        &[("CANOPY_TEST_CRASH_AT", "between-campaign-chunks")],
    );
    let api = Remote::new(&crashing.base);
    let t = funded_tree(&api, "crash.example").await;
    let at = chrono::Utc::now().to_rfc3339();
    let (status, created) = api
        .post(
            &format!("/v1/accounts/{}/campaigns", t.sub),
            &t.sub_key,
            campaign("Crash", &numbers(0, 1_000), &at),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let cid = id(&created);
    let status = crashing.child.wait().unwrap();
    assert!(!status.success(), "killed between chunks");
    let sent = count(&url, "SELECT sent FROM campaigns WHERE id = $1", &cid).await;
    assert!(
        sent > 0 && sent < 1_000,
        "killed mid-campaign, after {sent}"
    );

    let server = Server::start_with(&url, Some(TOKEN), &lease, &[]);
    let api = Remote::new(&server.base);
    let end = until_ended(&api, &t.sub, &t.sub_key, &cid).await;
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["sent"], 1_000);
    assert_each_recipient_once(&url, &cid, 1_000, true).await;
    let (status, check) = api.get("/v1/operator/ledger/check", TOKEN).await;
    assert_eq!((status, &check["balanced"]), (200, &json!(true)), "{check}");
    assert_eq!(completed_events(&url, &cid).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_campaign_sqlite() {
    killed_mid_campaign(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_campaign_postgres() {
    killed_mid_campaign(Backend::Postgres).await;
}

/// Two hosts on one PostgreSQL database, with leases so short that they
/// take campaigns over from each other, never send a recipient twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_never_send_a_recipient_twice() {
    let (url, _dir) = fresh_database(Backend::Postgres).await;
    let lease = ["--operation-lease-ms", "50"];
    let a = Server::start_with(&url, Some(TOKEN), &lease, &[]);
    let b = Server::start_with(&url, Some(TOKEN), &lease, &[]);
    let (api_a, api_b) = (Remote::new(&a.base), Remote::new(&b.base));
    let t = funded_tree(&api_a, "hosts.example").await;
    let at = chrono::Utc::now().to_rfc3339();
    let mut ids = Vec::new();
    for (i, api) in [&api_a, &api_b, &api_a, &api_b].into_iter().enumerate() {
        let (account, key) = if i % 2 == 0 {
            (&t.sub, &t.sub_key)
        } else {
            (&t.parent, &t.parent_key)
        };
        let (status, created) = api
            .post(
                &format!("/v1/accounts/{account}/campaigns"),
                key,
                campaign("Both", &numbers(i as u64 * 10_000, 800), &at),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        ids.push((account.clone(), key.clone(), id(&created)));
    }
    for (n, (account, key, cid)) in ids.iter().enumerate() {
        let api = if n % 2 == 0 { &api_b } else { &api_a };
        let end = until_ended(api, account, key, cid).await;
        assert_eq!(
            (end["status"].as_str(), end["sent"].as_i64()),
            (Some("completed"), Some(800)),
            "{end}"
        );
        assert_each_recipient_once(&url, cid, 800, true).await;
    }
    let (status, check) = api_a.get("/v1/operator/ledger/check", TOKEN).await;
    assert_eq!((status, &check["balanced"]), (200, &json!(true)), "{check}");
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM messages WHERE campaign_id IS NOT NULL AND $1 = ''",
            ""
        )
        .await,
        3_200
    );
}
