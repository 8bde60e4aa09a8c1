//! Campaigns (`campaigns`, `campaign_recipients`): scheduled sends (API.md,
//! "Traffic").
//!
//! A campaign and all its recipients are written in the transaction that
//! creates it. A host claims a due campaign with a lease (`claimed_by`,
//! `claimed_until`, wall-clock microseconds; PostgreSQL reads the candidate
//! `FOR UPDATE SKIP LOCKED`); every chunk's transaction renews the lease
//! first with a conditional update (`status = 'sending'`), which also holds
//! the campaign's row on PostgreSQL until the chunk commits. Each
//! recipient's charge, message and outcome (`WHERE outcome IS NULL`) are in
//! that transaction, with the `sent` counter.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

pub use super::operations::Among;
use super::operations::Leased;
use super::{Backend, Conn, db_error};
use crate::clock::from_us;
use crate::policy::output::Campaigns;
use crate::{Error, Result};

/// Where a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    /// Waiting for its time.
    Scheduled,
    /// Held by a cascade (its account or parent suspended): never sent
    /// until submitted again.
    Queued,
    /// A host is sending it.
    Sending,
    Completed,
    /// Ended before its last recipient: `stop_reason` says why.
    Stopped,
    Canceled,
    Deleted,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Queued => "queued",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Stopped => "stopped",
            CampaignStatus::Canceled => "canceled",
            CampaignStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignStatus> {
        [
            CampaignStatus::Scheduled,
            CampaignStatus::Queued,
            CampaignStatus::Sending,
            CampaignStatus::Completed,
            CampaignStatus::Stopped,
            CampaignStatus::Canceled,
            CampaignStatus::Deleted,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// Whether nothing more will ever be sent.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CampaignStatus::Completed
                | CampaignStatus::Stopped
                | CampaignStatus::Canceled
                | CampaignStatus::Deleted
        )
    }
}

/// The statuses a campaign that may still send is in.
const LIVE: &str = "('scheduled', 'queued', 'sending')";

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    pub tree_id: String,
    pub account_id: String,
    pub created_by: String,
    pub name: String,
    pub channel: String,
    /// The account's line it is sent from; empty when none was named.
    pub line: String,
    pub body: String,
    pub scheduled_at: chrono::DateTime<chrono::Utc>,
    pub status: CampaignStatus,
    pub stop_reason: Option<String>,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

const SELECT: &str = "SELECT id, tree_id, account_id, created_by, name, channel, line, body,
    scheduled_at, status, stop_reason, total, sent, failed, created_at, started_at, finished_at
    FROM campaigns";

fn from_row(r: &AnyRow) -> Result<Campaign> {
    let time = |col: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(r.try_get::<Option<i64>, _>(col)
            .map_err(db_error)?
            .map(from_us))
    };
    Ok(Campaign {
        id: r.try_get("id").map_err(db_error)?,
        tree_id: r.try_get("tree_id").map_err(db_error)?,
        account_id: r.try_get("account_id").map_err(db_error)?,
        created_by: r.try_get("created_by").map_err(db_error)?,
        name: r.try_get("name").map_err(db_error)?,
        channel: r.try_get("channel").map_err(db_error)?,
        line: r.try_get("line").map_err(db_error)?,
        body: r.try_get("body").map_err(db_error)?,
        scheduled_at: from_us(r.try_get("scheduled_at").map_err(db_error)?),
        status: CampaignStatus::parse(&r.try_get::<String, _>("status").map_err(db_error)?)
            .ok_or_else(|| Error::internal("stored campaign has a bad status"))?,
        stop_reason: r.try_get("stop_reason").map_err(db_error)?,
        total: r.try_get("total").map_err(db_error)?,
        sent: r.try_get("sent").map_err(db_error)?,
        failed: r.try_get("failed").map_err(db_error)?,
        created_at: from_us(r.try_get("created_at").map_err(db_error)?),
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
    })
}

/// Writes a new campaign (`scheduled`) and its recipients, numbered in the
/// list's order.
pub async fn insert(c: &mut Conn, k: &Campaign, recipients: &[String]) -> Result<()> {
    sqlx::query(
        "INSERT INTO campaigns (id, tree_id, account_id, created_by, name, channel, line, body,
            scheduled_at, status, total, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'scheduled', $10, $11)",
    )
    .bind(&k.id)
    .bind(&k.tree_id)
    .bind(&k.account_id)
    .bind(&k.created_by)
    .bind(&k.name)
    .bind(&k.channel)
    .bind(&k.line)
    .bind(&k.body)
    .bind(k.scheduled_at.timestamp_micros())
    .bind(k.total)
    .bind(k.created_at.timestamp_micros())
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    for (n, chunk) in recipients.chunks(RECIPIENTS_PER_INSERT).enumerate() {
        let mut sql =
            String::from("INSERT INTO campaign_recipients (campaign_id, seq, recipient) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&k.id);
        for (i, r) in chunk.iter().enumerate() {
            q = q
                .bind((n * RECIPIENTS_PER_INSERT + i + 1) as i64)
                .bind(r.as_str());
        }
        q.execute(&mut *c).await.map_err(db_error)?;
    }
    Ok(())
}

