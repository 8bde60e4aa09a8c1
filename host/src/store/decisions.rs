//! The decision log's table: batched inserts, filtered pages, retention.

use sqlx::{AnyPool, Row};

use super::{Backend, Conn, db_error};
use crate::Result;
use crate::policy::decision::Record;

/// The decision log's own SQLite file has its own migrations
/// (`migrations/decision_log`): the `decisions` table as the database's
/// migrations make it on PostgreSQL. A test compares the two.
pub static LOG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/decision_log");

/// On SQLite the decision log has a database file of its own, beside the
/// database (`canopy.db` -> `canopy.db-decisions`): a batch of decisions
/// then never holds the one write lock every charge needs.
pub fn log_url(database_url: &str) -> String {
    match database_url.split_once('?') {
        Some((path, query)) => format!("{path}-decisions?{query}"),
        None => format!("{database_url}-decisions"),
    }
}

/// Brings the log file's schema up to date, and moves there any decisions an older
/// version kept in the database itself (copied first, then deleted, so a
/// crash in between leaves copies the next start skips, never a loss).
pub async fn move_to_log_file(
    database: &AnyPool,
    log: &AnyPool,
    database_file: &std::path::Path,
) -> std::result::Result<u64, sqlx::Error> {
    LOG_MIGRATOR.run(log).await?;
    let mut c = log.acquire().await?;
    let waiting: Option<String> = sqlx::query_scalar("SELECT id FROM decisions LIMIT 1")
        .fetch_optional(database)
        .await?;
    if waiting.is_none() {
        return Ok(0);
    }
    sqlx::query("ATTACH DATABASE $1 AS ledger")
        .bind(database_file.to_string_lossy().into_owned())
        .execute(&mut *c)
        .await?;
    let copied = sqlx::query(
        "INSERT OR IGNORE INTO main.decisions (id, tree_id, account_id, hook, action, outcome, reason, shadow_disagrees, policies, created_at)
         SELECT id, tree_id, account_id, hook, action, outcome, reason, shadow_disagrees, policies, created_at FROM ledger.decisions",
    )
    .execute(&mut *c)
    .await;
    sqlx::query("DETACH DATABASE ledger")
        .execute(&mut *c)
        .await?;
    let copied = copied?.rows_affected();
    sqlx::query("DELETE FROM decisions")
        .execute(database)
        .await?;
    tracing::info!(copied, "decisions moved to the decision log's own file");
    Ok(copied)
}

/// Rows per INSERT statement (10 parameters each), per backend. Few on
/// SQLite: it finds a numbered parameter (`$N`) by walking the statement's
/// parameter list, so binding a statement costs the square of its
/// parameters (200 rows, 2,000 parameters, spent 18% of a read-heavy
/// server's CPU there); 8 rows keep that negligible. Many on PostgreSQL,
/// where each statement is a round trip and binding is linear
/// (BENCHMARKS.md has both measures).
fn rows_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 200,
    }
}

/// Writes `records` (one transaction per call, so a batch lands whole).
pub async fn insert(c: &mut Conn, backend: Backend, records: &[Record]) -> Result<()> {
    for chunk in records.chunks(rows_per_statement(backend)) {
        let mut sql = String::from(
            "INSERT INTO decisions (id, tree_id, account_id, hook, action, outcome, reason, shadow_disagrees, policies, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 10;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.id.clone())
                .bind(r.tree_id.clone())
                .bind(r.account_id.clone())
                .bind(r.hook)
                .bind(r.action.clone())
                .bind(r.outcome)
                .bind(r.reason.clone())
                .bind(r.shadow_disagrees as i64)
                .bind(serde_json::to_string(&r.policies).unwrap_or_else(|_| "[]".into()))
                .bind(r.created_at_us);
        }
        q.execute(&mut *c).await.map_err(db_error)?;
    }
    Ok(())
}

/// A stored decision.
#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub id: String,
    pub tree_id: Option<String>,
    pub account_id: Option<String>,
    pub hook: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub shadow_disagrees: bool,
    pub policies: serde_json::Value,
    pub created_at_us: i64,
}

