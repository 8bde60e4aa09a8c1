//! Delete with retention: the live resources that hold a deletion back, and
//! the purge of a deleted account's personal data once its retention
//! period ended. Ledger transfers and resource history are never touched.

use sqlx::Row;

use super::{Conn, db_error};
use crate::Result;

/// Resource statuses that keep an account from being deleted.
const LIVE: &str = "status IN ('active', 'suspended', 'inventory')";

/// Resources `account_id` holds in `active`, `suspended` or `inventory`.
/// Read inside the deletion's write transaction, after the account row was
/// changed (so locked): a transfer into it must lock that row too.
pub async fn live_resources(c: &mut Conn, account_id: &str) -> Result<i64> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM resources WHERE account_id = $1 AND {LIVE}"
    )))
    .bind(account_id)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<i64, _>("n"))
    .map_err(db_error)
}

/// Live resources anywhere in a parent's tree (its Available pool and
/// every sub-account).
pub async fn live_resources_of_tree(c: &mut Conn, parent_id: &str) -> Result<i64> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM resources WHERE tree_id = $1 AND {LIVE}"
    )))
    .bind(parent_id)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<i64, _>("n"))
    .map_err(db_error)
}

/// Deleted accounts not yet purged whose deletion is at or before
/// `cutoff_us`, at most `limit`.
pub async fn due(c: &mut Conn, cutoff_us: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM accounts
         WHERE status = 'deleted' AND purged_at IS NULL AND deleted_at <= $1
         ORDER BY deleted_at, id LIMIT $2",
    )
    .bind(cutoff_us)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map_err(db_error))
        .collect()
}

/// Purges one deleted account in the caller's transaction; false if it is
/// not due or another host purged it first (the first statement is
/// conditional on `purged_at IS NULL`, so each account is purged once).
///
/// Removed: its name, e-mail (a unique placeholder, so the address can be
/// used again), external id and alert e-mails; its memberships,
/// invitations and API keys; the bodies and recipients of its messages and
/// the addresses of its notifications, the remote numbers of its
/// conversations. A user left with no membership is
/// anonymised too (e-mail placeholder, no name, no password, no sessions,
/// no pending reset). Kept: the row itself (ledger transfers and resource
/// history reference it), its transfers and history.
pub async fn purge_account(c: &mut Conn, id: &str, cutoff_us: i64, now_us: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET name = 'purged', name_key = 'purged:' || id,
             email = 'purged+' || id || '@purged.invalid', email_key = 'purged:' || id,
             external_id = NULL, company_name = 'purged', low_balance_emails = NULL,
             low_balance_threshold_micros = NULL, purged_at = $3, updated_at = $3
         WHERE id = $1 AND status = 'deleted' AND purged_at IS NULL AND deleted_at <= $2",
    )
    .bind(id)
    .bind(cutoff_us)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    let users: Vec<String> = sqlx::query(
        "SELECT user_id FROM memberships WHERE account_id = $1
         UNION SELECT user_id FROM api_keys WHERE account_id = $1
         UNION SELECT created_user_id FROM invitations WHERE account_id = $1 AND created_user_id IS NOT NULL",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| r.try_get::<String, _>(0).map_err(db_error))
    .collect::<Result<_>>()?;
    for sql in [
        "DELETE FROM memberships WHERE account_id = $1",
        "DELETE FROM invitations WHERE account_id = $1",
        "DELETE FROM api_keys WHERE account_id = $1",
        "UPDATE messages SET body = '', remote = '' WHERE account_id = $1",
        // Remote numbers are personal data; a unique placeholder keeps the
        // conversation key unique. Counters hold no personal data.
        "UPDATE conversations SET remote = 'purged:' || id WHERE account_id = $1",
        "UPDATE notifications SET emails = '[]' WHERE account_id = $1",
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    }
    for user in users {
        // Only a user who belongs nowhere else any more.
        let orphan = "NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = $1)
            AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.created_user_id = $1)
            AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.user_id = $1)";
        let anonymised = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET email = 'purged+' || id || '@purged.invalid',
                 email_key = 'purged:' || id, name = NULL, password_hash = NULL
             WHERE id = $1 AND {orphan}"
        )))
        .bind(&user)
        .execute(&mut *c)
        .await
        .map_err(db_error)?
        .rows_affected();
        if anonymised == 1 {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(&user)
                .execute(&mut *c)
                .await
                .map_err(db_error)?;
            sqlx::query(
                "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(&user)
            .bind(now_us)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
        }
    }
    Ok(true)
}
