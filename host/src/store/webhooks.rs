//! Webhooks, the fan-out of the event outbox into deliveries, and the
//! delivery claims (API.md, "Traffic").
//!
//! A webhook's `events` column holds its types comma-delimited on both
//! sides (`,account.created,budget.low,`), so the fan-out matches one with
//! `LIKE '%,type,%'` (type names hold no `_` or `%`). Its `secret` column
//! holds the signing secret sealed under the data key, never in clear.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::listing;
use super::{Backend, Conn, db_error};
use crate::Result;
use crate::clock::from_us;
use crate::ops::Page;

/// A webhook as stored.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub tree_id: String,
    pub account_id: String,
    pub url: String,
    pub events: Vec<String>,
    /// The signing secret, sealed (`secrets::DataKey::seal`).
    pub sealed_secret: String,
    /// `visibility` groups its payloads leave out.
    pub hidden: Vec<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn webhook(r: &AnyRow) -> Result<Webhook> {
    Ok(Webhook {
        id: r.try_get("id").map_err(db_error)?,
        tree_id: r.try_get("tree_id").map_err(db_error)?,
        account_id: r.try_get("account_id").map_err(db_error)?,
        url: r.try_get("url").map_err(db_error)?,
        events: split(&r.try_get::<String, _>("events").map_err(db_error)?),
        sealed_secret: r.try_get("secret").map_err(db_error)?,
        hidden: split(&r.try_get::<String, _>("hidden").map_err(db_error)?),
        created_by: r.try_get("created_by").map_err(db_error)?,
        created_at: from_us(r.try_get("created_at").map_err(db_error)?),
    })
}

const WEBHOOK_COLUMNS: &str =
    "id, tree_id, account_id, url, events, secret, hidden, created_by, created_at";

pub async fn insert(c: &mut Conn, w: &Webhook) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhooks (id, tree_id, account_id, url, events, secret, hidden, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&w.id)
    .bind(&w.tree_id)
    .bind(&w.account_id)
    .bind(&w.url)
    .bind(format!(",{},", w.events.join(",")))
    .bind(&w.sealed_secret)
    .bind(w.hidden.join(","))
    .bind(&w.created_by)
    .bind(w.created_at.timestamp_micros())
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Live (not deleted) webhooks of an account.
pub async fn count_live(c: &mut Conn, account_id: &str) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM webhooks WHERE account_id = $1 AND deleted_at IS NULL")
        .bind(account_id)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_error)
}

/// One page of an account's live webhooks, newest first.
pub async fn list(c: &mut Conn, account_id: &str, page: &Page) -> Result<Vec<Webhook>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks
         WHERE account_id = $1 AND deleted_at IS NULL{}",
        listing::newest_first("", 2)
    )))
    .bind(account_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(webhook).collect()
}

/// A live webhook of `account_id`.
pub async fn get(c: &mut Conn, account_id: &str, id: &str) -> Result<Option<Webhook>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
    )))
    .bind(id)
    .bind(account_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.as_ref().map(webhook).transpose()
}

/// Deletes a live webhook: no new deliveries, and pending ones are not
/// attempted again (they end `failed`). False if there was none.
pub async fn delete(c: &mut Conn, account_id: &str, id: &str, now_us: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhooks SET deleted_at = $3 WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(account_id)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = 'the webhook was deleted'
         WHERE webhook_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(true)
}

/// One delivery of one event to one webhook, for the delivery log.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One page of a webhook's deliveries, newest first.
pub async fn deliveries(c: &mut Conn, webhook_id: &str, page: &Page) -> Result<Vec<Delivery>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT d.id, d.event_id, e.type, d.status, d.attempts, d.last_status, d.last_error,
                d.next_attempt_at, d.delivered_at, d.created_at
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.webhook_id = $1{}",
        listing::newest_first("d.", 2)
    )))
    .bind(webhook_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status").map_err(db_error)?;
            let next: i64 = r.try_get("next_attempt_at").map_err(db_error)?;
            Ok(Delivery {
                id: r.try_get("id").map_err(db_error)?,
                event_id: r.try_get("event_id").map_err(db_error)?,
                event_type: r.try_get("type").map_err(db_error)?,
                next_attempt_at: (status == "pending").then(|| from_us(next)),
                status,
                attempts: r.try_get("attempts").map_err(db_error)?,
                last_status: r.try_get("last_status").map_err(db_error)?,
                last_error: r.try_get("last_error").map_err(db_error)?,
                delivered_at: r
                    .try_get::<Option<i64>, _>("delivered_at")
                    .map_err(db_error)?
                    .map(from_us),
                created_at: from_us(r.try_get("created_at").map_err(db_error)?),
            })
        })
        .collect()
}

