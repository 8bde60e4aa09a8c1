//! Users of an account: members and their invitations, accepting an
//! invitation, sessions and API keys.

use serde::Deserialize;

use super::access::require_not_deleted;
use super::parents::{IssuedInvitation, IssuedKey, short_text};
use super::{Canopy, Page, Paged, Principal};
use crate::domain::{EmailAddress, Relation, Role, Status};
use crate::secrets::{hash_password, new_id, new_secret, sha256_hex, verify_password_or_dummy};
use crate::store;
use crate::store::accounts::StatusChange;
use crate::store::credentials::{ApiKey, Invitation, Member, User};
use crate::{Error, Result};

/// Shortest and longest password accepted.
const PASSWORD_LEN_MIN: usize = 10;
const PASSWORD_LEN_MAX: usize = 1024;
/// Live API keys one account may hold.
const API_KEYS_MAX: i64 = 100;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub email: String,
    #[schema(example = "basic")]
    pub role: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    pub token: String,
    /// Required when the invitation creates the user (or sets the
    /// credentials of the user it created).
    #[serde(default)]
    pub name: Option<String>,
    /// The new password; or, for a user who already exists, their current
    /// one as proof (unless their session or key is in `Authorization`).
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// When the key stops working (RFC 3339, in the future); default never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone)]
pub struct InvitedMember {
    pub email: String,
    pub role: Role,
    pub invitation: IssuedInvitation,
}

#[derive(Debug, Clone)]
pub struct Accepted {
    pub user: User,
    pub account_id: String,
    pub role: Role,
    pub api_key: IssuedKey,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) fn password(value: &str) -> Result<&str> {
    let n = value.chars().count();
    if !(PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&n) {
        return Err(Error::invalid(
            "password",
            format!("must be {PASSWORD_LEN_MIN} to {PASSWORD_LEN_MAX} characters"),
        ));
    }
    Ok(value)
}

/// argon2 is deliberately slow and memory-hungry: run it off the async
/// workers, within the process's hashing slots (429 when none frees up in
/// time).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    crate::secrets::hashing(f).await
}

