//! Bulk work on lines and SIMs as durable operations (seed 004): transfers
//! between the Available pool and sub-accounts, and actions (activate,
//! suspend, resume, terminate, disconnect).
//!
//! A request is checked and authorized once, then stored with one item per
//! resource (a filter is resolved in the same transaction) and answered
//! 202. Every host runs [`run_operations`]: it claims a waiting operation
//! with a lease and processes its items in chunks of [`CHUNK_ITEMS`], each
//! chunk one transaction that renews the lease first and writes, per item,
//! the conditional update of the resource, its history row and the item's
//! outcome, then the operation's counters. An item is therefore done
//! exactly once, whatever host runs it and wherever a process dies.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Canopy, Page, Paged, Principal};
use crate::domain::operations::{
    self, Found, OperationKind, OperationStatus, Place, TARGET_NOT_ACTIVE, Work,
};
use crate::domain::resources::{self, ResourceAction, ResourceKind, ResourceStatus};
use crate::domain::{Account, Relation, Status};
use crate::secrets::new_id;
use crate::store::operations::{Among, Applied, ItemError, NewOperation, Operation, Selection};
use crate::store::{self, Tx};
use crate::{Error, Result};

/// Items per chunk: one transaction, so SQLite's writer is never held long.
pub const CHUNK_ITEMS: i64 = 500;
/// How long a claim lasts unless renewed (each chunk renews it); after
/// that another host may take the operation over. `Settings` may shorten it.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often an idle host looks for waiting operations (a host is also
/// woken at once by operations it created itself).
const POLL: Duration = Duration::from_millis(250);
/// After a failed chunk (database unreachable), wait this long.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Times an item is re-read when its resource changed between read and
/// update before it fails.
const ITEM_ATTEMPTS: usize = 3;

/// Wakes this process's workers when it stored an operation.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Which resources a request selects (API.md): all of them match.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceFilter {
    /// `line` or `sim`.
    pub kind: Option<String>,
    pub status: Option<String>,
    /// `available` (the parent's pool) or `assigned` (in a sub-account).
    pub place: Option<String>,
    pub tag: Option<String>,
    /// The start of the identifier (E.164 or ICCID).
    pub prefix: Option<String>,
    /// Only what this account holds (the parent: its Available pool).
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// A sub-account of this parent, or `available` (the parent's pool).
    #[schema(example = "available")]
    pub to: String,
    /// Exactly one of `resource_ids` and `filter`.
    pub resource_ids: Option<Vec<String>>,
    pub filter: Option<ResourceFilter>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `activate`, `suspend`, `resume`, `terminate` (SIMs) or `disconnect` (lines).
    #[schema(example = "activate")]
    pub action: String,
    /// Exactly one of `resource_ids` and `filter`.
    pub resource_ids: Option<Vec<String>>,
    pub filter: Option<ResourceFilter>,
}

/// An operation and its first failed items.
#[derive(Debug, Clone)]
pub struct Report {
    pub operation: Operation,
    pub errors: Vec<ItemError>,
}

/// What the worker needs of a stored request besides the operation's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    /// An action's scope: the account whose resources it acts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<ResourceFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_ids: Option<usize>,
}

/// The items of a request: listed, or a filter to resolve.
enum Items {
    Ids(Vec<String>),
    Filter(Selection),
}

fn one_of(ids: Option<Vec<String>>, filter: Option<ResourceFilter>) -> Result<Either> {
    match (ids, filter) {
        (Some(ids), None) => {
            operations::resource_ids(&ids).map_err(|e| Error::invalid("resource_ids", e))?;
            Ok(Either::Ids(ids))
        }
        (None, Some(f)) => Ok(Either::Filter(f)),
        _ => Err(Error::invalid(
            "resource_ids",
            "give exactly one of `resource_ids` (a list) and `filter` (an object)",
        )),
    }
}

enum Either {
    Ids(Vec<String>),
    Filter(ResourceFilter),
}

