//! Bulk operations (`operations`, `operation_items`) and the conditional
//! updates of `resources` their items make.
//!
//! An operation and all its items are written in the transaction that
//! creates it. A host claims it with a lease (`claimed_by`,
//! `claimed_until`, wall-clock microseconds); every chunk's transaction
//! first renews that lease with a conditional update on the operation's
//! row, which also holds the row (PostgreSQL) until the chunk commits, so
//! two hosts never run chunks of one operation at once. Each item's effect,
//! its history row and its outcome (`WHERE outcome IS NULL`) are written in
//! the chunk's transaction.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Backend, Conn, db_error};
use crate::clock::from_us;
use crate::domain::operations::{Found, OperationKind, OperationStatus, Place};
use crate::domain::resources::{ResourceKind, ResourceStatus};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub tree_id: String,
    pub account_id: String,
    pub kind: OperationKind,
    pub to_account_id: Option<String>,
    /// The request as stored (JSON): what the worker needs of it.
    pub request: String,
    pub status: OperationStatus,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One item that failed, as the operation reports it.
#[derive(Debug, Clone)]
pub struct ItemError {
    pub resource_id: String,
    pub code: String,
    pub reason: String,
}

/// Everything needed to insert an operation (its items come after).
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub id: String,
    pub tree_id: String,
    pub account_id: String,
    pub kind: OperationKind,
    pub to_account_id: Option<String>,
    pub requested_by: String,
    pub request: String,
    pub now_us: i64,
}

/// Which resources a filter selects, resolved inside the creating
/// transaction.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub tree_id: String,
    /// Only what this account holds.
    pub holder: Option<String>,
    pub kind: Option<ResourceKind>,
    pub status: Option<ResourceStatus>,
    pub place: Option<Place>,
    pub tag: Option<String>,
    pub prefix: Option<String>,
}

const SELECT: &str = "SELECT id, tree_id, account_id, kind, to_account_id, request, status,
    total, succeeded, failed, created_at, finished_at FROM operations";

fn from_row(r: &AnyRow) -> Result<Operation> {
    let bad = |what: &str| Error::internal(format!("stored operation has a bad {what}"));
    Ok(Operation {
        id: r.try_get("id").map_err(db_error)?,
        tree_id: r.try_get("tree_id").map_err(db_error)?,
        account_id: r.try_get("account_id").map_err(db_error)?,
        kind: OperationKind::parse(&r.try_get::<String, _>("kind").map_err(db_error)?)
            .ok_or_else(|| bad("kind"))?,
        to_account_id: r.try_get("to_account_id").map_err(db_error)?,
        request: r.try_get("request").map_err(db_error)?,
        status: OperationStatus::parse(&r.try_get::<String, _>("status").map_err(db_error)?)
            .ok_or_else(|| bad("status"))?,
        total: r.try_get("total").map_err(db_error)?,
        succeeded: r.try_get("succeeded").map_err(db_error)?,
        failed: r.try_get("failed").map_err(db_error)?,
        created_at: from_us(r.try_get("created_at").map_err(db_error)?),
        finished_at: r
            .try_get::<Option<i64>, _>("finished_at")
            .map_err(db_error)?
            .map(from_us),
    })
}

