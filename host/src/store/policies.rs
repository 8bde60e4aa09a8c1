//! Uploaded policies, their versions, and the generation every host polls.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, db_error};
use crate::Result;

/// The owner of platform policies.
pub const PLATFORM: &str = "platform";

#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub hook: String,
    pub active_version: Option<i64>,
    pub mode: Option<String>,
    /// A second version evaluated in shadow beside the enforced one.
    pub shadow_version: Option<i64>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub policy_id: String,
    pub version: i64,
    pub runtime: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub created_at_us: i64,
}

/// An active version with its source, for loading the registry.
#[derive(Debug, Clone)]
pub struct ActiveRow {
    pub policy_id: String,
    pub name: String,
    pub owner: String,
    pub hook: String,
    pub version: i64,
    pub mode: String,
    pub runtime: String,
    pub source: String,
}

const SELECT: &str = "SELECT id, owner, name, hook, active_version, mode, shadow_version, created_at, updated_at FROM policies";

fn policy(r: &AnyRow) -> Result<PolicyRow> {
    let get = || -> Result<PolicyRow, sqlx::Error> {
        Ok(PolicyRow {
            id: r.try_get("id")?,
            owner: r.try_get("owner")?,
            name: r.try_get("name")?,
            hook: r.try_get("hook")?,
            active_version: r.try_get("active_version")?,
            mode: r.try_get("mode")?,
            shadow_version: r.try_get("shadow_version")?,
            created_at_us: r.try_get("created_at")?,
            updated_at_us: r.try_get("updated_at")?,
        })
    };
    get().map_err(db_error)
}

pub async fn by_name(c: &mut Conn, owner: &str, name_key: &str) -> Result<Option<PolicyRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE owner = $1 AND name_key = $2"
    )))
    .bind(owner)
    .bind(name_key)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.as_ref().map(policy).transpose()
}

/// Locks a policy's row until the transaction ends (nothing if there is no
/// such row), so that changes to which versions run are made one at a time.
pub async fn lock(c: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("UPDATE policies SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn get(c: &mut Conn, owner: &str, id: &str) -> Result<Option<PolicyRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE owner = $1 AND id = $2"
    )))
    .bind(owner)
    .bind(id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.as_ref().map(policy).transpose()
}

pub async fn list(c: &mut Conn, owner: &str) -> Result<Vec<PolicyRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE owner = $1 ORDER BY id"
    )))
    .bind(owner)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter().map(policy).collect()
}

/// Policies an owner may keep.
pub async fn count(c: &mut Conn, owner: &str) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM policies WHERE owner = $1")
        .bind(owner)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_error)
}

pub async fn versions(c: &mut Conn, policy_id: &str) -> Result<Vec<VersionRow>> {
    let rows = sqlx::query(
        "SELECT policy_id, version, runtime, sha256, size_bytes, created_at
           FROM policy_versions WHERE policy_id = $1 ORDER BY version",
    )
    .bind(policy_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(VersionRow {
                policy_id: r.try_get("policy_id")?,
                version: r.try_get("version")?,
                runtime: r.try_get("runtime")?,
                sha256: r.try_get("sha256")?,
                size_bytes: r.try_get("size_bytes")?,
                created_at_us: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

pub struct NewPolicy<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub name: &'a str,
    pub name_key: &'a str,
    pub hook: &'a str,
}

pub async fn insert(c: &mut Conn, p: &NewPolicy<'_>, now_us: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO policies (id, owner, name, name_key, hook, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(p.id)
    .bind(p.owner)
    .bind(p.name)
    .bind(p.name_key)
    .bind(p.hook)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(|e| match super::unique_violation(&e) {
        Some(_) => crate::Error::Conflict(format!(
            "policy `{}` was created by another request at the same time; retry",
            p.name
        )),
        None => db_error(e),
    })?;
    Ok(())
}

pub struct NewVersion<'a> {
    pub policy_id: &'a str,
    pub runtime: &'a str,
    pub source: &'a str,
    pub sha256: &'a str,
    pub size_bytes: i64,
}

/// Adds the next version of a policy and returns its number. The primary
/// key makes two concurrent uploads of one name take different numbers or
/// fail, never share one.
pub async fn add_version(c: &mut Conn, v: &NewVersion<'_>, now_us: i64) -> Result<i64> {
    let next: i64 = sqlx::query(
        "SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) AS next FROM policy_versions WHERE policy_id = $1",
    )
    .bind(v.policy_id)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get("next"))
    .map_err(db_error)?;
    sqlx::query(
        "INSERT INTO policy_versions (policy_id, version, runtime, source, sha256, size_bytes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(v.policy_id)
    .bind(next)
    .bind(v.runtime)
    .bind(v.source)
    .bind(v.sha256)
    .bind(v.size_bytes)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(|e| match super::unique_violation(&e) {
        Some(_) => crate::Error::Conflict(
            "another version of this policy was uploaded at the same time; retry".into(),
        ),
        None => db_error(e),
    })?;
    sqlx::query("UPDATE policies SET updated_at = $2 WHERE id = $1")
        .bind(v.policy_id)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(next)
}

/// Whether `version` of the policy exists.
pub async fn has_version(c: &mut Conn, policy_id: &str, version: i64) -> Result<bool> {
    let row =
        sqlx::query("SELECT 1 AS one FROM policy_versions WHERE policy_id = $1 AND version = $2")
            .bind(policy_id)
            .bind(version)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?;
    Ok(row.is_some())
}

/// Stores which versions run (`active_version`, `mode`, `shadow_version`;
/// see [`crate::policy::canary::Slots`]) and bumps the generation so every
/// host reloads.
pub async fn set_slots(
    c: &mut Conn,
    policy_id: &str,
    slots: crate::policy::canary::Slots,
    now_us: i64,
) -> Result<()> {
    let (active, mode, shadow) = slots.columns();
    sqlx::query(
        "UPDATE policies SET active_version = $2, mode = $3, shadow_version = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(policy_id)
    .bind(active)
    .bind(mode)
    .bind(shadow)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    bump_generation(c).await
}

/// The stored runtime and source (Rhai text, or the component in base64)
/// of one version.
pub async fn source(
    c: &mut Conn,
    policy_id: &str,
    version: i64,
) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT runtime, source FROM policy_versions WHERE policy_id = $1 AND version = $2",
    )
    .bind(policy_id)
    .bind(version)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| Ok((r.try_get("runtime")?, r.try_get("source")?)))
        .transpose()
        .map_err(db_error)
}

