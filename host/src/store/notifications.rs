//! The notification outbox: written in the transaction that causes a
//! notification, delivered later (and listed at any time).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::listing;
use super::{Conn, db_error};
use crate::Result;
use crate::domain::Amount;
use crate::ops::Page;
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub threshold: Option<Amount>,
    pub budget: Option<Amount>,
    pub emails: Vec<String>,
    pub attempts: i64,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn from_row(r: &AnyRow) -> Result<Notification> {
    let amount = |col: &str| {
        r.try_get::<Option<i64>, _>(col)
            .map(|v| v.map(Amount::from_micros))
            .map_err(db_error)
    };
    Ok(Notification {
        id: r.try_get("id").map_err(db_error)?,
        account_id: r.try_get("account_id").map_err(db_error)?,
        kind: r.try_get("kind").map_err(db_error)?,
        threshold: amount("threshold_micros")?,
        budget: amount("budget_micros")?,
        emails: serde_json::from_str(&r.try_get::<String, _>("emails").map_err(db_error)?)
            .unwrap_or_default(),
        attempts: r.try_get("attempts").map_err(db_error)?,
        delivered_at: r
            .try_get::<Option<i64>, _>("delivered_at")
            .map_err(db_error)?
            .map(crate::clock::from_us),
        created_at: crate::clock::from_us(r.try_get("created_at").map_err(db_error)?),
    })
}

/// One page of an account's notifications, newest first.
pub async fn list(c: &mut Conn, account_id: &str, page: &Page) -> Result<Vec<Notification>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM notifications WHERE account_id = $1{}",
        listing::newest_first("", 2)
    )))
    .bind(account_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// Claims up to `limit` undelivered notifications for this host until
/// `claim_until_us`: those no other host holds and not yet given up on.
pub async fn claim_undelivered(
    c: &mut Conn,
    attempts_max: i64,
    now_us: i64,
    claim_until_us: i64,
    limit: i64,
) -> Result<Vec<Notification>> {
    let due = sqlx::query(
        "SELECT id FROM notifications
         WHERE delivered_at IS NULL AND attempts < $1 AND (claimed_until IS NULL OR claimed_until < $2)
         ORDER BY id LIMIT $3",
    )
    .bind(attempts_max)
    .bind(now_us)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    let mut claimed = Vec::new();
    for row in due {
        let id: String = row.try_get("id").map_err(db_error)?;
        let got = sqlx::query(
            "UPDATE notifications SET claimed_until = $2, attempts = attempts + 1
             WHERE id = $1 AND delivered_at IS NULL AND (claimed_until IS NULL OR claimed_until < $3)
             RETURNING *",
        )
        .bind(&id)
        .bind(claim_until_us)
        .bind(now_us)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
        if let Some(row) = got {
            claimed.push(from_row(&row)?);
        }
    }
    Ok(claimed)
}

/// Records the outcome of a delivery attempt.
pub async fn record_attempt(
    c: &mut Conn,
    id: &str,
    delivered_at_us: Option<i64>,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE notifications SET delivered_at = $2, last_error = $3, claimed_until = NULL WHERE id = $1")
        .bind(id)
        .bind(delivered_at_us)
        .bind(error)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}
