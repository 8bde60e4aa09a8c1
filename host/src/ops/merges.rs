//! Merges of sub-accounts (seed 003): requested by one admin of the parent,
//! approved by another (or the operator), then run as one irreversible
//! transaction: resources, remaining budget and history move to the target;
//! each source ends as `merged` (stored `deleted` with `merged_into`).
//!
//! A merge whose sources or target changed between the request and the
//! approval (deleted, merged elsewhere, target suspended) fails with 409 and
//! stays `pending`: nothing of it ran, and an admin may reject it and
//! request a new one.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::access::Actor;
use super::{Canopy, Page, Paged, Principal};
use crate::domain::ledger::{self, LedgerRef};
use crate::domain::merges::{self, MergeStatus};
use crate::domain::{Account, CreditMode, Relation};
use crate::secrets::new_id;
use crate::store::{self, merges::Merge};
use crate::{Error, Result};

/// Who decided a merge when the operator did.
pub const OPERATOR: &str = "operator";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMerge {
    /// Sub-accounts of this parent that end merged (at most 100).
    pub sources: Vec<String>,
    /// The active sub-account that receives their resources and budget.
    pub target: String,
}

fn not_pending(m: &Merge) -> Error {
    Error::Conflict(format!(
        "merge `{}` is already {}; only a pending merge can be decided",
        m.id, m.status
    ))
}

impl Canopy {
    /// Enters a parent for a merge route: its own admins only.
    async fn enter_merges(&self, principal: &Principal, parent_id: &str) -> Result<Actor> {
        let actor = self.enter(principal, parent_id).await?;
        self.require_subaccounts_enabled(&actor.target)?;
        if !actor.target.is_parent() || actor.relation != Relation::Own {
            return Err(Error::Forbidden(
                "merges are requested and decided in the parent account, by its admins".into(),
            ));
        }
        Ok(actor)
    }

    async fn merge_in(&self, tree_id: &str, id: &str) -> Result<Merge> {
        let mut c = self.store.reader().await?;
        store::merges::get(&mut c, tree_id, id)
            .await?
            .ok_or_else(|| Error::not_found("merge", id))
    }

    /// The committed merge of an earlier request with this Idempotency-Key.
    async fn recovered_merge(&self, tree_id: &str) -> Result<Option<Merge>> {
        match store::idempotency::committed_resource() {
            Some(id) => self.merge_in(tree_id, &id).await.map(Some),
            None => Ok(None),
        }
    }

    /// The accounts a merge names, checked: the target active, each source
    /// active or suspended, all sub-accounts of `parent`. Unknown ids and
    /// ids of other trees are 422s (no existence leak); a wrong status 409.
    async fn merge_parties(
        &self,
        parent: &Account,
        sources: &[String],
        target: &str,
    ) -> Result<(Vec<Account>, Account)> {
        let mut c = self.store.reader().await?;
        let named = std::iter::once((target, "target"))
            .chain(sources.iter().map(|s| (s.as_str(), "sources")));
        let mut found = Vec::with_capacity(sources.len() + 1);
        for (id, field) in named {
            let account = store::accounts::get(&mut c, id)
                .await?
                .filter(|a| a.parent_id.as_deref() == Some(parent.id.as_str()))
                .ok_or_else(|| {
                    Error::invalid(
                        field,
                        format!("`{id}` is not a sub-account of `{}`", parent.id),
                    )
                })?;
            found.push(account);
        }
        let target = found.remove(0);
        for (account, is_target) in found.iter().map(|a| (a, false)).chain([(&target, true)]) {
            if let Some(why) = merges::refusal(account, &parent.id, is_target) {
                return Err(Error::Conflict(why));
            }
        }
        Ok((found, target))
    }

