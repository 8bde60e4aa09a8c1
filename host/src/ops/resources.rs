//! Lines and SIMs: the operator provisions them into a parent's Available
//! pool; the tree reads them. Moves and status changes are bulk operations
//! (`ops::operations`).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::access::require_not_deleted;
use super::{Canopy, Page, Paged, Principal};
use crate::domain::AccountKind;
use crate::domain::resources::{self, BULK_MAX, ResourceKind, ResourceStatus};
use crate::error::FieldError;
use crate::policy::View;
use crate::secrets::new_id;
use crate::store::resources::{Counts, Filter, Place, Provision, Resource};
use crate::store::{self, Backend, db_error};
use crate::{Error, Result};

/// Refusals listed per provisioning request; the rest are counted.
const REFUSALS_LISTED_MAX: usize = 100;
/// A provisioning batch at least this large refreshes PostgreSQL's
/// statistics of the resource tables.
const ANALYZE_AFTER: usize = 1000;
/// Longest identifier prefix a filter takes.
const PREFIX_LEN_MAX: usize = 21;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// `line` or `sim`.
    #[schema(example = "sim")]
    pub kind: String,
    /// E.164 numbers for lines, ICCIDs for SIMs; 1 to 10,000.
    pub identifiers: Vec<String>,
    /// Labels to filter by later (at most 16, each 1 to 64 characters).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A list filter as the request gave it (text, checked here).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    pub kind: Option<String>,
    pub status: Option<String>,
    /// `available` (the parent's pool) or `assigned` (any sub-account).
    pub place: Option<String>,
    pub tag: Option<String>,
    /// Start of the identifier, e.g. `+4420` or `8944`.
    pub prefix: Option<String>,
    /// Held by this account (a parent's id: its Available pool).
    pub account_id: Option<String>,
}

impl FilterRequest {
    /// The checked filter; `field` prefixes the names in errors (`filter.`
    /// in a request body, empty for query parameters).
    pub fn check(&self, field: &str) -> Result<Filter> {
        let named = |f: &str| format!("{field}{f}");
        let kind = self
            .kind
            .as_deref()
            .map(|k| {
                ResourceKind::parse(k)
                    .ok_or_else(|| Error::invalid(&named("kind"), "must be `line` or `sim`"))
            })
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|s| {
                ResourceStatus::parse(s).ok_or_else(|| {
                    Error::invalid(
                        &named("status"),
                        "must be active, disconnected (lines), inventory, suspended or terminated (SIMs)",
                    )
                })
            })
            .transpose()?;
        let place = match self.place.as_deref() {
            None => None,
            Some("available") => Some(Place::Available),
            Some("assigned") => Some(Place::Assigned),
            Some(_) => {
                return Err(Error::invalid(
                    &named("place"),
                    "must be `available` or `assigned`",
                ));
            }
        };
        if let Some(p) = &self.prefix {
            let digits = p.strip_prefix('+').unwrap_or(p);
            if digits.is_empty()
                || p.len() > PREFIX_LEN_MAX
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Error::invalid(
                    &named("prefix"),
                    "must be digits, optionally after `+` (e.g. +4420 or 8944), at most 21 characters",
                ));
            }
        }
        if let Some(t) = &self.tag {
            resources::tags(std::slice::from_ref(t))
                .map_err(|e| Error::invalid(&named("tag"), e))?;
        }
        Ok(Filter {
            kind,
            status,
            place,
            tag: self.tag.clone(),
            prefix: self.prefix.clone(),
            account_id: self.account_id.clone(),
        })
    }
}

/// Live resources per holder in one tree, with the holder's name.
#[derive(Debug, Clone)]
pub struct SummaryGroup {
    pub account_id: String,
    pub name: String,
    pub counts: Counts,
}

