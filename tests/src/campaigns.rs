//! Test helpers for campaigns (API.md, "Traffic"): recipient lists,
//! scheduling, following a campaign to its end, and the exactly-once check
//! over the database.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sims::{Remote, count};

/// `n` distinct E.164 numbers from `first` on (`+1555` and seven digits).
pub fn numbers(first: u64, n: usize) -> Vec<String> {
    (0..n as u64)
        .map(|i| format!("+1555{:07}", first + i))
        .collect()
}

/// A campaign's creation body: SMS from no line, `recipients` at `at`.
pub fn campaign(name: &str, recipients: &[String], at: &str) -> Value {
    json!({
        "name": name, "channel": "sms", "recipients": recipients,
        "body": "Spring sale: 20% off today", "scheduled_at": at
    })
}

/// Schedules a campaign in `account`; panics unless 201.
pub async fn schedule(api: &Remote, account: &str, key: &str, body: Value) -> Value {
    let (status, created) = api
        .post(&format!("/v1/accounts/{account}/campaigns"), key, body)
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "scheduled", "{created}");
    assert_eq!(created["sent"], 0, "{created}");
    created
}

/// One campaign as `key` reads it.
pub async fn read(api: &Remote, account: &str, key: &str, id: &str) -> Value {
    let (status, body) = api
        .get(&format!("/v1/accounts/{account}/campaigns/{id}"), key)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// One campaign as the operator reads it (also while its tree is suspended).
pub async fn read_as_operator(api: &Remote, operator: &str, account: &str, id: &str) -> Value {
    let (status, body) = api
        .get(
            &format!("/v1/operator/accounts/{account}/campaigns?limit=1000"),
            operator,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("campaign {id} not in the operator's list: {body}"))
}

/// Polls a campaign (through `read`) until it has ended; returns every
/// reading, the last one ended. Progress never goes back.
pub async fn follow<F, Fut>(mut read: F, within: Duration) -> Vec<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let started = Instant::now();
    let mut readings: Vec<Value> = Vec::new();
    loop {
        let now = read().await;
        if let Some(last) = readings.last() {
            assert!(
                now["sent"].as_i64() >= last["sent"].as_i64(),
                "progress went back: {last} then {now}"
            );
        }
        assert!(now["sent"].as_i64().unwrap() <= now["total"].as_i64().unwrap());
        let ended = matches!(
            now["status"].as_str(),
            Some("completed" | "stopped" | "canceled" | "deleted")
        );
        readings.push(now);
        if ended {
            return readings;
        }
        assert!(
            started.elapsed() < within,
            "campaign not ended within {within:?}: {}",
            readings.last().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each of the campaign's `sent` recipients got exactly one message and one
/// charge (when `charged`), and nothing else was sent for it.
pub async fn assert_each_recipient_once(url: &str, campaign: &str, sent: i64, charged: bool) {
    let n = |sql: &'static str| count(url, sql, campaign);
    assert_eq!(
        n("SELECT COUNT(*) FROM messages WHERE campaign_id = $1").await,
        sent,
        "one message per recipient sent"
    );
    assert_eq!(
        n("SELECT COUNT(DISTINCT remote) FROM messages WHERE campaign_id = $1").await,
        sent,
        "no recipient twice"
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = $1 AND outcome = 'sent'")
            .await,
        sent
    );
    assert_eq!(
        n(
            "SELECT COUNT(*) FROM campaign_recipients r JOIN messages m ON m.id = r.message_id
           WHERE r.campaign_id = $1 AND m.campaign_id = $1 AND m.remote = r.recipient"
        )
        .await,
        sent,
        "each recipient's outcome names its own message"
    );
    assert_eq!(
        n("SELECT sent FROM campaigns WHERE id = $1").await,
        sent,
        "the counter agrees"
    );
    let charges = n("SELECT COUNT(*) FROM transfers WHERE kind = 'usage'
           AND reference IN (SELECT id FROM messages WHERE campaign_id = $1)")
    .await;
    assert_eq!(
        charges,
        if charged { sent } else { 0 },
        "one charge per message"
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM messages WHERE campaign_id = $1 AND transfer_id IS NULL").await,
        if charged { 0 } else { sent },
        "each message names its charge"
    );
}

/// How many `campaign.completed` events name the campaign.
pub async fn completed_events(url: &str, campaign: &str) -> i64 {
    count(
        url,
        "SELECT COUNT(*) FROM events WHERE type = 'campaign.completed' AND data LIKE '%' || $1 || '%'",
        campaign,
    )
    .await
}