/// A filter's fields checked; `account_id` is left to the caller (its
/// meaning depends on the request).
fn selection(tree_id: &str, f: &ResourceFilter) -> Result<Selection> {
    let kind = f
        .kind
        .as_deref()
        .map(|k| {
            ResourceKind::parse(k)
                .ok_or_else(|| Error::invalid("filter.kind", "must be `line` or `sim`"))
        })
        .transpose()?;
    let status = f
        .status
        .as_deref()
        .map(|s| {
            ResourceStatus::parse(s).ok_or_else(|| {
                Error::invalid(
                    "filter.status",
                    "must be one of active, disconnected, inventory, suspended, terminated",
                )
            })
        })
        .transpose()?;
    let place = f
        .place
        .as_deref()
        .map(|p| {
            Place::parse(p)
                .ok_or_else(|| Error::invalid("filter.place", "must be `available` or `assigned`"))
        })
        .transpose()?;
    let tag = f
        .tag
        .as_ref()
        .map(|t| {
            resources::tags(std::slice::from_ref(t))
                .map_err(|e| Error::invalid("filter.tag", e))
                .map(|mut v| v.remove(0))
        })
        .transpose()?;
    let prefix = f
        .prefix
        .as_deref()
        .map(|p| operations::prefix(p).map_err(|e| Error::invalid("filter.prefix", e)))
        .transpose()?;
    Ok(Selection {
        tree_id: tree_id.to_string(),
        holder: None,
        kind,
        status,
        place,
        tag,
        prefix,
    })
}

impl Canopy {
    /// `POST /v1/accounts/{parent_id}/resource-transfers`: only the
    /// parent's admin moves resources, between its Available pool and its
    /// sub-accounts.
    pub async fn transfer_resources(
        &self,
        principal: &Principal,
        parent_id: &str,
        req: TransferRequest,
    ) -> Result<Report> {
        let actor = self.enter(principal, parent_id).await?;
        self.require_subaccounts_enabled(&actor.target)?;
        if !actor.target.is_parent() || actor.relation != Relation::Own {
            return Err(Error::Forbidden(format!(
                "only the parent account's admin moves lines and SIMs between the Available pool and sub-accounts (like Twilio's error 21474); ask an admin of `{}` to POST /v1/accounts/{}/resource-transfers",
                actor.tree_parent().id,
                actor.tree_parent().id
            )));
        }
        self.authorize(&actor, OperationKind::Transfer.authorize_action(), &[])
            .await?;
        if let Some(id) = store::idempotency::committed_resource() {
            return self.report(&id).await;
        }
        let parent = actor.target.clone();
        let either = one_of(req.resource_ids, req.filter)?;
        let to = if req.to == "available" || req.to == parent.id {
            parent.id.clone()
        } else {
            let mut c = self.store.reader().await?;
            let status = store::operations::subaccount_status(&mut c, &parent.id, &req.to)
                .await?
                .ok_or_else(|| {
                    Error::invalid(
                        "to",
                        format!(
                            "`{}` is not a sub-account of `{}`; give one of its sub-accounts or `available`",
                            req.to, parent.id
                        ),
                    )
                })?;
            if status != Status::Active.as_str() {
                return Err(Error::Conflict(format!(
                    "sub-account `{}` is {status}; a transfer's target must be active",
                    req.to
                )));
            }
            req.to.clone()
        };
        let (items, stored) = match either {
            Either::Ids(ids) => {
                let n = ids.len();
                (
                    Items::Ids(ids),
                    Stored {
                        holder: None,
                        filter: None,
                        resource_ids: Some(n),
                    },
                )
            }
            Either::Filter(f) => {
                let mut s = selection(&parent.id, &f)?;
                if let Some(from) = &f.account_id {
                    self.require_in_tree(&parent, from).await?;
                    s.holder = Some(from.clone());
                }
                (
                    Items::Filter(s),
                    Stored {
                        holder: None,
                        filter: Some(f),
                        resource_ids: None,
                    },
                )
            }
        };
        self.store_operation(
            &parent,
            &parent.id,
            OperationKind::Transfer,
            Some(to),
            &actor.user_id,
            stored,
            items,
        )
        .await
    }

    /// `POST /v1/accounts/{id}/resource-actions`: acts on what account
    /// `id` holds (a parent: its Available pool, or with `filter.account_id`
    /// one of its sub-accounts; a parent's admin may also act in a
    /// sub-account's own path).
    pub async fn act_on_resources(
        &self,
        principal: &Principal,
        account_id: &str,
        req: ActionRequest,
    ) -> Result<Report> {
        let actor = self.enter(principal, account_id).await?;
        let action = ResourceAction::parse(&req.action).ok_or_else(|| {
            Error::invalid(
                "action",
                "must be one of activate, suspend, resume, terminate (SIMs) or disconnect (lines)",
            )
        })?;
        let kind = OperationKind::of_action(action);
        self.authorize(&actor, kind.authorize_action(), &[]).await?;
        if let Some(id) = store::idempotency::committed_resource() {
            return self.report(&id).await;
        }
        let target = actor.target.clone();
        let tree = actor.tree_parent().clone();
        let either = one_of(req.resource_ids, req.filter)?;
        let (items, stored) = match either {
            Either::Ids(ids) => {
                let n = ids.len();
                (
                    Items::Ids(ids),
                    Stored {
                        holder: Some(target.id.clone()),
                        filter: None,
                        resource_ids: Some(n),
                    },
                )
            }
            Either::Filter(f) => {
                let mut s = selection(&tree.id, &f)?;
                let holder = match &f.account_id {
                    None => target.id.clone(),
                    Some(a) if *a == target.id => a.clone(),
                    Some(a) if target.is_parent() => {
                        self.require_in_tree(&target, a).await?;
                        a.clone()
                    }
                    Some(_) => {
                        return Err(Error::invalid(
                            "filter.account_id",
                            "acting in a sub-account covers only the resources it holds; leave it out",
                        ));
                    }
                };
                s.holder = Some(holder.clone());
                (
                    Items::Filter(s),
                    Stored {
                        holder: Some(holder),
                        filter: Some(f),
                        resource_ids: None,
                    },
                )
            }
        };
        self.store_operation(&tree, &target.id, kind, None, &actor.user_id, stored, items)
            .await
    }

