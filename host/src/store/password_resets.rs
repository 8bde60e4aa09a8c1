//! Password resets: asked for by e-mail; the outbox mints each token when it
//! mails it, so no token is ever stored in clear (only its SHA-256).

use sqlx::Row;

use super::{Conn, db_error};
use crate::Result;

/// A reset the outbox is to mail.
#[derive(Debug, Clone)]
pub struct PendingReset {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub attempts: i64,
}

/// A reset found by its token.
#[derive(Debug, Clone)]
pub struct Reset {
    pub id: String,
    pub user_id: String,
    pub expires_at_us: i64,
    pub used_at_us: Option<i64>,
}

pub async fn insert(
    c: &mut Conn,
    id: &str,
    user_id: &str,
    expires_at_us: i64,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO password_resets (id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(user_id)
    .bind(expires_at_us)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Resets asked for by this user since `since_us`.
pub async fn count_since(c: &mut Conn, user_id: &str, since_us: i64) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM password_resets WHERE user_id = $1 AND created_at >= $2")
        .bind(user_id)
        .bind(since_us)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_error)
}

/// Claims undelivered, unexpired resets for one host until `claim_until_us`.
pub async fn claim_undelivered(
    c: &mut Conn,
    attempts_max: i64,
    now_us: i64,
    claim_until_us: i64,
    limit: i64,
) -> Result<Vec<PendingReset>> {
    let rows = sqlx::query(
        "SELECT r.id, r.user_id, u.email, r.attempts FROM password_resets r
         JOIN users u ON u.id = r.user_id
         WHERE r.delivered_at IS NULL AND r.used_at IS NULL AND r.attempts < $1
           AND r.expires_at > $2 AND (r.claimed_until IS NULL OR r.claimed_until < $2)
         ORDER BY r.id LIMIT $3",
    )
    .bind(attempts_max)
    .bind(now_us)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id").map_err(db_error)?;
        let won = sqlx::query(
            "UPDATE password_resets SET claimed_until = $2, attempts = attempts + 1
             WHERE id = $1 AND delivered_at IS NULL AND (claimed_until IS NULL OR claimed_until < $3)",
        )
        .bind(&id)
        .bind(claim_until_us)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
        if won.rows_affected() == 1 {
            claimed.push(PendingReset {
                id,
                user_id: r.try_get("user_id").map_err(db_error)?,
                email: r.try_get("email").map_err(db_error)?,
                attempts: r.try_get::<i64, _>("attempts").map_err(db_error)? + 1,
            });
        }
    }
    Ok(claimed)
}

/// Stores the hash of the token about to be mailed: a new one on each
/// attempt, so the token of an attempt that failed stops being valid.
pub async fn set_token(c: &mut Conn, id: &str, token_hash: &str) -> Result<()> {
    sqlx::query("UPDATE password_resets SET token_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(token_hash)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Records a delivery attempt: delivered, or the error.
pub async fn record_attempt(
    c: &mut Conn,
    id: &str,
    delivered_at_us: Option<i64>,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE password_resets SET delivered_at = $2, last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(delivered_at_us)
        .bind(error)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// A reset by the hash of its token (its mail may have reached the inbox
/// before the attempt was recorded).
pub async fn by_token(c: &mut Conn, token_hash: &str) -> Result<Option<Reset>> {
    let row = sqlx::query(
        "SELECT id, user_id, expires_at, used_at FROM password_resets
         WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| {
        Ok(Reset {
            id: r.try_get("id").map_err(db_error)?,
            user_id: r.try_get("user_id").map_err(db_error)?,
            expires_at_us: r.try_get("expires_at").map_err(db_error)?,
            used_at_us: r.try_get("used_at").map_err(db_error)?,
        })
    })
    .transpose()
}

/// Marks a reset used; false if it was used meanwhile.
pub async fn use_reset(c: &mut Conn, id: &str, now_us: i64) -> Result<bool> {
    let done =
        sqlx::query("UPDATE password_resets SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now_us)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}
