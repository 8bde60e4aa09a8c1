//! Stored first responses for `Idempotency-Key` replays.

use sqlx::Row;

use super::{Conn, db_error};
use crate::Result;

/// A first request that has not answered in this long is taken to have died
/// with its host, and the key may be used again.
pub const IN_PROGRESS_STALE_US: i64 = 5 * 60 * 1_000_000;
/// Keys are kept 24 hours (API.md).
pub const RETENTION_US: i64 = 24 * 60 * 60 * 1_000_000;

#[derive(Debug, Clone)]
pub enum Claim {
    /// This request is the first with the key: run it, then `complete`.
    First,
    /// The key answered before; replay this.
    Replay {
        request_hash: String,
        status: u16,
        content_type: String,
        body: String,
    },
    /// The first request with the key is still running.
    InProgress { request_hash: String },
}

/// Claims `(scope, key)` for a request, or says what the key already holds.
pub async fn claim(
    c: &mut Conn,
    scope: &str,
    key: &str,
    request_hash: &str,
    now_us: i64,
) -> Result<Claim> {
    // Forget a key past retention, or one whose first request died.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2
           AND (created_at < $3 OR (status_code IS NULL AND created_at < $4))",
    )
    .bind(scope)
    .bind(key)
    .bind(now_us - RETENTION_US)
    .bind(now_us - IN_PROGRESS_STALE_US)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::First);
    }
    let row = sqlx::query(
        "SELECT request_hash, status_code, content_type, response_body FROM idempotency_keys
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *c)
    .await
    .map_err(db_error)?;
    let request_hash: String = row.try_get("request_hash").map_err(db_error)?;
    Ok(
        match row
            .try_get::<Option<i64>, _>("status_code")
            .map_err(db_error)?
        {
            None => Claim::InProgress { request_hash },
            Some(status) => Claim::Replay {
                request_hash,
                status: status as u16,
                content_type: row
                    .try_get::<Option<String>, _>("content_type")
                    .map_err(db_error)?
                    .unwrap_or_default(),
                body: row
                    .try_get::<Option<String>, _>("response_body")
                    .map_err(db_error)?
                    .unwrap_or_default(),
            },
        },
    )
}

pub async fn complete(
    c: &mut Conn,
    scope: &str,
    key: &str,
    status: u16,
    content_type: &str,
    body: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status_code = $3, content_type = $4, response_body = $5
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i64::from(status))
    .bind(content_type)
    .bind(body)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Releases a key whose request failed with a 5xx, so the client may retry.
pub async fn release(c: &mut Conn, scope: &str, key: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status_code IS NULL",
    )
    .bind(scope)
    .bind(key)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Drops keys past retention; run now and then.
pub async fn purge(c: &mut Conn, now_us: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_us - RETENTION_US)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}