    /// `account_id` is the parent itself or one of its sub-accounts (404
    /// otherwise).
    async fn require_in_tree(&self, parent: &Account, account_id: &str) -> Result<()> {
        if account_id == parent.id {
            return Ok(());
        }
        let mut c = self.store.reader().await?;
        store::operations::subaccount_status(&mut c, &parent.id, account_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| Error::not_found("account", account_id))
    }

    /// Writes an operation and all its items in one transaction (which
    /// also records the request's Idempotency-Key), then wakes the worker.
    #[allow(clippy::too_many_arguments)]
    async fn store_operation(
        &self,
        tree: &Account,
        account_id: &str,
        kind: OperationKind,
        to: Option<String>,
        requested_by: &str,
        stored: Stored,
        items: Items,
    ) -> Result<Report> {
        let now_us = self.clock.now_us();
        let new = NewOperation {
            id: new_id("op"),
            tree_id: tree.id.clone(),
            account_id: account_id.to_string(),
            kind,
            to_account_id: to,
            requested_by: requested_by.to_string(),
            request: serde_json::to_string(&stored).map_err(Error::internal)?,
            now_us,
        };
        let mut tx = self.store.begin().await?;
        store::operations::insert(&mut tx, &new).await?;
        let total = match &items {
            Items::Ids(ids) => {
                store::operations::insert_items(&mut tx, &new.id, ids).await?;
                ids.len() as i64
            }
            Items::Filter(s) => {
                let max = resources::BULK_MAX as i64;
                let n = store::operations::insert_selected_items(&mut tx, &new.id, s, max + 1)
                    .await? as i64;
                if n > max {
                    return Err(Error::invalid(
                        "filter",
                        format!(
                            "matches more than {max} resources; at most {max} per operation: narrow it (kind, status, tag, prefix) and send several"
                        ),
                    ));
                }
                if n == 0 {
                    return Err(Error::invalid(
                        "filter",
                        "matches no resource within reach of this request; check it with GET /v1/accounts/{id}/resources",
                    ));
                }
                n
            }
        };
        store::operations::set_total(&mut tx, &new.id, total).await?;
        store::idempotency::note_resource_in(&mut tx, &new.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        WAKE.notify_waiters();
        Ok(Report {
            operation: Operation {
                id: new.id,
                tree_id: new.tree_id,
                account_id: new.account_id,
                kind,
                to_account_id: new.to_account_id,
                request: new.request,
                status: OperationStatus::Queued,
                total,
                succeeded: 0,
                failed: 0,
                created_at: crate::clock::from_us(now_us),
                finished_at: None,
            },
            errors: vec![],
        })
    }

    async fn report(&self, id: &str) -> Result<Report> {
        let mut c = self.store.reader().await?;
        let operation = store::operations::get(&mut c, id)
            .await?
            .ok_or_else(|| Error::internal("a committed operation vanished"))?;
        let errors = store::operations::errors(&mut c, id, operations::ERRORS_SHOWN).await?;
        Ok(Report { operation, errors })
    }

    /// `GET /v1/accounts/{id}/operations/{op_id}`: a parent sees its whole
    /// tree's operations, a sub-account those requested in it.
    pub async fn get_operation(
        &self,
        principal: &Principal,
        account_id: &str,
        op_id: &str,
    ) -> Result<Report> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "operation.read", &[]).await?;
        let mut c = self.store.reader().await?;
        let operation = store::operations::get(&mut c, op_id)
            .await?
            .filter(|o| {
                if actor.target.is_parent() {
                    o.tree_id == actor.target.id
                } else {
                    o.account_id == actor.target.id
                }
            })
            .ok_or_else(|| Error::not_found("operation", op_id))?;
        let errors = store::operations::errors(&mut c, op_id, operations::ERRORS_SHOWN).await?;
        Ok(Report { operation, errors })
    }

    /// `GET /v1/accounts/{id}/operations`, newest first.
    pub async fn list_operations(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<Report>> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "operation.read", &[]).await?;
        self.operations_page(&actor.target, page).await
    }

    /// `GET /v1/operator/accounts/{id}/operations`: also while the tree is
    /// suspended.
    pub async fn operator_list_operations(
        &self,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<Report>> {
        let mut c = self.store.reader().await?;
        let account = store::accounts::get(&mut c, account_id)
            .await?
            .ok_or_else(|| Error::not_found("account", account_id))?;
        drop(c);
        self.authorize_operator("operation.read", Some(&account))
            .await?;
        self.operations_page(&account, page).await
    }

    async fn operations_page(&self, account: &Account, page: &Page) -> Result<Paged<Report>> {
        let among = if account.is_parent() {
            Among::Tree(&account.id)
        } else {
            Among::Account(&account.id)
        };
        let mut c = self.store.reader().await?;
        let ops = store::operations::list(&mut c, among, page).await?;
        let mut reports = Vec::with_capacity(ops.len());
        for operation in ops {
            let errors = if operation.failed > 0 {
                store::operations::errors(&mut c, &operation.id, operations::ERRORS_SHOWN).await?
            } else {
                vec![]
            };
            reports.push(Report { operation, errors });
        }
        Ok(Paged::from_fetch(reports, page, |r| {
            super::keyset_cursor(r.operation.created_at, &r.operation.id)
        }))
    }
}