    /// `POST /v1/accounts/{parent_id}/merges`.
    pub async fn request_merge(
        &self,
        principal: &Principal,
        parent_id: &str,
        req: NewMerge,
    ) -> Result<Merge> {
        let actor = self.enter_merges(principal, parent_id).await?;
        self.authorize(&actor, "merge.request", &["sources", "target"])
            .await?;
        let parent = &actor.target;
        if let Some(m) = self.recovered_merge(&parent.id).await? {
            return Ok(m);
        }
        merges::check_request(&req.sources, &req.target)
            .map_err(|(field, why)| Error::invalid(field, why))?;
        self.merge_parties(parent, &req.sources, &req.target)
            .await?;
        let now_us = self.clock.now_us();
        let merge = Merge {
            id: new_id("mrg"),
            tree_id: parent.id.clone(),
            target_id: req.target,
            sources: req.sources,
            status: MergeStatus::Pending,
            requested_by: actor.user_id.clone(),
            decided_by: None,
            created_at: crate::clock::from_us(now_us),
            decided_at: None,
        };
        let mut tx = self.store.begin().await?;
        store::merges::insert(&mut tx, &merge, now_us).await?;
        store::idempotency::note_resource_in(&mut tx, &merge.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(merge = %merge.id, parent = %parent.id, sources = merge.sources.len(), "merge requested");
        Ok(merge)
    }

    /// `GET /v1/accounts/{parent_id}/merges`.
    pub async fn list_merges(
        &self,
        principal: &Principal,
        parent_id: &str,
        page: &Page,
    ) -> Result<Paged<Merge>> {
        let actor = self.enter_merges(principal, parent_id).await?;
        self.authorize(&actor, "merge.request", &[]).await?;
        let mut c = self.store.reader().await?;
        let rows = store::merges::list(&mut c, &actor.target.id, page).await?;
        Ok(Paged::from_fetch(rows, page, |m| {
            super::keyset_cursor(m.created_at, &m.id)
        }))
    }

    /// `GET /v1/accounts/{parent_id}/merges/{id}`.
    pub async fn get_merge(
        &self,
        principal: &Principal,
        parent_id: &str,
        id: &str,
    ) -> Result<Merge> {
        let actor = self.enter_merges(principal, parent_id).await?;
        self.authorize(&actor, "merge.request", &[]).await?;
        self.merge_in(&actor.target.id, id).await
    }

    /// Approval by an admin of the parent other than the requester.
    pub async fn approve_merge(
        &self,
        principal: &Principal,
        parent_id: &str,
        id: &str,
    ) -> Result<Merge> {
        let actor = self.enter_merges(principal, parent_id).await?;
        let merge = self.merge_in(&actor.target.id, id).await?;
        if merge.requested_by == actor.user_id {
            return Err(Error::Forbidden(format!(
                "you requested merge `{id}`, so you cannot approve it; another admin of the parent or the platform operator approves it"
            )));
        }
        self.authorize(&actor, "merge.approve", &[]).await?;
        let parent = actor.target.clone();
        self.run_merge(&parent, merge, &actor.user_id).await
    }

    /// Approval by the operator.
    pub async fn approve_merge_by_operator(&self, parent_id: &str, id: &str) -> Result<Merge> {
        let parent = self.get_parent(parent_id).await?;
        let merge = self.merge_in(&parent.id, id).await?;
        self.authorize_operator("merge.approve", Some(&parent))
            .await?;
        self.run_merge(&parent, merge, OPERATOR).await
    }

    /// Rejection by any admin of the parent (the requester withdraws it).
    pub async fn reject_merge(
        &self,
        principal: &Principal,
        parent_id: &str,
        id: &str,
    ) -> Result<Merge> {
        let actor = self.enter_merges(principal, parent_id).await?;
        let merge = self.merge_in(&actor.target.id, id).await?;
        self.authorize(&actor, "merge.approve", &[]).await?;
        self.decide_rejected(merge, &actor.user_id).await
    }

    /// Rejection by the operator.
    pub async fn reject_merge_by_operator(&self, parent_id: &str, id: &str) -> Result<Merge> {
        let parent = self.get_parent(parent_id).await?;
        let merge = self.merge_in(&parent.id, id).await?;
        self.authorize_operator("merge.approve", Some(&parent))
            .await?;
        self.decide_rejected(merge, OPERATOR).await
    }

    async fn decide_rejected(&self, merge: Merge, by: &str) -> Result<Merge> {
        if merge.status != MergeStatus::Pending {
            return Err(not_pending(&merge));
        }
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        if !store::merges::decide(&mut tx, &merge.id, MergeStatus::Rejected, by, now_us).await? {
            return Err(not_pending(&merge));
        }
        let decided = store::merges::get(&mut tx, &merge.tree_id, &merge.id)
            .await?
            .ok_or_else(|| Error::internal("merge vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(decided)
    }

    /// Runs an approved merge in one transaction; nothing of it commits
    /// unless all of it does.
    async fn run_merge(&self, parent: &Account, merge: Merge, by: &str) -> Result<Merge> {
        if let Some(m) = self.recovered_merge(&parent.id).await? {
            return Ok(m);
        }
        if merge.status != MergeStatus::Pending {
            return Err(not_pending(&merge));
        }
        let (sources, target) = self
            .merge_parties(parent, &merge.sources, &merge.target_id)
            .await
            .map_err(|e| match e {
                Error::Validation { detail, .. } | Error::Conflict(detail) => {
                    Error::Conflict(format!(
                        "{detail}; merge `{}` stays pending: reject it and request a new one",
                        merge.id
                    ))
                }
                e => e,
            })?;
        let changed = || {
            Error::Conflict(format!(
                "a sub-account of merge `{}` changed while it ran; nothing was done and the merge stays pending: read them again, reject it and request a new one",
                merge.id
            ))
        };
        let month = ledger::month_of(self.clock.now());
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        // The parent first, as every cascade does.
        self.lock_tree(&mut tx, parent).await?;
        if !store::merges::decide(&mut tx, &merge.id, MergeStatus::Completed, by, now_us).await? {
            return Err(not_pending(&merge));
        }
        if !store::merges::lock_target(&mut tx, &parent.id, &target.id).await? {
            return Err(changed());
        }
        // Ended first: no budget is credited to a deleted account, so what
        // each budget holds now is all there is to move.
        let ended =
            store::merges::end_sources(&mut tx, &parent.id, &merge.sources, &target.id, now_us)
                .await?;
        if ended != merge.sources.len() as u64 {
            return Err(changed());
        }
        super::webhooks::accounts_merged(&mut tx, &merge, now_us).await?;
        let mut moved = 0;
        for source in &sources {
            moved +=
                store::merges::move_resources(&mut tx, &source.id, &target.id, &merge.id, now_us)
                    .await?;
            if source.credit_mode != Some(CreditMode::AssignedBudget) {
                continue; // shared usage: no budget of its own
            }
            if target.credit_mode != Some(CreditMode::AssignedBudget) {
                // A shared-usage target holds no budget: it goes back to
                // the parent, as a deletion's does.
                self.return_all(&mut tx, parent, source, now_us).await?;
                continue;
            }
            let held =
                store::ledger::lock_balance(&mut tx, &LedgerRef::budget(source), now_us).await?;
            if held.decimal() > Decimal::ZERO {
                let posting =
                    merges::budget_move_posting(parent, source, &target, held, &month, &merge.id);
                store::ledger::post(
                    &mut tx,
                    self.store.backend,
                    &posting,
                    &format!("merge:{}:{}", merge.id, source.id),
                    now_us,
                    vec![],
                )
                .await?;
            }
        }
        store::idempotency::note_resource_in(&mut tx, &merge.id).await?;
        let done = store::merges::get(&mut tx, &parent.id, &merge.id)
            .await?
            .ok_or_else(|| Error::internal("merge vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(merge = %merge.id, parent = %parent.id, target = %target.id, sources = sources.len(), resources = moved, "merge completed");
        Ok(done)
    }
}