pub async fn insert(c: &mut Conn, o: &NewOperation) -> Result<()> {
    sqlx::query(
        "INSERT INTO operations (id, tree_id, account_id, kind, to_account_id, requested_by,
            request, status, total, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8)",
    )
    .bind(&o.id)
    .bind(&o.tree_id)
    .bind(&o.account_id)
    .bind(o.kind.as_str())
    .bind(&o.to_account_id)
    .bind(&o.requested_by)
    .bind(&o.request)
    .bind(o.now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Rows per multi-row insert of items (3 parameters each).
const ITEMS_PER_INSERT: usize = 500;

/// The items of a list of ids, numbered in the list's order.
pub async fn insert_items(c: &mut Conn, op_id: &str, ids: &[String]) -> Result<()> {
    for (n, chunk) in ids.chunks(ITEMS_PER_INSERT).enumerate() {
        let mut sql =
            String::from("INSERT INTO operation_items (operation_id, seq, resource_id) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(op_id);
        for (i, id) in chunk.iter().enumerate() {
            q = q
                .bind((n * ITEMS_PER_INSERT + i + 1) as i64)
                .bind(id.as_str());
        }
        q.execute(&mut *c).await.map_err(db_error)?;
    }
    Ok(())
}

/// The items a selection resolves to, at most `limit` of them, numbered
/// in id order; returns how many were written.
pub async fn insert_selected_items(
    c: &mut Conn,
    op_id: &str,
    s: &Selection,
    limit: i64,
) -> Result<u64> {
    let mut sql = String::from(
        "INSERT INTO operation_items (operation_id, seq, resource_id)
         SELECT $1, ROW_NUMBER() OVER (ORDER BY id), id FROM (
           SELECT r.id FROM resources r WHERE r.tree_id = $2",
    );
    let mut texts: Vec<String> = vec![op_id.to_string(), s.tree_id.clone()];
    fn param(texts: &mut Vec<String>, value: String) -> String {
        texts.push(value);
        format!("${}", texts.len())
    }
    if let Some(holder) = &s.holder {
        let p = param(&mut texts, holder.clone());
        sql.push_str(&format!(" AND r.account_id = {p}"));
    }
    if let Some(kind) = s.kind {
        let p = param(&mut texts, kind.as_str().to_string());
        sql.push_str(&format!(" AND r.kind = {p}"));
    }
    if let Some(status) = s.status {
        let p = param(&mut texts, status.as_str().to_string());
        sql.push_str(&format!(" AND r.status = {p}"));
    }
    match s.place {
        Some(Place::Available) => sql.push_str(" AND r.account_id = r.tree_id"),
        Some(Place::Assigned) => sql.push_str(" AND r.account_id <> r.tree_id"),
        None => {}
    }
    if let Some(prefix) = &s.prefix {
        let len = prefix.chars().count();
        let p = param(&mut texts, prefix.clone());
        sql.push_str(&format!(" AND substr(r.identifier, 1, {len}) = {p}"));
    }
    if let Some(tag) = &s.tag {
        let p = param(&mut texts, tag.clone());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM resource_tags t WHERE t.tree_id = r.tree_id
                AND t.tag = {p} AND t.resource_id = r.id)"
        ));
    }
    sql.push_str(&format!(" ORDER BY r.id LIMIT {limit}) selected"));
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for t in &texts {
        q = q.bind(t.as_str());
    }
    let done = q.execute(&mut *c).await.map_err(db_error)?;
    Ok(done.rows_affected())
}