impl Canopy {
    /// Provisions lines or SIMs into a parent's Available pool (operator).
    /// All or nothing: any invalid or taken identifier refuses the batch.
    pub async fn provision_resources(&self, parent_id: &str, req: ProvisionRequest) -> Result<i64> {
        let parent = self.get_parent(parent_id).await?;
        self.authorize_operator("resource.provision", Some(&parent))
            .await?;
        if let Some(batch) = store::idempotency::committed_resource() {
            let mut c = self.store.reader().await?;
            return store::resources::batch_size(&mut c, &batch).await;
        }
        require_not_deleted(&parent)?;
        let kind = ResourceKind::parse(&req.kind)
            .ok_or_else(|| Error::invalid("kind", "must be `line` or `sim`"))?;
        if req.identifiers.is_empty() || req.identifiers.len() > BULK_MAX {
            return Err(Error::invalid(
                "identifiers",
                format!("must hold 1 to {BULK_MAX} identifiers; split larger batches"),
            ));
        }
        let tags = resources::tags(&req.tags).map_err(|e| Error::invalid("tags", e))?;
        let mut refusals = Vec::new();
        let mut seen = HashSet::with_capacity(req.identifiers.len());
        let mut identifiers = Vec::with_capacity(req.identifiers.len());
        for (i, raw) in req.identifiers.iter().enumerate() {
            match kind.identifier(raw) {
                Ok(id) if seen.insert(id.clone()) => identifiers.push(id),
                Ok(id) => refusals.push(FieldError::new(
                    format!("identifiers[{i}]"),
                    format!("`{id}` appears more than once in this request"),
                )),
                Err(reason) => refusals.push(FieldError::new(format!("identifiers[{i}]"), reason)),
            }
        }
        if refusals.is_empty() {
            let mut c = self.store.reader().await?;
            let taken: HashSet<String> = store::resources::taken(&mut c, &identifiers)
                .await?
                .into_iter()
                .collect();
            for (i, id) in identifiers.iter().enumerate() {
                if taken.contains(id) {
                    refusals.push(FieldError::new(
                        format!("identifiers[{i}]"),
                        format!("`{id}` is already provisioned on this platform"),
                    ));
                }
            }
        }
        if !refusals.is_empty() {
            return Err(refused_identifiers(refusals));
        }
        let items: Vec<(String, String)> = identifiers
            .into_iter()
            .map(|identifier| (new_id("res"), identifier))
            .collect();
        let batch_id = new_id("prv");
        let steps = store::resources::provision_steps(&Provision {
            batch_id: &batch_id,
            tree_id: &parent.id,
            kind,
            items: &items,
            tags: &tags,
            now_us: self.clock.now_us(),
        })?;
        let mut tx = self.store.begin().await?;
        // One statement at a time: a batch of them bound at once would
        // carry tens of thousands of parameters, which SQLite binds by name
        // in quadratic time.
        if let Err(e) = store::run_each(&mut tx, &steps).await {
            return Err(match store::unique_violation(&e) {
                // Another request provisioned one of them since the check.
                Some(_) => Error::invalid(
                    "identifiers",
                    "an identifier was provisioned by another request meanwhile; retry to see which",
                ),
                None => db_error(e),
            });
        }
        store::idempotency::note_resource_in(&mut tx, &batch_id).await?;
        tx.commit().await.map_err(db_error)?;
        if self.store.backend == Backend::Postgres && items.len() >= ANALYZE_AFTER {
            let mut c = self.store.reader().await?;
            if let Err(e) = store::resources::refresh_statistics(&mut c).await {
                tracing::warn!(error = %e, "refreshing the resource tables' statistics failed");
            }
        }
        Ok(items.len() as i64)
    }