impl Canopy {
    pub async fn list_members(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<Member>> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "member.list", &[]).await?;
        self.view(&actor, "member.list", "members").await?;
        let mut c = self.store.reader().await?;
        let rows = store::credentials::list_members(&mut c, account_id, page).await?;
        Ok(Paged::from_fetch(rows, page, |m| {
            super::keyset_cursor(m.joined_at, &m.user.id)
        }))
    }

    pub async fn invite_member(
        &self,
        principal: &Principal,
        account_id: &str,
        req: NewMember,
    ) -> Result<InvitedMember> {
        let actor = self.enter(principal, account_id).await?;
        require_not_deleted(&actor.target)?;
        self.authorize(&actor, "member.invite", &["email", "role"])
            .await?;
        let email = EmailAddress::parse(&req.email).map_err(|r| Error::invalid("email", r))?;
        let role = Role::parse(&req.role)
            .ok_or_else(|| Error::invalid("role", "must be `admin`, `advanced` or `basic`"))?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        if let Some(user) =
            store::credentials::user_by_email_key(&mut tx, email.key().as_str()).await?
            && store::credentials::membership_role(&mut tx, &user.id, account_id)
                .await?
                .is_some()
        {
            return Err(Error::Conflict(format!(
                "{} is already a member of this account",
                email.as_str()
            )));
        }
        let invitation = self
            .issue_invitation(&mut tx, account_id, &email, role, None, now_us)
            .await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(InvitedMember {
            email: email.as_str().to_string(),
            role,
            invitation,
        })
    }

    /// Removes a member; the account's data stays, the member's keys for it
    /// are revoked. An account keeps at least one admin.
    pub async fn remove_member(
        &self,
        principal: &Principal,
        account_id: &str,
        user_id: &str,
    ) -> Result<()> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "member.remove", &[]).await?;
        let mut tx = self.store.begin().await?;
        // A removal and a demotion at once must not both see a second admin
        // (`change_member_role` takes the same lock).
        store::accounts::lock(&mut tx, account_id).await?;
        let role = store::credentials::membership_role(&mut tx, user_id, account_id)
            .await?
            .ok_or_else(|| Error::not_found("member", user_id))?;
        if role == Role::Admin && store::credentials::count_admins(&mut tx, account_id).await? <= 1
        {
            return Err(Error::Conflict(
                "this is the account's last admin; make another member admin first".into(),
            ));
        }
        store::credentials::delete_membership(&mut tx, user_id, account_id, self.clock.now_us())
            .await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(())
    }

    /// Accepts an invitation (invariant 6). The token only names the
    /// membership; credentials are set only for the user the invitation
    /// created itself (a new user, or the first admin of a new parent who
    /// has none yet). A user who exists otherwise must prove to be that
    /// user (their password, or their own session or key as `proof`) and
    /// must be verified, so that nobody who merely holds a token binds a
    /// membership to credentials they chose.
    pub async fn accept_invitation(
        &self,
        req: Acceptance,
        proof: Option<Principal>,
        client: Option<std::net::IpAddr>,
    ) -> Result<Accepted> {
        let token_hash = sha256_hex(req.token.as_bytes());
        let now_us = self.clock.now_us();
        let invitation = {
            let mut c = self.store.reader().await?;
            store::credentials::invitation_by_token(&mut c, &token_hash).await?
        }
        .ok_or_else(|| {
            Error::NotFound("no invitation has this token; check that it was copied whole".into())
        })?;
        if invitation.used_at_us.is_some() {
            return Err(Error::InvitationExpired(
                "this invitation was already used; ask for a new one".into(),
            ));
        }
        if invitation.expires_at_us <= now_us {
            return Err(Error::InvitationExpired(
                "this invitation has expired; ask the account's admin for a new one".into(),
            ));
        }
        let existing = {
            let mut c = self.store.reader().await?;
            store::credentials::user_by_email_key(&mut c, &invitation.email_key).await?
        };
        let credentials = match &existing {
            Some(user) if !self.sets_credentials(&invitation, user) => {
                self.prove_user(user, req.password.as_deref(), proof, client)
                    .await?;
                None
            }
            _ => {
                let name = short_text(
                    "name",
                    req.name
                        .as_deref()
                        .ok_or_else(|| Error::invalid("name", "is required: send your name"))?,
                )?;
                let password = password(req.password.as_deref().ok_or_else(|| {
                    Error::invalid("password", "is required: send the password to sign in with")
                })?)?
                .to_string();
                let hash = blocking(move || hash_password(&password))
                    .await?
                    .map_err(Error::internal)?;
                Some((name, hash))
            }
        };

        let mut tx = self.store.begin().await?;
        if !store::credentials::use_invitation(&mut tx, &invitation.id, now_us).await? {
            return Err(Error::InvitationExpired(
                "this invitation was already used; ask for a new one".into(),
            ));
        }
        let email = EmailAddress::parse(&invitation.email).map_err(Error::internal)?;
        let user = match (existing, &credentials) {
            (Some(user), Some((name, hash))) => {
                // Only the user this invitation created, still without
                // credentials: checked again under the write.
                if !store::credentials::set_first_credentials(
                    &mut tx,
                    &user.id,
                    &invitation.id,
                    name,
                    hash,
                )
                .await?
                {
                    return Err(Error::Unauthenticated(
                        "a user with this e-mail already belongs to another account; to join as that user, send their current password or their session token (a password reset mailed to the e-mail sets one)".into(),
                    ));
                }
                user
            }
            (Some(user), None) => user,
            (None, Some((name, hash))) => {
                let user = User {
                    id: new_id("usr"),
                    email: email.as_str().to_string(),
                    name: Some(name.clone()),
                    password_hash: Some(hash.clone()),
                    verified: false,
                    created_at: crate::clock::from_us(now_us),
                };
                store::credentials::insert_user(&mut tx, &user, email.key().as_str()).await?;
                user
            }
            (None, None) => return Err(Error::internal("acceptance without a user")),
        };
        let role =
            match store::credentials::membership_role(&mut tx, &user.id, &invitation.account_id)
                .await?
            {
                Some(role) => {
                    store::credentials::accept_membership(
                        &mut tx,
                        &user.id,
                        &invitation.account_id,
                        now_us,
                    )
                    .await?;
                    role
                }
                None => {
                    store::credentials::insert_membership(
                        &mut tx,
                        &user.id,
                        &invitation.account_id,
                        invitation.role,
                        true,
                        now_us,
                    )
                    .await?;
                    invitation.role
                }
            };
        let account = store::accounts::get(&mut tx, &invitation.account_id)
            .await?
            .ok_or_else(|| Error::internal("invited account vanished"))?;
        crate::crashpoint::pause(crate::crashpoint::BEFORE_ACCEPTANCE_STATUS).await;
        let change = match account.status {
            Status::Deleted => {
                return Err(Error::InvitationExpired(
                    "the invited account was deleted".into(),
                ));
            }
            Status::Invited => Some(StatusChange {
                from: Status::Invited,
                to: Status::Active,
                previous_status: None,
                suspended_by: None,
            }),
            // Suspended with its parent while still invited: it comes back active.
            Status::Suspended if account.previous_status == Some(Status::Invited) => {
                Some(StatusChange {
                    from: Status::Suspended,
                    to: Status::Suspended,
                    previous_status: Some(Status::Active),
                    suspended_by: account.suspended_by,
                })
            }
            _ => None,
        };
        if let Some(change) = change
            && !store::accounts::change_status(&mut tx, &account.id, change, now_us).await?
        {
            // Its status changed since it was read (a suspension racing
            // this acceptance): nothing is written, the invitation stays
            // usable.
            return Err(Error::Conflict(
                "the invited account changed status meanwhile; accept the invitation again".into(),
            ));
        }
        let api_key = self
            .issue_key(&mut tx, &user.id, &account.id, "invitation", now_us)
            .await?;
        let user = store::credentials::user_by_id(&mut tx, &user.id)
            .await?
            .ok_or_else(|| Error::internal("user vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(user = %user.id, account = %account.id, "invitation accepted");
        Ok(Accepted {
            user,
            account_id: account.id,
            role,
            api_key,
        })
    }

    /// Whether accepting `invitation` sets `user`'s credentials: only for
    /// the user it created itself, while that user has none.
    fn sets_credentials(&self, invitation: &Invitation, user: &User) -> bool {
        invitation.created_user_id.as_deref() == Some(user.id.as_str())
            && user.password_hash.is_none()
    }

    /// Checks that the caller is `user` (their password, or their own
    /// session or key) and that `user` is verified. A password is guessed
    /// no faster here than at `/v1/sessions`: the same limits apply.
    async fn prove_user(
        &self,
        user: &User,
        password: Option<&str>,
        proof: Option<Principal>,
        client: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let how = "a user with this e-mail already exists; to join as that user, send their current password, or their session token or API key in `Authorization`";
        let proven = match proof {
            Some(Principal::User { user_id, .. }) if user_id != user.id => {
                return Err(Error::Unauthenticated(format!(
                    "the token in `Authorization` belongs to another user; {how}"
                )));
            }
            Some(Principal::User { key: None, .. }) => true,
            // A key proves its user only if it is theirs in every sense: a
            // membership they accepted, made after they proved the e-mail.
            Some(Principal::User {
                user_id,
                key: Some(grant),
            }) => {
                let mut c = self.store.reader().await?;
                if !store::credentials::key_proves_user(&mut c, &grant.key_id, &user_id).await? {
                    return Err(Error::Unauthenticated(format!(
                        "this API key does not prove who you are (it was made before the e-mail was proven, or for a membership not accepted); send your session token or password instead. {how}"
                    )));
                }
                true
            }
            Some(Principal::Operator) => {
                return Err(Error::Unauthenticated(format!(
                    "the operator token proves no user; {how}"
                )));
            }
            None => {
                let email = EmailAddress::parse(&user.email).map_err(Error::internal)?;
                let attempt =
                    self.logins
                        .begin(email.key().as_str(), client, self.clock.now_us())?;
                let pw = password.unwrap_or_default().to_string();
                let stored = user.password_hash.clone();
                let ok = blocking(move || verify_password_or_dummy(&pw, stored.as_deref())).await?;
                if ok {
                    attempt.succeeded(self.clock.now_us());
                } else {
                    attempt.failed(self.clock.now_us());
                }
                ok
            }
        };
        if !proven {
            return Err(Error::Unauthenticated(how.into()));
        }
        if !user.verified {
            return Err(Error::Forbidden(format!(
                "{} has not verified this e-mail yet: ask for a password reset (POST /v1/password-resets {{\"email\"}}), use the token mailed to it, then accept again",
                user.email
            )));
        }
        Ok(())
    }

    /// Signs in with e-mail and password. Attempts are limited per e-mail
    /// and per `client` address (`ops::login`), and an unknown e-mail or a
    /// user without a password costs the same argon2 check as a known one.
    pub async fn create_session(
        &self,
        req: Credentials,
        client: Option<std::net::IpAddr>,
    ) -> Result<Session> {
        let wrong = || Error::Unauthenticated("wrong e-mail or password".into());
        let email = EmailAddress::parse(&req.email).map_err(|_| wrong())?;
        let attempt = self
            .logins
            .begin(email.key().as_str(), client, self.clock.now_us())?;
        let user = {
            let mut c = self.store.reader().await?;
            store::credentials::user_by_email_key(&mut c, email.key().as_str()).await?
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let pw = req.password.clone();
        let verified = blocking(move || verify_password_or_dummy(&pw, stored.as_deref())).await?;
        let Some(user) = user.filter(|_| verified) else {
            attempt.failed(self.clock.now_us());
            return Err(wrong());
        };
        attempt.succeeded(self.clock.now_us());
        let token = new_secret("cs");
        let now_us = self.clock.now_us();
        let ttl_us = i64::try_from(self.settings.session_ttl.as_micros()).unwrap_or(i64::MAX / 2);
        let expires_at_us = now_us.saturating_add(ttl_us);
        let mut tx = self.store.begin().await?;
        store::credentials::insert_session(
            &mut tx,
            &new_id("ses"),
            &sha256_hex(token.as_bytes()),
            &user.id,
            expires_at_us,
            now_us,
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(Session {
            token,
            expires_at: crate::clock::from_us(expires_at_us),
        })
    }

    /// A new API key for the caller's own membership in the account.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        account_id: &str,
        req: NewApiKey,
    ) -> Result<IssuedKey> {
        let actor = self.enter(principal, account_id).await?;
        require_not_deleted(&actor.target)?;
        self.authorize(&actor, "apikey.create", &["name"]).await?;
        if actor.relation == Relation::ParentOf {
            return Err(Error::Forbidden(
                "a parent admin's key already reaches its sub-accounts; create keys in the parent account, or invite a member to the sub-account".into(),
            ));
        }
        let name = short_text("name", &req.name)?;
        let expires_at_us = self.key_expiry(req.expires_at)?;
        let mut tx = self.store.begin().await?;
        // The count below holds until commit: parallel creations wait here.
        store::accounts::lock(&mut tx, account_id).await?;
        if store::credentials::count_live_api_keys(&mut tx, account_id, self.clock.now_us()).await?
            >= API_KEYS_MAX
        {
            return Err(Error::Conflict(format!(
                "this account already has {API_KEYS_MAX} live API keys; revoke unused ones first"
            )));
        }
        let key = self
            .issue_key(
                &mut tx,
                &actor.user_id,
                account_id,
                &name,
                self.clock.now_us(),
            )
            .await?;
        if expires_at_us.is_some() {
            store::sessions::set_key_expiry(&mut tx, &key.id, expires_at_us).await?;
        }
        tx.commit().await.map_err(store::db_error)?;
        Ok(key)
    }

    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<ApiKey>> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "apikey.list", &[]).await?;
        self.view(&actor, "apikey.list", "api_keys").await?;
        let mut c = self.store.reader().await?;
        let rows = store::credentials::list_api_keys(&mut c, account_id, page).await?;
        Ok(Paged::from_fetch(rows, page, |k| {
            super::keyset_cursor(k.created_at, &k.id)
        }))
    }

    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        account_id: &str,
        key_id: &str,
    ) -> Result<()> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "apikey.revoke", &[]).await?;
        let mut tx = self.store.begin().await?;
        if !store::credentials::revoke_api_key(&mut tx, account_id, key_id, self.clock.now_us())
            .await?
        {
            return Err(Error::not_found("live API key", key_id));
        }
        tx.commit().await.map_err(store::db_error)?;
        Ok(())
    }
}