pub async fn set_total(c: &mut Conn, op_id: &str, total: i64) -> Result<()> {
    sqlx::query("UPDATE operations SET total = $2 WHERE id = $1")
        .bind(op_id)
        .bind(total)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn get(c: &mut Conn, id: &str) -> Result<Option<Operation>> {
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(from_row).transpose()
}

/// The first `limit` failed items, in item order.
pub async fn errors(c: &mut Conn, op_id: &str, limit: i64) -> Result<Vec<ItemError>> {
    let rows = sqlx::query(
        "SELECT resource_id, code, reason FROM operation_items
         WHERE operation_id = $1 AND outcome = 'failed' ORDER BY seq LIMIT $2",
    )
    .bind(op_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(ItemError {
                resource_id: r.try_get("resource_id").map_err(db_error)?,
                code: r
                    .try_get::<Option<String>, _>("code")
                    .map_err(db_error)?
                    .unwrap_or_default(),
                reason: r
                    .try_get::<Option<String>, _>("reason")
                    .map_err(db_error)?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Whose operations (or campaigns) a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Among<'a> {
    /// Every one of a tree (its parent's view).
    Tree(&'a str),
    /// Those requested in one account.
    Account(&'a str),
}

/// One page of operations, newest first, before the cursor `before`.
pub async fn list(
    c: &mut Conn,
    among: Among<'_>,
    page: &crate::ops::Page,
) -> Result<Vec<Operation>> {
    let rows = newest_first(c, SELECT, among, page).await?;
    rows.iter().map(from_row).collect()
}

/// One page of the rows `select` reads (a table with `id`, `tree_id` and
/// `account_id`; ids grow with time), newest first, before `before`.
pub async fn newest_first(
    c: &mut Conn,
    select: &str,
    among: Among<'_>,
    page: &crate::ops::Page,
) -> Result<Vec<AnyRow>> {
    let (column, id) = match among {
        Among::Tree(id) => ("tree_id", id),
        Among::Account(id) => ("account_id", id),
    };
    let q = sqlx::query(AssertSqlSafe(format!(
        "{select} WHERE {column} = $1{}",
        super::listing::newest_first("", 2)
    )))
    .bind(id);
    super::listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)
}

/// The id of an operation waiting for a host: queued, or running under a
/// lease that expired (its host died). A read, so idle polls never take
/// SQLite's writer.
pub async fn claimable(c: &mut Conn, now_wall_us: i64) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM operations WHERE status IN ('queued', 'running')
           AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY created_at, id LIMIT 1",
    )
    .bind(now_wall_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| r.try_get("id").map_err(db_error)).transpose()
}

/// Claims one waiting operation for `host` until `until` (PostgreSQL: the
/// candidate row is taken `FOR UPDATE SKIP LOCKED`, so hosts polling at
/// once pick different operations); the conditional update decides.
pub async fn claim(
    c: &mut Conn,
    backend: Backend,
    host: &str,
    now_wall_us: i64,
    until: i64,
) -> Result<Option<Operation>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let candidate = sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM operations WHERE status IN ('queued', 'running')
           AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY created_at, id LIMIT 1{lock}"
    )))
    .bind(now_wall_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    let Some(candidate) = candidate else {
        return Ok(None);
    };
    let id: String = candidate.try_get("id").map_err(db_error)?;
    let claimed = sqlx::query(
        "UPDATE operations SET claimed_by = $2, claimed_until = $3, status = 'running'
         WHERE id = $1 AND status IN ('queued', 'running')
           AND (claimed_until IS NULL OR claimed_until < $4)",
    )
    .bind(&id)
    .bind(host)
    .bind(until)
    .bind(now_wall_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if claimed.rows_affected() != 1 {
        return Ok(None);
    }
    get(c, &id).await
}

/// Extends `host`'s lease; false if the operation is no longer its own
/// (another host took it over after the lease expired, or it finished).
/// The first statement of every chunk: on PostgreSQL it holds the
/// operation's row until the chunk commits.
pub async fn renew(c: &mut Conn, op_id: &str, host: &str, until: i64) -> Result<bool> {
    renew_lease(c, Leased::OPERATIONS, op_id, host, until).await
}

/// A table of durable work whose rows hosts claim with a lease
/// (`claimed_by`, `claimed_until`) while in their running status.
#[derive(Debug, Clone, Copy)]
pub struct Leased {
    pub table: &'static str,
    pub running: &'static str,
}

impl Leased {
    pub const OPERATIONS: Leased = Leased {
        table: "operations",
        running: "running",
    };
}

/// Extends `host`'s lease on a row of `work`; false if it is no longer
/// `host`'s (taken over, or no longer running). On PostgreSQL the row is
/// held until the transaction ends.
pub async fn renew_lease(
    c: &mut Conn,
    work: Leased,
    id: &str,
    host: &str,
    until: i64,
) -> Result<bool> {
    let renewed = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET claimed_until = $3
         WHERE id = $1 AND claimed_by = $2 AND status = '{}'",
        work.table, work.running
    )))
    .bind(id)
    .bind(host)
    .bind(until)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(renewed.rows_affected() == 1)
}