    /// Resources in reach of `account_id`: for a parent its whole tree, for
    /// a sub-account its own.
    pub async fn list_resources(
        &self,
        principal: &Principal,
        account_id: &str,
        filter: Filter,
        page: &Page,
    ) -> Result<(Paged<Resource>, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "resource.list", &[]).await?;
        let view = self.view(&actor, "resource.list", "resources").await?;
        let filter = confine(&actor.target.id, actor.target.kind, filter)?;
        let tree = actor.tree_parent().id.clone();
        let mut c = self.store.reader().await?;
        let rows = store::resources::list(&mut c, &tree, &filter, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |r| super::keyset_cursor(r.created_at, &r.id)),
            view,
        ))
    }

    /// One resource in reach of `account_id` (404 otherwise).
    pub async fn get_resource(
        &self,
        principal: &Principal,
        account_id: &str,
        resource_id: &str,
    ) -> Result<(Resource, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "resource.list", &[]).await?;
        let view = self.view(&actor, "resource.list", "resources").await?;
        let mut c = self.store.reader().await?;
        let resource = store::resources::get(&mut c, &actor.tree_parent().id, resource_id)
            .await?
            .filter(|r| actor.target.is_parent() || r.account_id == actor.target.id)
            .ok_or_else(|| Error::not_found("resource", resource_id))?;
        Ok((resource, view))
    }

    /// Live resources per place in a parent's tree, the Available pool
    /// first.
    pub async fn resource_summary(
        &self,
        principal: &Principal,
        parent_id: &str,
    ) -> Result<Vec<SummaryGroup>> {
        let actor = self.enter(principal, parent_id).await?;
        if !actor.target.is_parent() {
            return Err(Error::Forbidden(
                "the summary is the parent account's; a sub-account lists its own resources".into(),
            ));
        }
        self.authorize(&actor, "resource.list", &[]).await?;
        let mut c = self.store.reader().await?;
        let mut holders = store::resources::counts_by_holder(&mut c, &actor.target.id).await?;
        let available = holders
            .remove(&actor.target.id)
            .map(|(_, n)| n)
            .unwrap_or_default();
        let mut groups = vec![SummaryGroup {
            account_id: actor.target.id.clone(),
            name: "Available".into(),
            counts: available,
        }];
        groups.extend(
            holders
                .into_iter()
                .map(|(account_id, (name, counts))| SummaryGroup {
                    account_id,
                    name,
                    counts,
                }),
        );
        Ok(groups)
    }

    /// Live resources held by each of `account_ids`, for reads that were
    /// already authorized (sub-account views show them).
    pub async fn resource_counts(
        &self,
        account_ids: &[String],
    ) -> Result<BTreeMap<String, Counts>> {
        if account_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut c = self.store.reader().await?;
        store::resources::counts_of(&mut c, account_ids).await
    }
}

/// A sub-account sees only what it holds; a parent may narrow to a place.
fn confine(target_id: &str, kind: AccountKind, mut filter: Filter) -> Result<Filter> {
    if kind == AccountKind::Subaccount {
        if filter.account_id.as_deref().is_some_and(|a| a != target_id) {
            return Err(Error::invalid(
                "account_id",
                "a sub-account lists only its own resources; leave `account_id` out",
            ));
        }
        if filter.place == Some(Place::Available) {
            return Err(Error::invalid(
                "place",
                "the Available pool is the parent account's; a sub-account lists its own resources",
            ));
        }
        filter.place = None;
        filter.account_id = Some(target_id.to_string());
    }
    Ok(filter)
}

/// The 422 of a provisioning batch with refused identifiers.
fn refused_identifiers(mut refusals: Vec<FieldError>) -> Error {
    let n = refusals.len();
    refusals.truncate(REFUSALS_LISTED_MAX);
    let more = if n > REFUSALS_LISTED_MAX {
        format!(" (the first {REFUSALS_LISTED_MAX} are listed)")
    } else {
        String::new()
    };
    Error::Validation {
        detail: format!(
            "{n} identifier(s) cannot be provisioned{more}; nothing was created: fix or remove them and send the batch again"
        ),
        errors: refusals,
        policy: None,
    }
}
