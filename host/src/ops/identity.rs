//! Proving an e-mail (invariant 6): a password reset asked for by e-mail,
//! whose token the outbox mints and mails to that e-mail only. Using it
//! sets the password, marks the user verified and ends every session
//! opened before.

use serde::Deserialize;

use super::Canopy;
use super::members::{blocking, password};
use crate::domain::EmailAddress;
use crate::secrets::{hash_password, new_id, sha256_hex};
use crate::store;
use crate::store::credentials::User;
use crate::{Error, Result};

/// How long a mailed reset token stays valid.
pub const RESET_TTL_US: i64 = 60 * 60 * 1_000_000;
/// Resets one user may ask for per hour (more are dropped silently, so the
/// route cannot be used to flood a mailbox).
const RESETS_PER_HOUR_MAX: i64 = 3;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmation {
    pub token: String,
    pub password: String,
}

impl Canopy {
    /// Queues a reset for the user with this e-mail, if there is one. The
    /// answer is the same whether or not there is.
    pub async fn request_password_reset(&self, req: ResetRequest) -> Result<()> {
        let email = EmailAddress::parse(&req.email).map_err(|r| Error::invalid("email", r))?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        let Some(user) =
            store::credentials::user_by_email_key(&mut tx, email.key().as_str()).await?
        else {
            return Ok(());
        };
        let recent =
            store::password_resets::count_since(&mut tx, &user.id, now_us - 3_600_000_000).await?;
        if recent >= RESETS_PER_HOUR_MAX {
            tracing::warn!(user = %user.id, "password reset not queued: too many this hour");
            return Ok(());
        }
        store::password_resets::insert(
            &mut tx,
            &new_id("pwr"),
            &user.id,
            now_us + RESET_TTL_US,
            now_us,
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(user = %user.id, "password reset queued");
        Ok(())
    }

    /// Uses a mailed reset token: sets the password and verifies the user.
    pub async fn confirm_password_reset(&self, req: ResetConfirmation) -> Result<User> {
        let pw = password(&req.password)?.to_string();
        let now_us = self.clock.now_us();
        let reset = {
            let mut c = self.store.reader().await?;
            store::password_resets::by_token(&mut c, &sha256_hex(req.token.as_bytes())).await?
        }
        .ok_or_else(|| {
            Error::NotFound(
                "no password reset has this token; use the newest token mailed to you, copied whole"
                    .into(),
            )
        })?;
        if reset.used_at_us.is_some() || reset.expires_at_us <= now_us {
            return Err(Error::InvitationExpired(
                "this password-reset token was used or has expired; ask for a new one".into(),
            ));
        }
        let hash = blocking(move || hash_password(&pw))
            .await?
            .map_err(Error::internal)?;
        let mut tx = self.store.begin().await?;
        if !store::password_resets::use_reset(&mut tx, &reset.id, now_us).await? {
            return Err(Error::InvitationExpired(
                "this password-reset token was already used; ask for a new one".into(),
            ));
        }
        store::credentials::reset_password(&mut tx, &reset.user_id, &hash, now_us).await?;
        let user = store::credentials::user_by_id(&mut tx, &reset.user_id)
            .await?
            .ok_or_else(|| Error::internal("user vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(user = %user.id, "password reset; user verified");
        Ok(user)
    }
}
