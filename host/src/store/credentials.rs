//! Users, memberships, invitations, API keys and sessions.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::listing;
use super::{Conn, db_error, unique_violation};
use crate::clock::from_us;
use crate::domain::Role;
use crate::ops::Page;
use crate::{Error, Result};
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    /// The user used a token the platform sent to the e-mail itself.
    pub verified: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: chrono::DateTime<chrono::Utc>,
    /// The user accepted the membership (until then only keys issued with
    /// it reach the account).
    pub accepted: bool,
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub email_key: String,
    pub role: Role,
    pub expires_at_us: i64,
    pub used_at_us: Option<i64>,
    /// The user this invitation created itself: the only user whose
    /// credentials accepting it may set.
    pub created_user_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the key stops working (`None`: never).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// To the minute: uses are noted at most once a minute per key.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a bearer token resolves to.
#[derive(Debug, Clone)]
pub enum TokenOwner {
    /// An API key: acts as its user in the account it was created for.
    ApiKey {
        key_id: String,
        user_id: String,
        account_id: String,
        /// The user's role there; `None` once the membership is gone.
        role: Option<Role>,
        /// When a use of the key was last noted.
        last_used_us: Option<i64>,
    },
    /// A session: acts as its user in any account the user belongs to.
    Session { user_id: String },
}

fn user_from(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id").map_err(db_error)?,
        email: row.try_get("email").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        password_hash: row.try_get("password_hash").map_err(db_error)?,
        verified: row
            .try_get::<Option<i64>, _>("verified_at")
            .map_err(db_error)?
            .is_some(),
        created_at: from_us(row.try_get("created_at").map_err(db_error)?),
    })
}

pub async fn user_by_email_key(c: &mut Conn, email_key: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT * FROM users WHERE email_key = $1")
        .bind(email_key)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(user_from).transpose()
}

pub async fn user_by_id(c: &mut Conn, id: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(user_from).transpose()
}

/// Inserts a user; a user whose e-mail is taken already exists, and the
/// caller decides what that means.
pub async fn insert_user(c: &mut Conn, user: &User, email_key: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, email, email_key, name, password_hash, created_at, verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(email_key)
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(user.created_at.timestamp_micros())
    .execute(&mut *c)
    .await
    .map_err(|e| match unique_violation(&e) {
        Some(_) => Error::Conflict("a user with this e-mail already exists".into()),
        None => db_error(e),
    })?;
    Ok(())
}

/// Sets the name and first password of the user `invitation_id` created,
/// while that user has none and belongs to nothing else (no membership
/// outside the invitation's account); false otherwise. Open invitations
/// from elsewhere do not count: anyone may invite an e-mail, and that must
/// not stop its first admin from setting a password.
pub async fn set_first_credentials(
    c: &mut Conn,
    user_id: &str,
    invitation_id: &str,
    name: &str,
    password_hash: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET name = $2, password_hash = $3
         WHERE id = $1 AND password_hash IS NULL
           AND NOT EXISTS (SELECT 1 FROM memberships m, invitations i
                           WHERE i.id = $4 AND m.user_id = $1 AND m.account_id <> i.account_id)",
    )
    .bind(user_id)
    .bind(name)
    .bind(password_hash)
    .bind(invitation_id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// The user's role in the account, accepted or not.
pub async fn membership_role(
    c: &mut Conn,
    user_id: &str,
    account_id: &str,
) -> Result<Option<Role>> {
    role_where(c, user_id, account_id, "").await
}

/// The user's role in the account, only if the user accepted the
/// membership: what the user's own credentials (sessions) reach.
pub async fn accepted_role(c: &mut Conn, user_id: &str, account_id: &str) -> Result<Option<Role>> {
    role_where(c, user_id, account_id, " AND accepted_at IS NOT NULL").await
}

async fn role_where(
    c: &mut Conn,
    user_id: &str,
    account_id: &str,
    condition: &str,
) -> Result<Option<Role>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT role FROM memberships WHERE user_id = $1 AND account_id = $2{condition}"
    )))
    .bind(user_id)
    .bind(account_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    match row {
        Some(r) => {
            let role: String = r.try_get("role").map_err(db_error)?;
            Ok(Some(Role::parse(&role).ok_or_else(|| {
                Error::internal("stored role is malformed")
            })?))
        }
        None => Ok(None),
    }
}

