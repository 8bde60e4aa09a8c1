//! Membership chores: changing a member's role, resending or revoking an
//! invitation. The same authority as inviting (`member.invite`); nobody
//! grants a role above their own, and an account keeps an admin.

use serde::Deserialize;

use super::parents::IssuedInvitation;
use super::{Canopy, Page, Paged, Principal, access::require_not_deleted};
use crate::domain::Role;
use crate::secrets::{new_secret, sha256_hex};
use crate::store::{self, credentials::Member};
use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin`, `advanced` or `basic`.
    #[schema(example = "advanced")]
    pub role: String,
}

/// How much a role may do: nobody grants more than they hold.
fn rank(role: Role) -> u8 {
    match role {
        Role::Admin => 3,
        Role::Advanced => 2,
        Role::Basic => 1,
    }
}

impl Canopy {
    /// Changes a member's role; the member's keys and sessions act with it
    /// from their next request.
    pub async fn change_member_role(
        &self,
        principal: &Principal,
        account_id: &str,
        user_id: &str,
        req: RoleChange,
    ) -> Result<Member> {
        let actor = self.enter(principal, account_id).await?;
        require_not_deleted(&actor.target)?;
        self.authorize(&actor, "member.invite", &["role"]).await?;
        let role = Role::parse(&req.role)
            .ok_or_else(|| Error::invalid("role", "must be `admin`, `advanced` or `basic`"))?;
        if rank(role) > rank(actor.role) {
            return Err(Error::Forbidden(format!(
                "you are `{}` and cannot grant `{}`",
                actor.role.as_str(),
                role.as_str()
            )));
        }
        let mut tx = self.store.begin().await?;
        // Two demotions at once must not both see a second admin.
        store::accounts::lock(&mut tx, account_id).await?;
        let current = store::credentials::membership_role(&mut tx, user_id, account_id)
            .await?
            .ok_or_else(|| Error::not_found("member", user_id))?;
        // Nor can anyone change a member who outranks them.
        if rank(current) > rank(actor.role) {
            return Err(Error::Forbidden(format!(
                "you are `{}` and cannot change the role of an `{}`",
                actor.role.as_str(),
                current.as_str()
            )));
        }
        if current == Role::Admin
            && role != Role::Admin
            && store::credentials::count_admins(&mut tx, account_id).await? <= 1
        {
            return Err(Error::Conflict(
                "this is the account's last admin; make another member admin first".into(),
            ));
        }
        store::membership::set_role(&mut tx, user_id, account_id, role).await?;
        let member = store::credentials::member(&mut tx, account_id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("member", user_id))?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(member)
    }

    /// A new token for an open invitation (the old one stops working), with
    /// a fresh expiry.
    pub async fn resend_invitation(
        &self,
        principal: &Principal,
        account_id: &str,
        invitation_id: &str,
    ) -> Result<IssuedInvitation> {
        let actor = self.enter(principal, account_id).await?;
        require_not_deleted(&actor.target)?;
        self.authorize(&actor, "member.invite", &[]).await?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        let open = self
            .open_invitation(&mut tx, account_id, invitation_id, now_us)
            .await?;
        if rank(open.role) > rank(actor.role) {
            return Err(Error::Forbidden(format!(
                "you are `{}` and cannot grant `{}`",
                actor.role.as_str(),
                open.role.as_str()
            )));
        }
        let token = new_secret("ci");
        let ttl_us =
            i64::try_from(self.settings.invitation_ttl.as_micros()).unwrap_or(i64::MAX / 2);
        let expires_at_us = now_us.saturating_add(ttl_us);
        store::membership::renew(
            &mut tx,
            &open.id,
            &sha256_hex(token.as_bytes()),
            expires_at_us,
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(IssuedInvitation {
            id: open.id,
            token,
            expires_at: crate::clock::from_us(expires_at_us),
        })
    }

    /// One member of the account, as listing the members shows it.
    pub async fn member(
        &self,
        principal: &Principal,
        account_id: &str,
        user_id: &str,
    ) -> Result<Member> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "member.list", &[]).await?;
        self.view(&actor, "member.list", "members").await?;
        let mut c = self.store.reader().await?;
        store::credentials::member(&mut c, account_id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("member", user_id))
    }

    /// The account's open invitations, newest first, a page at a time: as
    /// listing the members (`member.list`), without any token.
    pub async fn list_invitations(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<store::membership::ListedInvitation>> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "member.list", &[]).await?;
        self.view(&actor, "member.list", "invitations").await?;
        let mut c = self.store.reader().await?;
        let rows =
            store::membership::list_open(&mut c, account_id, self.clock.now_us(), page).await?;
        Ok(Paged::from_fetch(rows, page, |i| {
            super::keyset_cursor(i.created_at, &i.id)
        }))
    }

    /// Revokes an open invitation: its token is refused (410) from now on.
    pub async fn revoke_invitation(
        &self,
        principal: &Principal,
        account_id: &str,
        invitation_id: &str,
    ) -> Result<()> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "member.invite", &[]).await?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        let open = self
            .open_invitation(&mut tx, account_id, invitation_id, now_us)
            .await?;
        if rank(open.role) > rank(actor.role) {
            return Err(Error::Forbidden(format!(
                "you are `{}` and cannot revoke an invitation as `{}`",
                actor.role.as_str(),
                open.role.as_str()
            )));
        }
        store::membership::revoke(&mut tx, &open.id, now_us).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(())
    }

    async fn open_invitation(
        &self,
        c: &mut store::Conn,
        account_id: &str,
        invitation_id: &str,
        now_us: i64,
    ) -> Result<store::membership::OpenInvitation> {
        store::membership::open_invitation(c, account_id, invitation_id, now_us)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no open invitation `{invitation_id}` in this account (used, expired or revoked ones cannot be resent: invite again)"
                ))
            })
    }
}
