//! Signing in to the web console: the operator's pass, signing a session
//! out by its token, and the accounts a signed-in user can switch to.

use super::{Canopy, Principal};
use crate::domain::{Account, Role};
use crate::secrets::{hashes_equal, sha256_hex};
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
    /// The pass's MAC: under the data key (which is not in the database,
    /// so a copy of the database cannot forge a pass), over the current
    /// token's hash (so a rotation ends every pass) and the expiry.
    fn operator_mac(&self, expires_us: i64) -> Result<String> {
        let key = self.settings.data_key.as_ref().ok_or_else(|| {
            Error::FeatureNotEnabled(
                "the operator's console sign-in needs a data key, and this host has none: start every host with the same --data-key (CANOPY_DATA_KEY, 64 hex digits)".into(),
            )
        })?;
        let token_hash = self
            .operator_token_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let message = format!("{token_hash}\0{expires_us}");
        Ok(hex::encode(
            key.mac("console operator pass", message.as_bytes()),
        ))
    }

    /// Trades the operator token for a console pass: its expiry and a MAC.
    /// The pass never holds the token, works on every host with the same
    /// data key, and dies with a rotated token or at its expiry.
    pub async fn operator_pass(&self, token: &str) -> Result<String> {
        // Refused before the token is even checked where no pass can be made.
        self.operator_mac(0)?;
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
            self.operator_mac(expires_us)?
        ))
    }

    /// The operator, if `pass` is a live pass of the current token.
    pub fn operator_from_pass(&self, pass: &str) -> Option<Principal> {
        let (expires, mac) = pass.strip_prefix(PASS_PREFIX)?.split_once('.')?;
        let expires_us: i64 = expires.parse().ok()?;
        if expires_us <= self.clock.now_us() {
            return None;
        }
        let expected = self.operator_mac(expires_us).ok()?;
        hashes_equal(mac, &expected).then_some(Principal::Operator)
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
