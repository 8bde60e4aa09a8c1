//! Signing out: a user's sessions listed and revoked; API keys that expire
//! and say when they were last used.

use chrono::{DateTime, Utc};

use super::{Canopy, Page, Paged, Principal, keyset_cursor};
use crate::store::{self, sessions::Session};
use crate::{Error, Result};

/// Uses of one API key are noted at most this often (`last_used_at` is
/// to the minute), so a busy key costs one write a minute, not one per
/// request.
pub const KEY_USE_NOTE_EVERY_US: i64 = 60_000_000;

impl Canopy {
    fn session_user(principal: &Principal) -> Result<&str> {
        match principal {
            Principal::User { user_id, .. } => Ok(user_id),
            Principal::Operator => Err(Error::Forbidden(
                "the operator token has no sessions; use a user's API key or session token".into(),
            )),
        }
    }

    /// The caller's own live sessions, newest first.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        page: &Page,
    ) -> Result<Paged<Session>> {
        let user_id = Self::session_user(principal)?;
        let mut c = self.store.reader().await?;
        let rows = store::sessions::list(&mut c, user_id, self.clock.now_us(), page).await?;
        Ok(Paged::from_fetch(rows, page, |s| {
            keyset_cursor(s.created_at, &s.id)
        }))
    }

    /// Signs one of the caller's sessions out; its token is refused from the
    /// next request on. Another user's session is 404, as if unknown.
    pub async fn revoke_session(&self, principal: &Principal, session_id: &str) -> Result<()> {
        let user_id = Self::session_user(principal)?;
        let mut tx = self.store.begin().await?;
        if !store::sessions::revoke(&mut tx, user_id, session_id).await? {
            return Err(Error::not_found("session", session_id));
        }
        tx.commit().await.map_err(store::db_error)?;
        Ok(())
    }

    /// Checks an API key's requested expiry: in the future by the host's
    /// clock (the test clock moves it).
    pub fn key_expiry(&self, expires_at: Option<DateTime<Utc>>) -> Result<Option<i64>> {
        match expires_at {
            Some(t) if t.timestamp_micros() <= self.clock.now_us() => Err(Error::invalid(
                "expires_at",
                "must be in the future (RFC 3339), or left out for a key that does not expire",
            )),
            t => Ok(t.map(|t| t.timestamp_micros())),
        }
    }

    /// Notes a use of an API key when the last noted one is a minute old,
    /// off the request: a task of its own, so it never joins the request's
    /// transaction (or its Idempotency-Key) and never delays it.
    pub fn note_key_use(&self, key_id: &str, last_used_us: Option<i64>) {
        let now_us = self.clock.now_us();
        if last_used_us.is_some_and(|t| t > now_us - KEY_USE_NOTE_EVERY_US) {
            return;
        }
        let store = self.store.clone();
        let key_id = key_id.to_string();
        tokio::spawn(async move {
            let noted = async {
                let mut tx = store.begin().await?;
                store::sessions::note_key_use(&mut tx, &key_id, now_us, KEY_USE_NOTE_EVERY_US)
                    .await?;
                tx.commit().await.map_err(store::db_error)
            };
            if let Err(e) = noted.await {
                tracing::warn!(key_id, error = %e, "could not note an API key's use");
            }
        });
    }
}
