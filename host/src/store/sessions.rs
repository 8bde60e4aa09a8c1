//! A user's sessions (listed, signed out) and the use of API keys
//! (`last_used_at`, kept to the minute).

use sqlx::{AssertSqlSafe, Row};

use super::{Conn, db_error, listing};
use crate::Result;
use crate::clock::from_us;
use crate::ops::Page;

/// One session of a user (never its token; only a hash is stored).
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub token_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// One page of a user's live sessions, newest first.
pub async fn list(c: &mut Conn, user_id: &str, now_us: i64, page: &Page) -> Result<Vec<Session>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, token_hash, created_at, expires_at FROM sessions
         WHERE user_id = $1 AND expires_at > $2{}",
        listing::newest_first("", 3)
    )))
    .bind(user_id)
    .bind(now_us);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(Session {
                id: r.try_get("id").map_err(db_error)?,
                token_hash: r.try_get("token_hash").map_err(db_error)?,
                created_at: from_us(r.try_get("created_at").map_err(db_error)?),
                expires_at: from_us(r.try_get("expires_at").map_err(db_error)?),
            })
        })
        .collect()
}

/// Signs a session of `user_id` out: its row goes, so its token is refused
/// by the next request. False if the user has no such session.
pub async fn revoke(c: &mut Conn, user_id: &str, session_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
        .bind(session_id)
        .bind(user_id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Notes that an API key was used at `now_us`, unless a use within
/// `every_us` was noted already (conditional, so hosts racing write once).
pub async fn note_key_use(c: &mut Conn, key_id: &str, now_us: i64, every_us: i64) -> Result<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $2
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
    )
    .bind(key_id)
    .bind(now_us)
    .bind(now_us.saturating_sub(every_us))
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Sets when an API key stops working (`None`: never).
pub async fn set_key_expiry(c: &mut Conn, key_id: &str, expires_at_us: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE api_keys SET expires_at = $2 WHERE id = $1")
        .bind(key_id)
        .bind(expires_at_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Signs out the session whose token hashes to `token_hash` (the console's
/// sign-out, which holds the token, not the session's id).
pub async fn revoke_by_token(c: &mut Conn, token_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The accounts a user's own credentials reach (accepted memberships), with
/// the role in each, oldest membership first; at most `limit`.
pub async fn accepted_memberships(
    c: &mut Conn,
    user_id: &str,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT account_id, role FROM memberships
         WHERE user_id = $1 AND accepted_at IS NOT NULL
         ORDER BY created_at, account_id LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("account_id").map_err(db_error)?,
                r.try_get("role").map_err(db_error)?,
            ))
        })
        .collect()
}
