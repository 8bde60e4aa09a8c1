//! Delete with retention: a deletion is refused while the account holds
//! live resources; once `data_retention_days` passed (by the clock), the
//! purge removes a deleted account's personal data and keeps its ledger
//! transfers and resource history. Every host runs the purge; each account
//! is purged once (a conditional update on `purged_at IS NULL`).

use super::Canopy;
use crate::domain::retention::purge_cutoff_us;
use crate::store::{self, Conn};
use crate::{Error, Result};

/// Accounts purged per pass (each in its own short transaction).
pub const PURGE_BATCH: i64 = 100;

/// Refuses a deletion while `account_id` holds resources in `active`,
/// `suspended` or `inventory`. Called inside the deletion's write
/// transaction, after its status change locked the account row.
pub(crate) async fn refuse_live_resources(c: &mut Conn, account_id: &str) -> Result<()> {
    let live = store::retention::live_resources(c, account_id).await?;
    if live > 0 {
        return Err(Error::Conflict(format!(
            "`{account_id}` holds {live} resources that are active, suspended or in inventory; move them to Available or terminate them, then delete it"
        )));
    }
    Ok(())
}

/// Refuses a parent's deletion while any resource of its tree (its
/// Available pool or a sub-account) is live.
pub(crate) async fn refuse_live_resources_of_tree(c: &mut Conn, parent_id: &str) -> Result<()> {
    let live = store::retention::live_resources_of_tree(c, parent_id).await?;
    if live > 0 {
        return Err(Error::Conflict(format!(
            "the tree of `{parent_id}` holds {live} resources that are active, suspended or in inventory; terminate or disconnect them, then delete it"
        )));
    }
    Ok(())
}

impl Canopy {
    /// Purges the personal data of every account deleted more than the
    /// retention period ago; returns how many this host purged.
    pub async fn purge_deleted_accounts(&self) -> Result<u64> {
        let days = {
            let mut c = self.store.reader().await?;
            super::platform_settings::read(&mut c)
                .await?
                .data_retention_days
        };
        let mut purged = 0;
        loop {
            let now_us = self.clock.now_us();
            let cutoff = purge_cutoff_us(now_us, days);
            let due = {
                let mut c = self.store.reader().await?;
                store::retention::due(&mut c, cutoff, PURGE_BATCH).await?
            };
            let mut this_pass = 0;
            for id in &due {
                let mut tx = self.store.begin().await?;
                if store::retention::purge_account(&mut tx, id, cutoff, now_us).await? {
                    tx.commit().await.map_err(store::db_error)?;
                    this_pass += 1;
                    tracing::info!(account = %id, "deleted account's personal data purged");
                }
            }
            purged += this_pass;
            // A batch that purged nothing was all taken by other hosts.
            if (due.len() as i64) < PURGE_BATCH || this_pass == 0 {
                return Ok(purged);
            }
        }
    }
}
