//! CSV exports of transactions and messages: for admins only, bounded.

use super::{Canopy, Page, Paged, Principal};
use crate::domain::Role;
use crate::policy::View;
use crate::store::{ledger::Statement, messages::Message};
use crate::{Error, Result};

/// Most rows one export answers; the next ones are a cursor away, so an
/// export never holds more than this in memory.
pub const EXPORT_ROWS_MAX: i64 = 10_000;

impl Canopy {
    /// Exports are an admin's: they carry every user's rows at once.
    async fn require_export_admin(&self, principal: &Principal, account_id: &str) -> Result<()> {
        let actor = self.enter(principal, account_id).await?;
        if actor.role != Role::Admin {
            return Err(Error::Forbidden(
                "exports are for the account's admins; use the JSON list instead".into(),
            ));
        }
        Ok(())
    }

    pub async fn export_transactions(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<(Paged<Statement>, String)> {
        self.require_export_admin(principal, account_id).await?;
        self.transactions(principal, account_id, page).await
    }

    pub async fn export_messages(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<(Paged<Message>, View)> {
        self.require_export_admin(principal, account_id).await?;
        self.list_messages(principal, account_id, None, page).await
    }
}