/// An event the dispatcher has not fanned out yet.
#[derive(Debug, Clone)]
pub struct Undispatched {
    pub id: String,
    pub tree_id: String,
    pub account_id: String,
    pub kind: String,
    pub created_us: i64,
}

/// Up to `limit` events not yet fanned out, oldest first; on PostgreSQL
/// locked (skipping those another host holds) until the caller commits.
pub async fn undispatched(c: &mut Conn, backend: Backend, limit: i64) -> Result<Vec<Undispatched>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, tree_id, account_id, type, created_at FROM events
         WHERE dispatched_at IS NULL ORDER BY id LIMIT $1{lock}"
    )))
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(Undispatched {
                id: r.try_get("id").map_err(db_error)?,
                tree_id: r.try_get("tree_id").map_err(db_error)?,
                account_id: r.try_get("account_id").map_err(db_error)?,
                kind: r.try_get("type").map_err(db_error)?,
                created_us: r.try_get("created_at").map_err(db_error)?,
            })
        })
        .collect()
}

/// Fans one event out: a pending delivery for every live webhook of the
/// event's account and of its tree's parent (a parent's webhook sees its
/// whole tree) that takes its type and existed when the event happened,
/// at most one per (webhook, event)
/// whichever host runs this; then marks the event dispatched. Returns the
/// deliveries made.
pub async fn fan_out(c: &mut Conn, e: &Undispatched, now_us: i64) -> Result<u64> {
    let made = sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, next_attempt_at, created_at)
         SELECT $1 || '_' || w.id, w.id, $2, 'pending', 0, $3, $3
         FROM webhooks w
         WHERE w.account_id IN ($4, $5) AND w.deleted_at IS NULL
           AND w.events LIKE '%,' || $6 || ',%' AND w.created_at <= $7
         ON CONFLICT (webhook_id, event_id) DO NOTHING",
    )
    .bind(crate::secrets::new_id("dlv"))
    .bind(&e.id)
    .bind(now_us)
    .bind(&e.account_id)
    .bind(&e.tree_id)
    .bind(&e.kind)
    .bind(e.created_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?
    .rows_affected();
    sqlx::query("UPDATE events SET dispatched_at = $2 WHERE id = $1 AND dispatched_at IS NULL")
        .bind(&e.id)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(made)
}

/// How many deliveries of `d`'s webhook are claimed now (`$2`: the wall
/// clock).
const IN_FLIGHT: &str = "SELECT COUNT(*) FROM webhook_deliveries x
     WHERE x.webhook_id = d.webhook_id AND x.status = 'pending' AND x.claimed_until >= $2";

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub attempts: i64,
    pub webhook_id: String,
    pub url: String,
    pub sealed_secret: String,
    pub hidden: Vec<String>,
    pub event_id: String,
    pub event_type: String,
    pub event_account_id: String,
    pub event_data: String,
    pub event_created_us: i64,
}

