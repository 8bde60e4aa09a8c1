//! Signing in to the web console: the operator's pass, signing a session
//! out by its token, and the accounts a signed-in user can switch to.

use super::{Canopy, Principal};
use crate::domain::{Account, Role};
use crate::secrets::{hashes_equal, hmac_sha256, sha256_hex};
use crate::store;
use crate::{Error, Result};

/// How long an operator's console pass lasts.
pub const OPERATOR_PASS_TTL_US: i64 = 12 * 3600 * 1_000_000;
/// Accounts listed in a user's account switcher.
pub const SWITCH_ACCOUNTS_MAX: i64 = 200;

const PASS_PREFIX: &str = "op1.";

/// An account a user can switch to, and their role there.
#[derive(Debug, Clone)]
pub struct Reachable {
    pub account: Account,
    pub role: Role,
}

impl Canopy {
    fn operator_mac(&self, expires_us: i64) -> String {
        let key = self
            .operator_token_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let message = format!("canopy console operator pass\0{expires_us}");
        hex::encode(hmac_sha256(key.as_bytes(), message.as_bytes()))
    }

    /// Trades the operator token for a console pass: its expiry and a MAC
    /// under the token's hash. The pass never holds the token, works on
    /// every host, and dies with a rotated token or at its expiry.
    pub async fn operator_pass(&self, token: &str) -> Result<String> {
        match self.authenticate(token.trim()).await {
            Ok(Principal::Operator) => {}
            _ => {
                return Err(Error::Unauthenticated(
                    "that is not the operator token; paste the token `canopy serve` was given (--operator-token)".into(),
                ));
            }
        }
        let expires_us = self.clock.now_us().saturating_add(OPERATOR_PASS_TTL_US);
        Ok(format!(
            "{PASS_PREFIX}{expires_us}.{}",
            self.operator_mac(expires_us)
        ))
    }

    /// The operator, if `pass` is a live pass of the current token.
    pub fn operator_from_pass(&self, pass: &str) -> Option<Principal> {
        let (expires, mac) = pass.strip_prefix(PASS_PREFIX)?.split_once('.')?;
        let expires_us: i64 = expires.parse().ok()?;
        if expires_us <= self.clock.now_us() {
            return None;
        }
        hashes_equal(mac, &self.operator_mac(expires_us)).then_some(Principal::Operator)
    }

    /// Signs out the session holding `token`; unknown tokens are ignored.
    pub async fn end_session(&self, token: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        store::sessions::revoke_by_token(&mut tx, &sha256_hex(token.as_bytes())).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(())
    }

    /// The accounts a session's user is a member of (accepted), with their
    /// role, oldest first: what the console's account switcher lists. A
    /// parent admin reaches its sub-accounts from the parent's pages.
    pub async fn reachable_accounts(&self, principal: &Principal) -> Result<Vec<Reachable>> {
        let Principal::User { user_id, key: None } = principal else {
            return Err(Error::Forbidden(
                "only a signed-in user has accounts to switch between".into(),
            ));
        };
        let mut c = self.store.reader().await?;
        let rows =
            store::sessions::accepted_memberships(&mut c, user_id, SWITCH_ACCOUNTS_MAX).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (account_id, role) in rows {
            let role =
                Role::parse(&role).ok_or_else(|| Error::internal("stored role is malformed"))?;
            if let Some(account) = store::accounts::get(&mut c, &account_id).await? {
                out.push(Reachable { account, role });
            }
        }
        Ok(out)
    }
}