/// Rows per multi-row insert of recipients (2 parameters each, plus one).
const RECIPIENTS_PER_INSERT: usize = 500;

/// One campaign by id.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<Campaign>> {
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(from_row).transpose()
}

/// One page of campaigns, newest first, before the cursor `before`.
pub async fn list(
    c: &mut Conn,
    among: Among<'_>,
    page: &crate::ops::Page,
) -> Result<Vec<Campaign>> {
    let rows = super::operations::newest_first(c, SELECT, among, page).await?;
    rows.iter().map(from_row).collect()
}

/// Cancels a campaign that may still send; false if it had ended. What was
/// sent stays sent; a chunk in flight commits first (it holds the row).
pub async fn cancel(c: &mut Conn, id: &str, now_us: i64) -> Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE campaigns SET status = 'canceled', finished_at = $2, claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND status IN {LIVE}"
    )))
    .bind(id)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// What a cascade's `campaigns` plan sets, and the statuses of the
/// campaigns it changes; `None` for `keep`.
fn plan_change(plan: Campaigns) -> Option<(&'static str, &'static str)> {
    match plan {
        Campaigns::Keep => None,
        Campaigns::Queue => Some((
            "status = 'queued', claimed_by = NULL, claimed_until = NULL",
            "('scheduled', 'sending')",
        )),
        Campaigns::Submit => Some(("status = 'scheduled'", "('queued')")),
        Campaigns::Delete => Some((
            "status = 'deleted', finished_at = $1, claimed_by = NULL, claimed_until = NULL",
            LIVE,
        )),
    }
}

/// How many campaigns of `account_id` a cascade's `campaigns` plan would
/// change (what [`apply_plan`] would count), read without changing any.
pub async fn count_for_plan(c: &mut Conn, account_id: &str, plan: Campaigns) -> Result<i64> {
    let Some((_, from)) = plan_change(plan) else {
        return Ok(0);
    };
    sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM campaigns WHERE status IN {from} AND account_id = $1"
    )))
    .bind(account_id)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<i64, _>("n"))
    .map_err(db_error)
}

/// A cascade plan's `campaigns` applied to the campaigns of `accounts`, in
/// the plan's transaction, set-based: `queue` holds the ones waiting or
/// sending (a chunk in flight finishes first: it holds the row), `submit`
/// lets the queued ones go again (at once if their time has passed),
/// `delete` ends every one not ended. Returns how many changed.
pub async fn apply_plan(
    c: &mut Conn,
    accounts: &[&str],
    plan: Campaigns,
    now_us: i64,
) -> Result<u64> {
    let Some((set, from)) = plan_change(plan) else {
        return Ok(0);
    };
    let uses_now = plan == Campaigns::Delete;
    let first = if uses_now { 2 } else { 1 };
    let mut changed = 0;
    // A few hundred ids per statement: bounded parameters on both backends.
    for ids in accounts.chunks(500) {
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + first)).collect();
        let sql = format!(
            "UPDATE campaigns SET {set} WHERE status IN {from} AND account_id IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if uses_now {
            q = q.bind(now_us);
        }
        for id in ids {
            q = q.bind(*id);
        }
        changed += q.execute(&mut *c).await.map_err(db_error)?.rows_affected();
    }
    Ok(changed)
}

