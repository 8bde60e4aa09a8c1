//! Row locks that make a check and the write it guards one step.
//!
//! A count limit (sub-accounts per parent, keys per account, policies per
//! owner) or a check of a tree's money is read inside the write
//! transaction, after locking the row every competing writer locks first.
//! On PostgreSQL the second writer waits for the first to commit and then
//! reads what it wrote; on SQLite the one writer connection already runs
//! write transactions one at a time, and the lock is a harmless update.

use super::Canopy;
use crate::domain::Account;
use crate::store::{self, Conn};
use crate::{Error, Result};

impl Canopy {
    /// Locks the tree's parent row until the transaction ends and checks
    /// that the tree still has the currency `parent` was read with (an
    /// operation prepares its posting before the transaction opens). Every
    /// top-up, allocation and sub-account creation takes this lock, and so
    /// does a currency change, so money never arrives in a currency the
    /// tree has left.
    pub(crate) async fn lock_tree(&self, c: &mut Conn, parent: &Account) -> Result<()> {
        if !store::accounts::lock(c, &parent.id).await? {
            return Err(Error::not_found("account", &parent.id));
        }
        let current = store::accounts::get(c, &parent.id)
            .await?
            .ok_or_else(|| Error::not_found("account", &parent.id))?;
        if current.currency != parent.currency {
            return Err(Error::Conflict(format!(
                "the tree's currency changed from {} to {} while this request ran; nothing was done, send it again",
                parent.currency, current.currency
            )));
        }
        Ok(())
    }
}