/// Gives up `host`'s lease on a row of `work` at once.
pub async fn release_lease(c: &mut Conn, work: Leased, id: &str, host: &str) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND claimed_by = $2 AND status = '{}'",
        work.table, work.running
    )))
    .bind(id)
    .bind(host)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Gives up `host`'s claim at once (after a chunk failed, say on a
/// deadlock), so any host may take the operation again without waiting for
/// the lease to end.
pub async fn release(c: &mut Conn, op_id: &str, host: &str) -> Result<()> {
    release_lease(c, Leased::OPERATIONS, op_id, host).await
}

/// An item still to do, with the resource as it is now.
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: i64,
    pub resource_id: String,
    pub found: Option<Found>,
    /// The resource's `seq` (its last history row) when read.
    pub resource_seq: i64,
}

fn found(r: &AnyRow) -> Result<(Option<Found>, i64)> {
    let kind: Option<String> = r.try_get("kind").map_err(db_error)?;
    let Some(kind) = kind else {
        return Ok((None, 0));
    };
    let bad = || Error::internal("stored resource has a bad kind or status");
    let status: String = r.try_get("status").map_err(db_error)?;
    Ok((
        Some(Found {
            kind: ResourceKind::parse(&kind).ok_or_else(bad)?,
            status: ResourceStatus::parse(&status).ok_or_else(bad)?,
            tree_id: r.try_get("tree_id").map_err(db_error)?,
            account_id: r.try_get("account_id").map_err(db_error)?,
        }),
        r.try_get("rseq").map_err(db_error)?,
    ))
}

/// The next `limit` items without an outcome, in order, each with its
/// resource as it stands.
pub async fn pending(c: &mut Conn, op_id: &str, limit: i64) -> Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT i.seq, i.resource_id, r.kind, r.status, r.tree_id, r.account_id, r.seq AS rseq
         FROM operation_items i LEFT JOIN resources r ON r.id = i.resource_id
         WHERE i.operation_id = $1 AND i.outcome IS NULL ORDER BY i.seq LIMIT $2",
    )
    .bind(op_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let (found, resource_seq) = found(r)?;
            Ok(Pending {
                seq: r.try_get("seq").map_err(db_error)?,
                resource_id: r.try_get("resource_id").map_err(db_error)?,
                found,
                resource_seq,
            })
        })
        .collect()
}

/// One resource as it stands now (after a conditional update missed).
pub async fn reread(c: &mut Conn, resource_id: &str) -> Result<(Option<Found>, i64)> {
    let row = sqlx::query(
        "SELECT kind, status, tree_id, account_id, seq AS rseq FROM resources WHERE id = $1",
    )
    .bind(resource_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    match row {
        Some(r) => found(&r),
        None => Ok((None, 0)),
    }
}

/// One resource's change by an operation's item.
#[derive(Debug, Clone)]
pub struct Applied<'a> {
    pub resource_id: &'a str,
    pub operation_id: &'a str,
    pub transfer: bool,
    pub from_account_id: &'a str,
    pub from_status: ResourceStatus,
    /// The resource's `seq` when it was read: the update applies only if
    /// nothing changed it since.
    pub read_seq: i64,
    pub account_id: &'a str,
    pub status: ResourceStatus,
    pub now_us: i64,
}

