//! Membership chores: a member's role changed; an invitation resent under
//! a new token or revoked.

use sqlx::Row;

use super::{Conn, db_error, listing};
use crate::Result;
use crate::clock::from_us;
use crate::domain::Role;
use crate::ops::Page;

pub async fn set_role(c: &mut Conn, user_id: &str, account_id: &str, role: Role) -> Result<bool> {
    let done =
        sqlx::query("UPDATE memberships SET role = $3 WHERE user_id = $1 AND account_id = $2")
            .bind(user_id)
            .bind(account_id)
            .bind(role.as_str())
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// An open invitation of an account (not used, not expired).
#[derive(Debug, Clone)]
pub struct OpenInvitation {
    pub id: String,
    pub role: Role,
}

pub async fn open_invitation(
    c: &mut Conn,
    account_id: &str,
    invitation_id: &str,
    now_us: i64,
) -> Result<Option<OpenInvitation>> {
    let row = sqlx::query(
        "SELECT id, role FROM invitations
         WHERE id = $1 AND account_id = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(invitation_id)
    .bind(account_id)
    .bind(now_us)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| {
        let role: String = r.try_get("role").map_err(db_error)?;
        Ok(OpenInvitation {
            id: r.try_get("id").map_err(db_error)?,
            role: Role::parse(&role)
                .ok_or_else(|| crate::Error::internal("stored role is malformed"))?,
        })
    })
    .transpose()
}

/// An open invitation as its account's admins see it listed (never its
/// token: only a hash of it is kept).
#[derive(Debug, Clone)]
pub struct ListedInvitation {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One page of the account's open invitations (not used, not expired),
/// newest first.
pub async fn list_open(
    c: &mut Conn,
    account_id: &str,
    now_us: i64,
    page: &Page,
) -> Result<Vec<ListedInvitation>> {
    let q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, email, role, expires_at, created_at FROM invitations
         WHERE account_id = $1 AND used_at IS NULL AND expires_at > $2{}",
        listing::newest_first("", 3)
    )))
    .bind(account_id)
    .bind(now_us);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let role: String = r.try_get("role").map_err(db_error)?;
            Ok(ListedInvitation {
                id: r.try_get("id").map_err(db_error)?,
                email: r.try_get("email").map_err(db_error)?,
                role: Role::parse(&role)
                    .ok_or_else(|| crate::Error::internal("stored role is malformed"))?,
                expires_at: from_us(r.try_get("expires_at").map_err(db_error)?),
                created_at: from_us(r.try_get("created_at").map_err(db_error)?),
            })
        })
        .collect()
}

/// Gives an open invitation a new token and expiry: the old token stops
/// working in the same write.
pub async fn renew(
    c: &mut Conn,
    invitation_id: &str,
    token_hash: &str,
    expires_at_us: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE invitations SET token_hash = $2, expires_at = $3 WHERE id = $1 AND used_at IS NULL",
    )
    .bind(invitation_id)
    .bind(token_hash)
    .bind(expires_at_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Ends an open invitation now: its token is refused as expired.
pub async fn revoke(c: &mut Conn, invitation_id: &str, now_us: i64) -> Result<()> {
    sqlx::query("UPDATE invitations SET expires_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(invitation_id)
        .bind(now_us)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}
