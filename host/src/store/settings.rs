//! Host-wide settings kept in the database (the operator token's hash).

use sqlx::Row;

use super::{Conn, db_error};

pub async fn get(c: &mut Conn, key: &str) -> crate::Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.map(|r| r.try_get::<String, _>("value"))
        .transpose()
        .map_err(db_error)
}

/// Stores `value` unless the key is already set; returns the value in force,
/// so that two hosts starting at once agree on one.
pub async fn insert_if_absent(c: &mut Conn, key: &str, value: &str) -> crate::Result<String> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(get(c, key).await?.unwrap_or_default())
}

/// Stores `value` under `key`, replacing what was there.
pub async fn put(c: &mut Conn, key: &str, value: &str) -> crate::Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}