/// Whether some campaign is due: scheduled at or before the clock's
/// `now_us`, or sending under a lease that expired (its host died; it goes
/// on whatever the clock of the host that takes it over says). A read, so
/// idle polls never take SQLite's writer.
pub async fn any_due(c: &mut Conn, now_us: i64, now_wall_us: i64) -> Result<bool> {
    let row = sqlx::query(
        "SELECT id FROM campaigns WHERE (status = 'sending' OR status = 'scheduled' AND scheduled_at <= $1)
           AND (claimed_until IS NULL OR claimed_until < $2)
         LIMIT 1",
    )
    .bind(now_us)
    .bind(now_wall_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(row.is_some())
}

/// Claims one due campaign for `host` until `until` (PostgreSQL: the
/// candidate row is taken `FOR UPDATE SKIP LOCKED`, so hosts polling at
/// once pick different campaigns); the conditional update decides.
pub async fn claim(
    c: &mut Conn,
    backend: Backend,
    host: &str,
    (now_us, now_wall_us): (i64, i64),
    until: i64,
) -> Result<Option<Campaign>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let candidate = sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM campaigns WHERE (status = 'sending' OR status = 'scheduled' AND scheduled_at <= $1)
           AND (claimed_until IS NULL OR claimed_until < $2)
         ORDER BY scheduled_at, id LIMIT 1{lock}"
    )))
    .bind(now_us)
    .bind(now_wall_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    let Some(candidate) = candidate else {
        return Ok(None);
    };
    let id: String = candidate.try_get("id").map_err(db_error)?;
    let claimed = sqlx::query(
        "UPDATE campaigns SET claimed_by = $2, claimed_until = $3, status = 'sending',
            started_at = COALESCE(started_at, $5)
         WHERE id = $1 AND status IN ('scheduled', 'sending')
           AND (claimed_until IS NULL OR claimed_until < $4)",
    )
    .bind(&id)
    .bind(host)
    .bind(until)
    .bind(now_wall_us)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if claimed.rows_affected() != 1 {
        return Ok(None);
    }
    get(c, &id).await
}

/// Extends `host`'s lease; false if the campaign is no longer its own to
/// send (canceled, queued, deleted, finished, or taken over by another
/// host after the lease expired). The first write of every chunk: on
/// PostgreSQL it holds the campaign's row until the chunk commits.
pub async fn renew(c: &mut Conn, id: &str, host: &str, until: i64) -> Result<bool> {
    super::operations::renew_lease(c, CAMPAIGNS, id, host, until).await
}

/// Campaigns as leased work: held while `sending`.
const CAMPAIGNS: Leased = Leased {
    table: "campaigns",
    running: "sending",
};

/// Gives up `host`'s claim at once (after a chunk failed), so any host may
/// take the campaign again without waiting for the lease to end.
pub async fn release(c: &mut Conn, id: &str, host: &str) -> Result<()> {
    super::operations::release_lease(c, CAMPAIGNS, id, host).await
}

/// The next `limit` recipients without an outcome, in order: `(seq,
/// recipient)`.
pub async fn pending(c: &mut Conn, id: &str, limit: i64) -> Result<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT seq, recipient FROM campaign_recipients
         WHERE campaign_id = $1 AND outcome IS NULL ORDER BY seq LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("seq").map_err(db_error)?,
                r.try_get("recipient").map_err(db_error)?,
            ))
        })
        .collect()
}

/// Records that a recipient was sent `message_id`; false if it already had
/// an outcome (the chunk must then roll back: it was done elsewhere).
pub async fn mark_sent(c: &mut Conn, id: &str, seq: i64, message_id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE campaign_recipients SET outcome = 'sent', message_id = $3
         WHERE campaign_id = $1 AND seq = $2 AND outcome IS NULL",
    )
    .bind(id)
    .bind(seq)
    .bind(message_id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Adds a chunk's sends to the campaign's counter.
pub async fn count_sent(c: &mut Conn, id: &str, sent: i64) -> Result<()> {
    sqlx::query("UPDATE campaigns SET sent = sent + $2 WHERE id = $1")
        .bind(id)
        .bind(sent)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Ends a campaign `host` is sending: `completed`, or `stopped` with its
/// reason; the lease is released. False if it was no longer `host`'s.
pub async fn finish(
    c: &mut Conn,
    id: &str,
    host: &str,
    stop_reason: Option<&str>,
    now_us: i64,
) -> Result<bool> {
    let status = if stop_reason.is_some() {
        CampaignStatus::Stopped
    } else {
        CampaignStatus::Completed
    };
    let done = sqlx::query(
        "UPDATE campaigns SET status = $3, stop_reason = $4, finished_at = $5,
            claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND claimed_by = $2 AND status = 'sending'",
    )
    .bind(id)
    .bind(host)
    .bind(status.as_str())
    .bind(stop_reason)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// The status of the account a campaign sends from, held until the chunk
/// commits: on PostgreSQL `FOR SHARE` (the first lock a chunk takes, as a
/// send's write does), so a suspension's cascade either waits for the chunk
/// or commits first and the chunk sees it. SQLite's one writer orders them.
pub async fn account_status_held(
    c: &mut Conn,
    backend: Backend,
    account_id: &str,
) -> Result<Option<String>> {
    let hold = match backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT status FROM accounts WHERE id = $1{hold}"
    )))
    .bind(account_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| r.try_get("status").map_err(db_error))
        .transpose()
}

/// Whether `account_id` holds the active line `line` (E.164).
pub async fn holds_active_line(c: &mut Conn, account_id: &str, line: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT id FROM resources WHERE kind = 'line' AND identifier = $1 AND account_id = $2
           AND status = 'active'",
    )
    .bind(line)
    .bind(account_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(row.is_some())
}