/// What to list: one tree (a parent's), one account, or everything (the
/// operator); then optional filters. Newest first; `before` is the cursor.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tree_id: Option<String>,
    pub account_id: Option<String>,
    pub hook: Option<String>,
    pub outcome: Option<String>,
    pub action: Option<String>,
    pub policy_id: Option<String>,
    pub shadow_disagrees: Option<bool>,
}

pub async fn list(c: &mut Conn, f: &Filter, page: &crate::ops::Page) -> Result<Vec<DecisionRow>> {
    // Policy ids are `pol_` + hex, so a LIKE on the JSON text is exact.
    let policy_like = f.policy_id.as_ref().map(|p| format!("%\"id\":\"{p}\"%"));
    let q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, tree_id, account_id, hook, action, outcome, reason, shadow_disagrees, policies, created_at
           FROM decisions
          WHERE ($1 = '' OR tree_id = $1)
            AND ($2 = '' OR account_id = $2)
            AND ($3 = '' OR hook = $3)
            AND ($4 = '' OR outcome = $4)
            AND ($5 = '' OR action = $5)
            AND ($6 = '' OR policies LIKE $6)
            AND ($7 < 0 OR shadow_disagrees = $7){}",
        super::listing::newest_first("", 8)
    )))
    .bind(f.tree_id.clone().unwrap_or_default())
    .bind(f.account_id.clone().unwrap_or_default())
    .bind(f.hook.clone().unwrap_or_default())
    .bind(f.outcome.clone().unwrap_or_default())
    .bind(f.action.clone().unwrap_or_default())
    .bind(policy_like.unwrap_or_default())
    .bind(f.shadow_disagrees.map(|b| b as i64).unwrap_or(-1));
    let rows = super::listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let policies: String = r.try_get("policies")?;
            Ok(DecisionRow {
                id: r.try_get("id")?,
                tree_id: r.try_get("tree_id")?,
                account_id: r.try_get("account_id")?,
                hook: r.try_get("hook")?,
                action: r.try_get("action")?,
                outcome: r.try_get("outcome")?,
                reason: r.try_get("reason")?,
                shadow_disagrees: r.try_get::<i64, _>("shadow_disagrees")? != 0,
                policies: serde_json::from_str(&policies).unwrap_or_default(),
                created_at_us: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

/// Deletes decisions older than `older_than_us`, then, in each tree holding
/// more than `keep_per_tree` rows (the operator's decisions, with no tree,
/// are one more bucket), that tree's oldest beyond it: one tree's traffic
/// never purges another's log. Every step walks the `(tree_id, id)` index.
/// Returns how many went.
pub async fn purge(c: &mut Conn, older_than_us: i64, keep_per_tree: i64) -> Result<u64> {
    let aged = sqlx::query("DELETE FROM decisions WHERE created_at < $1")
        .bind(older_than_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?
        .rows_affected();
    let over: Vec<Option<String>> =
        sqlx::query("SELECT tree_id FROM decisions GROUP BY tree_id HAVING COUNT(*) > $1")
            .bind(keep_per_tree)
            .fetch_all(&mut *c)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.try_get("tree_id"))
            .collect::<Result<_, _>>()
            .map_err(db_error)?;
    let mut capped = 0;
    for tree in over {
        // The tree's newest row past the cap; ids grow with time.
        let (cut_sql, delete_sql) = match tree {
            Some(_) => (
                "SELECT id FROM decisions WHERE tree_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
                "DELETE FROM decisions WHERE tree_id = $1 AND id <= $2",
            ),
            None => (
                "SELECT id FROM decisions WHERE tree_id IS NULL AND $1 = '' ORDER BY id DESC LIMIT 1 OFFSET $2",
                "DELETE FROM decisions WHERE tree_id IS NULL AND $1 = '' AND id <= $2",
            ),
        };
        let tree = tree.unwrap_or_default();
        let cut: Option<String> = sqlx::query(cut_sql)
            .bind(&tree)
            .bind(keep_per_tree)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?
            .map(|r| r.try_get("id"))
            .transpose()
            .map_err(db_error)?;
        if let Some(id) = cut {
            capped += sqlx::query(delete_sql)
                .bind(&tree)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_error)?
                .rows_affected();
        }
    }
    Ok(aged + capped)
}