/// Deletes a policy of `owner` and its versions if no version of it runs.
/// The conditional UPDATE comes first so that it holds the row (PostgreSQL)
/// against an activation racing this deletion. Returns whether it deleted.
pub async fn delete_inactive(
    c: &mut Conn,
    owner: &str,
    policy_id: &str,
    now_us: i64,
) -> Result<bool> {
    let held = sqlx::query(
        "UPDATE policies SET updated_at = $3
          WHERE id = $1 AND owner = $2 AND active_version IS NULL AND shadow_version IS NULL",
    )
    .bind(policy_id)
    .bind(owner)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?
    .rows_affected();
    if held == 0 {
        return Ok(false);
    }
    for sql in [
        "DELETE FROM policy_versions WHERE policy_id = $1",
        "DELETE FROM policies WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(policy_id)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    }
    Ok(true)
}

/// Locks the owner's row until the transaction ends (a tree: its parent's
/// account; the platform: the generation row), so the count of its
/// policies read next still holds at commit.
pub async fn lock_owner(c: &mut Conn, owner: &str) -> Result<()> {
    if owner == PLATFORM {
        sqlx::query("UPDATE policy_generation SET generation = generation WHERE id = 1")
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    } else {
        super::accounts::lock(c, owner).await?;
    }
    Ok(())
}

pub async fn bump_generation(c: &mut Conn) -> Result<()> {
    sqlx::query("UPDATE policy_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn generation(c: &mut Conn) -> Result<i64> {
    sqlx::query("SELECT generation FROM policy_generation WHERE id = 1")
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get("generation"))
        .map_err(db_error)
}

/// Every active version, platform and trees, with its source: the version
/// in `active_version` in its `mode`, and a `shadow_version` in shadow.
pub async fn active(c: &mut Conn) -> Result<Vec<ActiveRow>> {
    let rows = sqlx::query(
        "SELECT p.id AS id, p.name AS name, p.owner AS owner, p.hook AS hook, v.version AS version,
                p.mode AS mode, v.runtime AS runtime, v.source AS source, p.created_at AS created_at
           FROM policies p
           JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.active_version
          WHERE p.active_version IS NOT NULL
         UNION ALL
         SELECT p.id, p.name, p.owner, p.hook, v.version, 'shadow', v.runtime, v.source, p.created_at
           FROM policies p
           JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.shadow_version
          WHERE p.shadow_version IS NOT NULL
          ORDER BY created_at, id, mode",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(ActiveRow {
                policy_id: r.try_get("id")?,
                name: r.try_get("name")?,
                owner: r.try_get("owner")?,
                hook: r.try_get("hook")?,
                version: r.try_get("version")?,
                mode: r.try_get("mode")?,
                runtime: r.try_get("runtime")?,
                source: r.try_get("source")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}