/// Moves a resource or changes its status with a conditional update (its
/// place, status and `seq` as read), then writes its next history row.
/// False if the resource changed since it was read: nothing was written.
pub async fn apply(c: &mut Conn, a: &Applied<'_>) -> Result<bool> {
    // A move sets when it was assigned; a status change keeps it.
    let updated = sqlx::query(
        "UPDATE resources SET account_id = $2, status = $3,
            assigned_at = COALESCE($6, assigned_at), seq = seq + 1
         WHERE id = $1 AND account_id = $4 AND status = $5 AND seq = $7",
    )
    .bind(a.resource_id)
    .bind(a.account_id)
    .bind(a.status.as_str())
    .bind(a.from_account_id)
    .bind(a.from_status.as_str())
    .bind(a.transfer.then_some(a.now_us))
    .bind(a.read_seq)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO resource_history (resource_id, seq, event, from_account_id, account_id,
            from_status, status, operation_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.resource_id)
    .bind(a.read_seq + 1)
    .bind(if a.transfer { "transfer" } else { "status" })
    .bind(a.from_account_id)
    .bind(a.account_id)
    .bind(a.from_status.as_str())
    .bind(a.status.as_str())
    .bind(a.operation_id)
    .bind(a.now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(true)
}

/// Records one item's outcome; false if it already had one (the chunk
/// must then roll back: the item was done elsewhere).
pub async fn finish_item(
    c: &mut Conn,
    op_id: &str,
    seq: i64,
    refusal: Option<(&str, &str)>,
    now_us: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE operation_items SET outcome = $3, code = $4, reason = $5, done_at = $6
         WHERE operation_id = $1 AND seq = $2 AND outcome IS NULL",
    )
    .bind(op_id)
    .bind(seq)
    .bind(if refusal.is_some() {
        "failed"
    } else {
        "succeeded"
    })
    .bind(refusal.map(|r| r.0))
    .bind(refusal.map(|r| r.1))
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Fails every item still without an outcome with one code; returns how
/// many.
pub async fn fail_rest(
    c: &mut Conn,
    op_id: &str,
    code: &str,
    reason: &str,
    now_us: i64,
) -> Result<i64> {
    let done = sqlx::query(
        "UPDATE operation_items SET outcome = 'failed', code = $2, reason = $3, done_at = $4
         WHERE operation_id = $1 AND outcome IS NULL",
    )
    .bind(op_id)
    .bind(code)
    .bind(reason)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() as i64)
}

/// Adds a chunk's outcomes to the operation's counters.
pub async fn progress(c: &mut Conn, op_id: &str, succeeded: i64, failed: i64) -> Result<()> {
    sqlx::query(
        "UPDATE operations SET succeeded = succeeded + $2, failed = failed + $3 WHERE id = $1",
    )
    .bind(op_id)
    .bind(succeeded)
    .bind(failed)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Ends an operation `host` holds: `completed` or `failed`, lease released.
pub async fn finish(
    c: &mut Conn,
    op_id: &str,
    host: &str,
    status: OperationStatus,
    now_us: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE operations SET status = $3, finished_at = $4, claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND claimed_by = $2 AND status = 'running'",
    )
    .bind(op_id)
    .bind(host)
    .bind(status.as_str())
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// The status of a sub-account of `parent_id`, if it is one.
pub async fn subaccount_status(c: &mut Conn, parent_id: &str, id: &str) -> Result<Option<String>> {
    status_of(c, parent_id, id, "").await
}

/// A transfer target's status, held until the chunk commits: on
/// PostgreSQL `FOR SHARE`, so a deletion (which locks the row, then counts
/// what the account holds) either waits for the chunk and counts its
/// resources, or commits first and the chunk sees `deleted`. SQLite's one
/// writer orders them already.
pub async fn target_status_held(
    c: &mut Conn,
    backend: Backend,
    parent_id: &str,
    id: &str,
) -> Result<Option<String>> {
    let hold = match backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    status_of(c, parent_id, id, hold).await
}

async fn status_of(c: &mut Conn, parent_id: &str, id: &str, hold: &str) -> Result<Option<String>> {
    let sql = format!("SELECT status FROM accounts WHERE id = $1 AND parent_id = $2{hold}");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(parent_id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.map(|r| r.try_get("status").map_err(db_error))
        .transpose()
}