/// Wall-clock microseconds, for leases (never the movable test clock: two
/// hosts must agree on when a lease ends).
fn wall_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// What one chunk found.
enum Chunk {
    /// Items remain.
    More,
    /// The operation finished.
    Done,
    /// Another host holds the operation now (this host's lease expired).
    Lost,
}

/// Runs operations forever: the background task every host starts.
pub async fn run_operations(canopy: Arc<Canopy>) {
    let host = new_id("host");
    work_forever("running an operation", &WAKE, POLL, || {
        canopy.work_once(&host)
    })
    .await
}

/// A durable worker's loop (operations, campaigns): `work` claims and does
/// one piece of work, `Ok(false)` when none was waiting; then it is called
/// again at once, or when `wake` is notified or `poll` has passed, or
/// after a pause when it failed (`what` names it in the log).
pub(crate) async fn work_forever<F, Fut>(
    what: &str,
    wake: &tokio::sync::Notify,
    poll: Duration,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    loop {
        match work().await {
            Ok(true) => tokio::task::yield_now().await,
            Ok(false) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

impl Canopy {
    fn lease_until(&self) -> i64 {
        wall_us() + self.settings.operation_lease.as_micros() as i64
    }

    /// Claims one waiting operation and runs it to its end (or until
    /// another host takes it over); false if none was waiting.
    pub async fn work_once(&self, host: &str) -> Result<bool> {
        {
            let mut c = self.store.reader().await?;
            if store::operations::claimable(&mut c, wall_us())
                .await?
                .is_none()
            {
                return Ok(false);
            }
        }
        let mut tx = self.store.begin().await?;
        let claimed = store::operations::claim(
            &mut tx,
            self.store.backend,
            host,
            wall_us(),
            self.lease_until(),
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        let Some(op) = claimed else {
            return Ok(true);
        };
        let work = work_of(&op)?;
        tracing::info!(operation = %op.id, kind = %op.kind, total = op.total, "operation claimed");
        loop {
            let chunk = match self.run_chunk(&op, &work, host).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Nothing of the failed chunk committed; let any host
                    // (this one too) try again from the same items.
                    let mut tx = self.store.begin().await?;
                    store::operations::release(&mut tx, &op.id, host).await?;
                    tx.commit().await.map_err(store::db_error)?;
                    return Err(e);
                }
            };
            match chunk {
                Chunk::More => {
                    crate::crashpoint::hit(crate::crashpoint::BETWEEN_OPERATION_CHUNKS);
                    tokio::task::yield_now().await;
                }
                Chunk::Done => {
                    tracing::info!(operation = %op.id, "operation finished");
                    return Ok(true);
                }
                Chunk::Lost => {
                    tracing::warn!(operation = %op.id, "operation taken over by another host");
                    return Ok(true);
                }
            }
        }
    }

    /// One chunk in one transaction: renew the lease (holding the
    /// operation's row), do up to `CHUNK_ITEMS` items, count them, and
    /// finish the operation when none remain.
    async fn run_chunk(&self, op: &Operation, work: &Work, host: &str) -> Result<Chunk> {
        let mut tx = self.store.begin().await?;
        if !store::operations::renew(&mut tx, &op.id, host, self.lease_until()).await? {
            return Ok(Chunk::Lost);
        }
        let now_us = self.clock.now_us();
        if let Work::Transfer { tree_id, to } = work
            && to != tree_id
        {
            let status =
                store::operations::target_status_held(&mut tx, self.store.backend, tree_id, to)
                    .await?;
            if status.as_deref() != Some(Status::Active.as_str()) {
                let reason = format!(
                    "the target `{to}` is no longer active ({}); nothing more moves",
                    status.as_deref().unwrap_or("gone")
                );
                let failed = store::operations::fail_rest(
                    &mut tx,
                    &op.id,
                    TARGET_NOT_ACTIVE,
                    &reason,
                    now_us,
                )
                .await?;
                store::operations::progress(&mut tx, &op.id, 0, failed).await?;
                store::operations::finish(&mut tx, &op.id, host, OperationStatus::Failed, now_us)
                    .await?;
                super::webhooks::operation_finished(&mut tx, &op.id, now_us).await?;
                tx.commit().await.map_err(store::db_error)?;
                return Ok(Chunk::Done);
            }
        }
        let items = store::operations::pending(&mut tx, &op.id, CHUNK_ITEMS).await?;
        let (mut succeeded, mut failed) = (0i64, 0i64);
        for item in &items {
            let refusal = self
                .do_item(&mut tx, op, work, item.clone(), now_us)
                .await?;
            let refusal = refusal.as_ref().map(|r| (r.code, r.reason.as_str()));
            if !store::operations::finish_item(&mut tx, &op.id, item.seq, refusal, now_us).await? {
                // Done elsewhere already: this chunk must not count it again.
                return Err(Error::internal(format!(
                    "item {} of operation {} already had an outcome",
                    item.seq, op.id
                )));
            }
            if refusal.is_some() {
                failed += 1;
            } else {
                succeeded += 1;
            }
        }
        store::operations::progress(&mut tx, &op.id, succeeded, failed).await?;
        let done = (items.len() as i64) < CHUNK_ITEMS;
        if done {
            store::operations::finish(&mut tx, &op.id, host, OperationStatus::Completed, now_us)
                .await?;
            super::webhooks::operation_finished(&mut tx, &op.id, now_us).await?;
        }
        tx.commit().await.map_err(store::db_error)?;
        Ok(if done { Chunk::Done } else { Chunk::More })
    }

    /// One item: its change with a conditional update and history row, or
    /// why it was refused.
    async fn do_item(
        &self,
        tx: &mut Tx,
        op: &Operation,
        work: &Work,
        item: store::operations::Pending,
        now_us: i64,
    ) -> Result<Option<resources::ItemRefusal>> {
        let mut found: Option<Found> = item.found;
        let mut read_seq = item.resource_seq;
        for _ in 0..ITEM_ATTEMPTS {
            let change = match work.decide(found.as_ref()) {
                Ok(change) => change,
                Err(refusal) => return Ok(Some(refusal)),
            };
            let from = found.as_ref().expect("a change has a resource");
            let applied = store::operations::apply(
                tx,
                &Applied {
                    resource_id: &item.resource_id,
                    operation_id: &op.id,
                    transfer: op.kind == OperationKind::Transfer,
                    from_account_id: &from.account_id,
                    from_status: from.status,
                    read_seq,
                    account_id: &change.account_id,
                    status: change.status,
                    now_us,
                },
            )
            .await?;
            if applied {
                return Ok(None);
            }
            // Changed since it was read (another request or operation):
            // decide again on what it is now.
            (found, read_seq) = store::operations::reread(tx, &item.resource_id).await?;
        }
        Ok(Some(resources::ItemRefusal {
            code: "wrong_status",
            reason: "this resource kept changing while the operation ran; try again".into(),
        }))
    }
}

/// What a stored operation does to each item.
fn work_of(op: &Operation) -> Result<Work> {
    let stored: Stored = serde_json::from_str(&op.request)
        .map_err(|e| Error::internal(format!("stored operation {}: {e}", op.id)))?;
    match op.kind.action() {
        None => Ok(Work::Transfer {
            tree_id: op.tree_id.clone(),
            to: op
                .to_account_id
                .clone()
                .ok_or_else(|| Error::internal("a transfer without a target"))?,
        }),
        Some(action) => Ok(Work::Act {
            holder: stored.holder.unwrap_or_else(|| op.account_id.clone()),
            action,
        }),
    }
}