/// Adds a membership; `accepted` when the user accepted it themselves
/// (otherwise only keys issued with it reach it until they do).
pub async fn insert_membership(
    c: &mut Conn,
    user_id: &str,
    account_id: &str,
    role: Role,
    accepted: bool,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO memberships (user_id, account_id, role, created_at, accepted_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(account_id)
    .bind(role.as_str())
    .bind(now_us)
    .bind(accepted.then_some(now_us))
    .execute(&mut *c)
    .await
    .map_err(|e| match unique_violation(&e) {
        Some(_) => Error::Conflict("this user is already a member of the account".into()),
        None => db_error(e),
    })?;
    Ok(())
}

/// Marks a membership accepted by its user.
pub async fn accept_membership(
    c: &mut Conn,
    user_id: &str,
    account_id: &str,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE memberships SET accepted_at = $3 WHERE user_id = $1 AND account_id = $2 AND accepted_at IS NULL",
    )
    .bind(user_id)
    .bind(account_id)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Removes a membership and revokes the keys made for it; the account's
/// data stays as it is.
pub async fn delete_membership(
    c: &mut Conn,
    user_id: &str,
    account_id: &str,
    now_us: i64,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND account_id = $2")
        .bind(user_id)
        .bind(account_id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE user_id = $1 AND account_id = $2 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(account_id)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

pub async fn count_admins(c: &mut Conn, account_id: &str) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM memberships WHERE account_id = $1 AND role = 'admin'")
        .bind(account_id)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_error)
}

/// Members of the account who accepted their membership (those who can
/// sign in to it).
pub async fn count_members(c: &mut Conn, account_id: &str) -> Result<i64> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM memberships WHERE account_id = $1 AND accepted_at IS NOT NULL",
    )
    .bind(account_id)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<i64, _>("n"))
    .map_err(db_error)
}

/// One page of an account's members, the newest membership first.
pub async fn list_members(c: &mut Conn, account_id: &str, page: &Page) -> Result<Vec<Member>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.account_id = $1{}",
        listing::newest_first_by("m.created_at", "u.id", 2)
    )))
    .bind(account_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(member_from).collect()
}

const MEMBER_SELECT: &str =
    "SELECT u.*, m.role, m.created_at AS joined_at, m.accepted_at FROM memberships m
         JOIN users u ON u.id = m.user_id";

/// One member of an account.
pub async fn member(c: &mut Conn, account_id: &str, user_id: &str) -> Result<Option<Member>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.account_id = $1 AND m.user_id = $2"
    )))
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.as_ref().map(member_from).transpose()
}

fn member_from(row: &AnyRow) -> Result<Member> {
    let role: String = row.try_get("role").map_err(db_error)?;
    Ok(Member {
        user: user_from(row)?,
        role: Role::parse(&role).ok_or_else(|| Error::internal("stored role is malformed"))?,
        joined_at: from_us(row.try_get("joined_at").map_err(db_error)?),
        accepted: row
            .try_get::<Option<i64>, _>("accepted_at")
            .map_err(db_error)?
            .is_some(),
    })
}

pub async fn insert_invitation(
    c: &mut Conn,
    inv: &Invitation,
    token_hash: &str,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO invitations (id, token_hash, account_id, email, email_key, role, expires_at, created_at, created_user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&inv.id)
    .bind(token_hash)
    .bind(&inv.account_id)
    .bind(&inv.email)
    .bind(&inv.email_key)
    .bind(inv.role.as_str())
    .bind(inv.expires_at_us)
    .bind(now_us)
    .bind(&inv.created_user_id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn invitation_by_token(c: &mut Conn, token_hash: &str) -> Result<Option<Invitation>> {
    let row = sqlx::query("SELECT * FROM invitations WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.map(|r| {
        let role: String = r.try_get("role").map_err(db_error)?;
        Ok(Invitation {
            id: r.try_get("id").map_err(db_error)?,
            account_id: r.try_get("account_id").map_err(db_error)?,
            email: r.try_get("email").map_err(db_error)?,
            email_key: r.try_get("email_key").map_err(db_error)?,
            role: Role::parse(&role).ok_or_else(|| Error::internal("stored role is malformed"))?,
            expires_at_us: r.try_get("expires_at").map_err(db_error)?,
            used_at_us: r.try_get("used_at").map_err(db_error)?,
            created_user_id: r.try_get("created_user_id").map_err(db_error)?,
        })
    })
    .transpose()
}

/// Marks an invitation used; false if it was used meanwhile (a token works
/// once, even when two requests race).
pub async fn use_invitation(c: &mut Conn, id: &str, now_us: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE invitations SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_api_key(c: &mut Conn, key: &ApiKey, secret_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, secret_hash, user_id, account_id, name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(secret_hash)
    .bind(&key.user_id)
    .bind(&key.account_id)
    .bind(&key.name)
    .bind(key.created_at.timestamp_micros())
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

fn key_from(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id").map_err(db_error)?,
        user_id: row.try_get("user_id").map_err(db_error)?,
        account_id: row.try_get("account_id").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        created_at: from_us(row.try_get("created_at").map_err(db_error)?),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")
            .map_err(db_error)?
            .map(from_us),
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")
            .map_err(db_error)?
            .map(from_us),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")
            .map_err(db_error)?
            .map(from_us),
    })
}

/// One page of an account's API keys, newest first.
pub async fn list_api_keys(c: &mut Conn, account_id: &str, page: &Page) -> Result<Vec<ApiKey>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, user_id, account_id, name, created_at, revoked_at, expires_at, last_used_at
         FROM api_keys WHERE account_id = $1{}",
        listing::newest_first("", 2)
    )))
    .bind(account_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(key_from).collect()
}

