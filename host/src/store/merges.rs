//! The `merges` table, and the set-based statements that run a merge.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::listing;
use super::{Conn, db_error};
use crate::clock::from_us;
use crate::domain::merges::MergeStatus;
use crate::ops::Page;
use crate::{Error, Result};

/// A merge request and its decision.
#[derive(Debug, Clone)]
pub struct Merge {
    pub id: String,
    pub tree_id: String,
    pub target_id: String,
    pub sources: Vec<String>,
    pub status: MergeStatus,
    pub requested_by: String,
    pub decided_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn insert(c: &mut Conn, m: &Merge, now_us: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO merges (id, tree_id, target_id, sources, status, requested_by, created_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
    )
    .bind(&m.id)
    .bind(&m.tree_id)
    .bind(&m.target_id)
    .bind(super::accounts::json_text(&m.sources))
    .bind(&m.requested_by)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn get(c: &mut Conn, tree_id: &str, id: &str) -> Result<Option<Merge>> {
    let row = sqlx::query("SELECT * FROM merges WHERE tree_id = $1 AND id = $2")
        .bind(tree_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(from_row).transpose()
}

/// One page of a tree's merges, newest first.
pub async fn list(c: &mut Conn, tree_id: &str, page: &Page) -> Result<Vec<Merge>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM merges WHERE tree_id = $1{}",
        listing::newest_first("", 2)
    )))
    .bind(tree_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// Decides a pending merge; false if it was decided first by someone else.
pub async fn decide(
    c: &mut Conn,
    id: &str,
    to: MergeStatus,
    decided_by: &str,
    now_us: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE merges SET status = $2, decided_by = $3, decided_at = $4
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(decided_by)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Locks the target's row until the transaction ends if it is an active
/// sub-account of `parent_id`; false otherwise.
pub async fn lock_target(c: &mut Conn, parent_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET updated_at = updated_at
         WHERE id = $1 AND parent_id = $2 AND status = 'active'",
    )
    .bind(id)
    .bind(parent_id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Ends each source as merged into `target` (stored `deleted` with
/// `merged_into`), in one statement, each only if it is still an active or
/// suspended sub-account of `parent_id`. Returns how many changed: fewer
/// than `sources` if one changed meanwhile.
pub async fn end_sources(
    c: &mut Conn,
    parent_id: &str,
    sources: &[String],
    target: &str,
    now_us: i64,
) -> Result<u64> {
    // At most `MERGE_SOURCES_MAX` ids: far below both backends' limits.
    let list: Vec<String> = (0..sources.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "UPDATE accounts SET status = 'deleted', previous_status = NULL, suspended_by = NULL,
             deleted_at = $3, updated_at = $3, merged_into = $2
         WHERE parent_id = $1 AND status IN ('active', 'suspended') AND id IN ({})",
        list.join(", ")
    );
    // Only placeholders are formatted into the statement.
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(parent_id)
        .bind(target)
        .bind(now_us);
    for id in sources {
        query = query.bind(id);
    }
    Ok(query
        .execute(&mut *c)
        .await
        .map_err(db_error)?
        .rows_affected())
}

/// Moves every resource `source` holds to `target`, set-based: one UPDATE
/// (each row's `seq` to the next, so it is conditional on the holder and
/// locks the rows), then one INSERT of their history rows (event `merge`):
/// the rows just moved are the target's whose `seq` has no history row yet.
/// Returns how many moved.
pub async fn move_resources(
    c: &mut Conn,
    source: &str,
    target: &str,
    merge_id: &str,
    now_us: i64,
) -> Result<u64> {
    let moved = sqlx::query(
        "UPDATE resources SET account_id = $2, seq = seq + 1, assigned_at = $3
         WHERE account_id = $1",
    )
    .bind(source)
    .bind(target)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?
    .rows_affected();
    if moved == 0 {
        return Ok(0);
    }
    let written = sqlx::query(
        "INSERT INTO resource_history (resource_id, seq, event, from_account_id, account_id,
             from_status, status, operation_id, at)
         SELECT r.id, r.seq, 'merge', $1, r.account_id, r.status, r.status, $3, $4
         FROM resources r
         WHERE r.account_id = $2 AND NOT EXISTS (
             SELECT 1 FROM resource_history h WHERE h.resource_id = r.id AND h.seq = r.seq)",
    )
    .bind(source)
    .bind(target)
    .bind(merge_id)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?
    .rows_affected();
    if written != moved {
        return Err(Error::internal(format!(
            "merge moved {moved} resources from {source} but wrote {written} history rows"
        )));
    }
    Ok(moved)
}

fn from_row(r: &AnyRow) -> Result<Merge> {
    let corrupt = |what: &str| Error::internal(format!("stored merge has a malformed {what}"));
    let sources: String = r.try_get("sources").map_err(db_error)?;
    let status: String = r.try_get("status").map_err(db_error)?;
    Ok(Merge {
        id: r.try_get("id").map_err(db_error)?,
        tree_id: r.try_get("tree_id").map_err(db_error)?,
        target_id: r.try_get("target_id").map_err(db_error)?,
        sources: serde_json::from_str(&sources).map_err(|_| corrupt("sources"))?,
        status: MergeStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        requested_by: r.try_get("requested_by").map_err(db_error)?,
        decided_by: r.try_get("decided_by").map_err(db_error)?,
        created_at: from_us(r.try_get("created_at").map_err(db_error)?),
        decided_at: r
            .try_get::<Option<i64>, _>("decided_at")
            .map_err(db_error)?
            .map(from_us),
    })
}