/// Claims up to `limit` pending deliveries due at `now_us` (the clock)
/// whose claim is free or expired (wall clock), for `host` until `until`,
/// leaving any webhook with at most `per_webhook` claimed at once.
/// On PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`, so hosts
/// claiming at once take different ones.
pub async fn claim_due(
    c: &mut Conn,
    backend: Backend,
    host: &str,
    (now_us, wall_us, until): (i64, i64, i64),
    (limit, per_webhook): (i64, i64),
) -> Result<Vec<Due>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let ids: Vec<String> = sqlx::query(AssertSqlSafe(format!(
        "SELECT d.id FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1
           AND (d.claimed_until IS NULL OR d.claimed_until < $2)
           AND ({IN_FLIGHT}) < $4
         ORDER BY d.next_attempt_at, d.id LIMIT $3{lock}"
    )))
    .bind(now_us)
    .bind(wall_us)
    .bind(limit)
    .bind(per_webhook)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<Result<_, _>>()
    .map_err(db_error)?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        // The count again, exact: it sees this transaction's own claims.
        let took = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_by = $2, claimed_until = $3
             WHERE id = $1 AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $4)
               AND (SELECT COUNT(*) FROM webhook_deliveries x
                    WHERE x.webhook_id = (SELECT d.webhook_id FROM webhook_deliveries d WHERE d.id = $1)
                      AND x.status = 'pending' AND x.claimed_until >= $4) < $5",
        )
        .bind(&id)
        .bind(host)
        .bind(until)
        .bind(wall_us)
        .bind(per_webhook)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
        if took.rows_affected() != 1 {
            continue;
        }
        let r = sqlx::query(
            "SELECT d.id, d.attempts, w.id AS webhook_id, w.url, w.secret, w.hidden,
                    e.id AS event_id, e.type, e.account_id, e.data, e.created_at
             FROM webhook_deliveries d
             JOIN webhooks w ON w.id = d.webhook_id
             JOIN events e ON e.id = d.event_id
             WHERE d.id = $1",
        )
        .bind(&id)
        .fetch_one(&mut *c)
        .await
        .map_err(db_error)?;
        claimed.push(Due {
            id: r.try_get("id").map_err(db_error)?,
            attempts: r.try_get("attempts").map_err(db_error)?,
            webhook_id: r.try_get("webhook_id").map_err(db_error)?,
            url: r.try_get("url").map_err(db_error)?,
            sealed_secret: r.try_get("secret").map_err(db_error)?,
            hidden: split(&r.try_get::<String, _>("hidden").map_err(db_error)?),
            event_id: r.try_get("event_id").map_err(db_error)?,
            event_type: r.try_get("type").map_err(db_error)?,
            event_account_id: r.try_get("account_id").map_err(db_error)?,
            event_data: r.try_get("data").map_err(db_error)?,
            event_created_us: r.try_get("created_at").map_err(db_error)?,
        });
    }
    Ok(claimed)
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `pending` (retried at `next_attempt_us`), `delivered` or `failed`.
    pub status: &'static str,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub next_attempt_us: i64,
    pub delivered_us: Option<i64>,
}

/// Records an attempt `host` made under its claim; false if the claim was
/// no longer its own (another host took the delivery over).
pub async fn record(c: &mut Conn, id: &str, host: &str, a: &Attempt) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $3, last_status = $4,
             last_error = $5, next_attempt_at = $6, delivered_at = $7,
             claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(host)
    .bind(a.status)
    .bind(a.http_status)
    .bind(&a.error)
    .bind(a.next_attempt_us)
    .bind(a.delivered_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Whether any event waits to be fanned out (a read, so an idle host
/// takes no write lock).
pub async fn any_undispatched(c: &mut Conn) -> Result<bool> {
    let row = sqlx::query("SELECT id FROM events WHERE dispatched_at IS NULL LIMIT 1")
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(row.is_some())
}

/// Whether any delivery is due and unclaimed (a read, as above).
pub async fn any_due(c: &mut Conn, now_us: i64, wall_us: i64) -> Result<bool> {
    let row = sqlx::query(
        "SELECT id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= $1
           AND (claimed_until IS NULL OR claimed_until < $2) LIMIT 1",
    )
    .bind(now_us)
    .bind(wall_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(row.is_some())
}

/// Deletes up to `limit` finished deliveries (delivered or failed) made
/// before `before_us`, then up to `limit` dispatched events from before it
/// that no delivery refers to any more. Returns (deliveries, events).
pub async fn purge(c: &mut Conn, before_us: i64, limit: i64) -> Result<(u64, u64)> {
    let deliveries = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE id IN (
             SELECT id FROM webhook_deliveries
             WHERE status <> 'pending' AND created_at < $1 LIMIT $2)",
    )
    .bind(before_us)
    .bind(limit)
    .execute(&mut *c)
    .await
    .map_err(db_error)?
    .rows_affected();
    let events = sqlx::query(
        "DELETE FROM events WHERE id IN (
             SELECT e.id FROM events e
             WHERE e.dispatched_at IS NOT NULL AND e.created_at < $1
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
             LIMIT $2)",
    )
    .bind(before_us)
    .bind(limit)
    .execute(&mut *c)
    .await
    .map_err(db_error)?
    .rows_affected();
    Ok((deliveries, events))
}