/// Keys of the account that still work: not revoked, not expired.
pub async fn count_live_api_keys(c: &mut Conn, account_id: &str, now_us: i64) -> Result<i64> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(account_id)
    .bind(now_us)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<i64, _>("n"))
    .map_err(db_error)
}

pub async fn revoke_api_key(
    c: &mut Conn,
    account_id: &str,
    key_id: &str,
    now_us: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
    )
    .bind(key_id)
    .bind(account_id)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_session(
    c: &mut Conn,
    id: &str,
    token_hash: &str,
    user_id: &str,
    expires_at_us: i64,
    now_us: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO sessions (id, token_hash, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at_us)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The owner of a live (unrevoked, unexpired) API key or session token.
pub async fn token_owner(
    c: &mut Conn,
    token_hash: &str,
    now_us: i64,
) -> Result<Option<TokenOwner>> {
    let key = sqlx::query(
        "SELECT k.id, k.user_id, k.account_id, k.last_used_at, m.role FROM api_keys k
         LEFT JOIN memberships m ON m.user_id = k.user_id AND m.account_id = k.account_id
         WHERE k.secret_hash = $1 AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > $2)",
    )
    .bind(token_hash)
    .bind(now_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    if let Some(row) = key {
        let role: Option<String> = row.try_get("role").map_err(db_error)?;
        return Ok(Some(TokenOwner::ApiKey {
            key_id: row.try_get("id").map_err(db_error)?,
            user_id: row.try_get("user_id").map_err(db_error)?,
            account_id: row.try_get("account_id").map_err(db_error)?,
            role: role.as_deref().and_then(Role::parse),
            last_used_us: row.try_get("last_used_at").map_err(db_error)?,
        }));
    }
    let session =
        sqlx::query("SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now_us)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_error)?;
    session
        .map(|row| {
            Ok(TokenOwner::Session {
                user_id: row.try_get("user_id").map_err(db_error)?,
            })
        })
        .transpose()
}

/// Whether an API key proves who its user is: live, for a membership the
/// user accepted, and made after the user proved the e-mail (a key from
/// before may be in the hands of whoever set the password then).
pub async fn key_proves_user(c: &mut Conn, key_id: &str, user_id: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS ok FROM api_keys k
         JOIN memberships m ON m.user_id = k.user_id AND m.account_id = k.account_id
         JOIN users u ON u.id = k.user_id
         WHERE k.id = $1 AND k.user_id = $2 AND k.revoked_at IS NULL
           AND m.accepted_at IS NOT NULL AND u.verified_at IS NOT NULL
           AND k.created_at >= u.verified_at",
    )
    .bind(key_id)
    .bind(user_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(row.is_some())
}

/// Sets a user's password after a password reset: the user is verified
/// from now on, and every session opened before ends.
pub async fn reset_password(
    c: &mut Conn,
    user_id: &str,
    password_hash: &str,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, verified_at = COALESCE(verified_at, $3) WHERE id = $1",
    )
    .bind(user_id)
    .bind(password_hash)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    // Every other reset token mailed for this user stops working too.
    sqlx::query("UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}
