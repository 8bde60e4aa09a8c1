//! Suspension, reactivation and deletion, with their cascades (invariant 3).
//!
//! Suspension and reactivation ask the `cascade` policy for a plan; the host
//! checks every step of it against the status machine and applies it in one
//! transaction. Deletes follow a plan fixed by the host.

use super::access::require_not_deleted;
use super::{Canopy, Principal};
use crate::domain::account::transition_allowed;
use crate::domain::resources::ResourceStatus;
use crate::domain::{Account, Relation, Status, SuspendedBy};
use crate::error::PolicyRef;
use crate::policy::input::{self, PrincipalDoc};
use std::collections::{HashMap, HashSet};

use crate::policy::output::{
    Campaigns, CascadePlan, Resources, ReturnAmount, ReturnPlan, StatusPlan, Target,
};
use crate::policy::{Scope, View};
use crate::store::accounts::StatusChange;
use crate::store::{self, Tx};
use crate::{Error, Result};

/// The events a cascade policy is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    ParentSuspended,
    ParentUnsuspended,
    SubaccountSuspended,
    SubaccountUnsuspended,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::ParentSuspended => "parent.suspended",
            Event::ParentUnsuspended => "parent.unsuspended",
            Event::SubaccountSuspended => "subaccount.suspended",
            Event::SubaccountUnsuspended => "subaccount.unsuspended",
        }
    }

    /// The suspension a reactivation undoes; a suspension itself.
    fn suspension(self) -> Event {
        match self {
            Event::ParentSuspended | Event::ParentUnsuspended => Event::ParentSuspended,
            Event::SubaccountSuspended | Event::SubaccountUnsuspended => Event::SubaccountSuspended,
        }
    }
}

/// A sub-account's status change, as its parent's admin asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Suspend,
    Unsuspend,
    Delete,
}

impl Change {
    /// The `authorize` action the change is asked under.
    pub fn action(self) -> &'static str {
        match self {
            Change::Suspend => "subaccount.suspend",
            Change::Unsuspend => "subaccount.unsuspend",
            Change::Delete => "subaccount.delete",
        }
    }
}

/// What a sub-account's status change would do, as read before it is made
/// ([`Canopy::preview_subaccount_change`]).
#[derive(Debug, Clone)]
pub struct Preview {
    /// The sub-account, as it is now.
    pub account: Account,
    pub change: Change,
    /// Members who accepted their membership: they can no longer act in it
    /// while it is suspended or once it is deleted.
    pub members: i64,
    /// API keys that work now (not revoked, not expired).
    pub live_api_keys: i64,
    /// Lines and SIMs it holds (not disconnected or terminated).
    pub lines: i64,
    pub sims: i64,
    /// What the plan does to its campaigns, and how many it changes.
    pub campaigns: Campaigns,
    pub campaigns_changed: i64,
    /// What the plan does to its SIMs, and how many SIMs that concerns
    /// (on a reactivation, at most that many: only those the suspension
    /// took come back).
    pub resources: Resources,
    pub sims_changed: i64,
    /// Its budget now; `None` for shared usage, or when `visibility` hides
    /// balances from the viewer.
    pub budget: Option<crate::domain::Amount>,
    /// Whether its whole budget returns to the parent.
    pub budget_returned: bool,
}

/// The host's precondition of a sub-account's own suspension (409).
fn suspendable(sub: &Account) -> Result<()> {
    if sub.status != Status::Active {
        return Err(Error::Conflict(format!(
            "only an active sub-account can be suspended; `{}` is {}",
            sub.id, sub.status
        )));
    }
    Ok(())
}

/// The host's precondition of a sub-account's own reactivation (409).
fn reactivable(sub: &Account) -> Result<()> {
    if sub.status != Status::Suspended {
        return Err(Error::Conflict(format!(
            "`{}` is {}, not suspended",
            sub.id, sub.status
        )));
    }
    if sub.suspended_by == Some(SuspendedBy::Parent) {
        return Err(Error::Conflict(format!(
            "`{}` was suspended with its parent and comes back when the parent is reactivated",
            sub.id
        )));
    }
    Ok(())
}

fn changed_meanwhile(id: &str) -> Error {
    Error::Conflict(format!(
        "account `{id}` changed status while this request ran; read it again and retry"
    ))
}

/// A cascade plan the host accepted: status changes, the sub-accounts
/// whose whole budget returns to the parent, and what the SIMs of the
/// sub-accounts suspended or reactivated do.
#[derive(Debug, Default)]
struct Checked {
    steps: Vec<(Account, StatusChange)>,
    returns: Vec<Account>,
    resources: Resources,
    /// What the campaigns of the accounts the plan changes do.
    campaigns: Campaigns,
}

/// The sub-accounts concerned, by id.
type Tree<'a> = HashMap<&'a str, &'a Account>;

/// A plan's status changes, expanded against the sub-accounts concerned:
/// `(sub-account, new status)` for each one that changes. A list names each
/// sub-account at most once; rules apply to every sub-account of the
/// statuses they name, except those listed.
fn expand_statuses<'a>(
    plan: &StatusPlan,
    subs: &'a [Account],
    tree: &Tree<'a>,
) -> std::result::Result<Vec<(&'a Account, Status)>, String> {
    let resolve = |sub: &Account, target: Target| match target {
        Target::Status(s) => Ok(Some(s)),
        Target::Keep => Ok(None),
        Target::Restore => sub
            .previous_status
            .map(Some)
            .ok_or_else(|| format!("`{}` has no previous status to restore", sub.id)),
    };
    let concerned = |id: &str| {
        tree.get(id)
            .copied()
            .ok_or_else(|| format!("`{id}` is not a sub-account concerned"))
    };
    let mut out = Vec::new();
    match plan {
        StatusPlan::List(steps) => {
            let mut seen = HashSet::new();
            for (id, target) in steps {
                let sub = concerned(id)?;
                if !seen.insert(id.as_str()) {
                    return Err(format!("`{id}` appears twice"));
                }
                if let Some(to) = resolve(sub, *target)? {
                    out.push((sub, to));
                }
            }
        }
        StatusPlan::Rules { by_status, except } => {
            let mut exceptions = HashMap::new();
            for (id, target) in except {
                let sub = concerned(id)?;
                if exceptions.insert(sub.id.as_str(), *target).is_some() {
                    return Err(format!("`{id}` appears twice in `except`"));
                }
            }
            for sub in subs {
                let target = exceptions
                    .get(sub.id.as_str())
                    .copied()
                    .or_else(|| StatusPlan::rule_for(by_status, sub.status, sub.suspended_by));
                if let Some(to) = target.map(|t| resolve(sub, t)).transpose()?.flatten() {
                    out.push((sub, to));
                }
            }
        }
    }
    Ok(out)
}

/// The sub-accounts whose whole budget a plan returns, each once.
fn expand_returns<'a>(
    plan: &ReturnPlan,
    subs: &'a [Account],
    tree: &Tree<'a>,
) -> std::result::Result<Vec<&'a Account>, String> {
    let concerned = |id: &str| {
        tree.get(id)
            .copied()
            .ok_or_else(|| format!("a budget return names `{id}`, which is not concerned"))
    };
    let mut out: Vec<&Account> = Vec::new();
    let mut seen = HashSet::new();
    match plan {
        ReturnPlan::List(returns) => {
            for (id, amount) in returns {
                let sub = concerned(id)?;
                if *amount == ReturnAmount::All && seen.insert(sub.id.as_str()) {
                    out.push(sub);
                }
            }
        }
        ReturnPlan::Rules { all, except } => {
            let mut exceptions = HashMap::new();
            for (id, amount) in except {
                let sub = concerned(id)?;
                if exceptions.insert(sub.id.as_str(), *amount).is_some() {
                    return Err(format!("`{id}` appears twice in `returns.except`"));
                }
            }
            out.extend(
                subs.iter()
                    .filter(|s| exceptions.get(s.id.as_str()).unwrap_or(all) == &ReturnAmount::All),
            );
        }
    }
    Ok(out)
}

/// Checks a policy's plan: every step names a sub-account given to it and is
/// one the host accepts for the event; anything else fails closed.
fn checked_steps(
    event: Event,
    policy: &PolicyRef,
    plan: &CascadePlan,
    subs: &[Account],
    own: Option<&str>,
) -> Result<Checked> {
    let refuse = |why: String| {
        Error::PolicyFailed(PolicyRef {
            reason: format!(
                "policy `{}` gave a cascade plan the host refuses: {why}",
                policy.id
            ),
            ..policy.clone()
        })
    };
    let tree: Tree = subs.iter().map(|s| (s.id.as_str(), s)).collect();
    let expanded = expand_statuses(&plan.subaccounts, subs, &tree)
        .map_err(|why| refuse(format!("{why} on {}", event.name())))?;
    let mut steps: Vec<(Account, StatusChange)> = Vec::with_capacity(expanded.len());
    for (sub, to) in expanded {
        let id = &sub.id;
        let change = match event {
            Event::ParentSuspended
                if matches!(sub.status, Status::Invited | Status::Active)
                    && to == Status::Suspended =>
            {
                StatusChange {
                    from: sub.status,
                    to: Status::Suspended,
                    previous_status: Some(sub.status),
                    suspended_by: Some(SuspendedBy::Parent),
                }
            }
            Event::ParentUnsuspended
                if sub.status == Status::Suspended
                    && sub.suspended_by == Some(SuspendedBy::Parent)
                    && Some(to) == sub.previous_status =>
            {
                StatusChange {
                    from: Status::Suspended,
                    to,
                    previous_status: None,
                    suspended_by: None,
                }
            }
            // A sub-account's own change is the host's; a plan may only repeat it.
            Event::SubaccountSuspended | Event::SubaccountUnsuspended
                if Some(id.as_str()) == own =>
            {
                continue;
            }
            _ => {
                return Err(refuse(format!(
                    "`{id}` cannot go from {} to {to} on {}",
                    sub.status,
                    event.name()
                )));
            }
        };
        debug_assert!(transition_allowed(change.from, change.to, true));
        steps.push((sub.clone(), change));
    }
    let returns = expand_returns(&plan.returns, subs, &tree)
        .map_err(refuse)?
        .into_iter()
        .cloned()
        .collect();
    // SIMs are suspended on a suspension and resumed on a reactivation only.
    let suspension = event.suspension() == event;
    let resources = match plan.resources {
        Resources::Suspend if !suspension => {
            return Err(refuse(format!(
                "`resources: \"suspend\"` applies on a suspension, not on {}",
                event.name()
            )));
        }
        Resources::Resume if suspension => {
            return Err(refuse(format!(
                "`resources: \"resume\"` applies on a reactivation, not on {}",
                event.name()
            )));
        }
        r => r,
    };
    Ok(Checked {
        steps,
        returns,
        resources,
        campaigns: plan.campaigns,
    })
}

impl Canopy {
    async fn cascade_steps(
        &self,
        principal: PrincipalDoc,
        event: Event,
        (target, target_parent): (&Account, Option<&Account>),
        subs: &[Account],
    ) -> Result<Checked> {
        let tree = target.tree_root_id();
        let budgets = {
            let mut c = self.store.reader().await?;
            store::ledger::budgets_of_tree(&mut c, tree).await?
        };
        let doc = input::cascade(
            &principal,
            event.name(),
            input::account(target, target_parent),
            subs,
            &budgets,
        );
        // Customer cascade policies decide only what the tree's own users
        // do; an operator's suspension follows the defaults and platform.
        let scope = if principal.relation == Relation::Operator {
            Scope::operator(Some(&target.id))
        } else {
            Scope::tree(tree, &target.id)
        };
        let (policy, plan) = self.policies.cascade(&scope, doc).await?;
        let own = (target.parent_id.is_some()).then_some(target.id.as_str());
        checked_steps(event, &policy, &plan, subs, own)
    }

    async fn apply(tx: &mut Tx, id: &str, change: StatusChange, now_us: i64) -> Result<()> {
        if store::accounts::change_status(tx, id, change, now_us).await? {
            store::events::status_changed(tx, &[id], change, now_us).await
        } else {
            Err(changed_meanwhile(id))
        }
    }

    /// Applies many status changes, set-based: one statement per kind of
    /// change and few hundred accounts, not one per account.
    async fn apply_many<'a>(
        tx: &mut Tx,
        steps: impl IntoIterator<Item = (&'a str, StatusChange)>,
        now_us: i64,
    ) -> Result<()> {
        // Grouped in the order first seen, so locks are taken in a stable order.
        let mut groups: Vec<(StatusChange, Vec<&str>)> = Vec::new();
        for (id, change) in steps {
            match groups.iter_mut().find(|(c, _)| *c == change) {
                Some((_, ids)) => ids.push(id),
                None => groups.push((change, vec![id])),
            }
        }
        for (change, ids) in groups {
            let changed = store::accounts::change_statuses(tx, &ids, change, now_us).await?;
            if changed != ids.len() as u64 {
                return Err(Error::Conflict(
                    "a sub-account changed status while this request ran; read it again and retry"
                        .into(),
                ));
            }
            store::events::status_changed(tx, &ids, change, now_us).await?;
        }
        Ok(())
    }

    /// Returns the whole budget of each of `subs` that holds one, in the
    /// operation's transaction: one query finds them, so a tree of 10,000
    /// empty budgets costs no 10,000 locks.
    async fn return_budgets(
        &self,
        tx: &mut Tx,
        parent: &Account,
        subs: &[Account],
        now_us: i64,
    ) -> Result<()> {
        if subs.is_empty() {
            return Ok(());
        }
        let held = store::ledger::budgets_of_tree(tx, &parent.id).await?;
        for sub in subs {
            if held.get(&sub.id).is_some_and(|b| !b.decimal().is_zero()) {
                self.return_all(tx, parent, sub, now_us).await?;
            }
        }
        Ok(())
    }

    /// Applies a plan's `resources` to the SIMs of `holders`, the
    /// sub-accounts `event` on `account_id` suspends or reactivates, in the
    /// operation's transaction. A reactivation resumes only the SIMs the
    /// matching suspension's cascade suspended and nothing changed since
    /// (`store::resource_status`).
    async fn apply_resources(
        tx: &mut Tx,
        (event, account_id): (Event, &str),
        resources: Resources,
        holders: &[&str],
        now_us: i64,
    ) -> Result<u64> {
        use store::resource_status::{marker, resume_sims, suspend_sims};
        let this = marker(event.name(), account_id);
        match resources {
            Resources::Keep => Ok(0),
            Resources::Suspend => suspend_sims(tx, holders, &this, now_us).await,
            Resources::Resume => {
                let suspended_by = marker(event.suspension().name(), account_id);
                resume_sims(tx, holders, &suspended_by, &this, now_us).await
            }
        }
    }

    async fn reread(tx: &mut Tx, id: &str) -> Result<Account> {
        store::accounts::get(tx, id)
            .await?
            .ok_or_else(|| Error::internal("account vanished"))
    }

    // Sub-accounts, by their parent's admin.

    pub async fn suspend_subaccount(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(Account, View)> {
        let actor = self
            .enter_subaccount(principal, id, "subaccount.suspend")
            .await?;
        let sub = &actor.target;
        suspendable(sub)?;
        let plan = self
            .cascade_steps(
                actor.principal_doc(),
                Event::SubaccountSuspended,
                (sub, actor.parent.as_ref()),
                std::slice::from_ref(sub),
            )
            .await?;
        debug_assert!(plan.steps.is_empty());
        let now_us = self.clock.now_us();
        // Decided before the write, so a denied view changes nothing.
        let view = self.view(&actor, "account.read", "account").await?;
        let mut tx = self.store.begin().await?;
        let change = StatusChange {
            from: Status::Active,
            to: Status::Suspended,
            previous_status: Some(Status::Active),
            suspended_by: Some(SuspendedBy::Own),
        };
        Self::apply(&mut tx, &sub.id, change, now_us).await?;
        store::campaigns::apply_plan(&mut tx, &[sub.id.as_str()], plan.campaigns, now_us).await?;
        Self::apply_resources(
            &mut tx,
            (Event::SubaccountSuspended, &sub.id),
            plan.resources,
            &[sub.id.as_str()],
            now_us,
        )
        .await?;
        for returned in &plan.returns {
            self.return_all(&mut tx, actor.tree_parent(), returned, now_us)
                .await?;
        }
        let account = Self::reread(&mut tx, &sub.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok((account, view))
    }

    pub async fn unsuspend_subaccount(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(Account, View)> {
        let actor = self
            .enter_subaccount(principal, id, "subaccount.unsuspend")
            .await?;
        let sub = &actor.target;
        reactivable(sub)?;
        let plan = self
            .cascade_steps(
                actor.principal_doc(),
                Event::SubaccountUnsuspended,
                (sub, actor.parent.as_ref()),
                std::slice::from_ref(sub),
            )
            .await?;
        let to = sub.previous_status.unwrap_or(Status::Active);
        let now_us = self.clock.now_us();
        // Decided before the write, so a denied view changes nothing.
        let view = self.view(&actor, "account.read", "account").await?;
        let mut tx = self.store.begin().await?;
        Self::apply(
            &mut tx,
            &sub.id,
            StatusChange {
                from: Status::Suspended,
                to,
                previous_status: None,
                suspended_by: None,
            },
            now_us,
        )
        .await?;
        store::campaigns::apply_plan(&mut tx, &[sub.id.as_str()], plan.campaigns, now_us).await?;
        Self::apply_resources(
            &mut tx,
            (Event::SubaccountUnsuspended, &sub.id),
            plan.resources,
            &[sub.id.as_str()],
            now_us,
        )
        .await?;
        for returned in &plan.returns {
            self.return_all(&mut tx, actor.tree_parent(), returned, now_us)
                .await?;
        }
        let account = Self::reread(&mut tx, &sub.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok((account, view))
    }

    /// Deletes a sub-account at once; its data is purged after retention.
    pub async fn delete_subaccount(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(Account, View)> {
        let actor = self
            .enter_subaccount(principal, id, "subaccount.delete")
            .await?;
        let sub = &actor.target;
        require_not_deleted(sub)?;
        let now_us = self.clock.now_us();
        // Decided before the write, so a denied view changes nothing.
        let view = self.view(&actor, "account.read", "account").await?;
        let mut tx = self.store.begin().await?;
        let change = StatusChange {
            from: sub.status,
            to: Status::Deleted,
            previous_status: None,
            suspended_by: None,
        };
        Self::apply(&mut tx, &sub.id, change, now_us).await?;
        store::campaigns::apply_plan(&mut tx, &[sub.id.as_str()], Campaigns::Delete, now_us)
            .await?;
        // After the status change locked the row: a transfer into it that
        // committed first is counted, one that comes later finds it deleted.
        super::retention::refuse_live_resources(&mut tx, &sub.id).await?;
        self.return_all(&mut tx, actor.tree_parent(), sub, now_us)
            .await?;
        let account = Self::reread(&mut tx, &sub.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %sub.id, "sub-account deleted");
        Ok((account, view))
    }

    /// What suspending, reactivating or deleting sub-account `id` would do
    /// now, read from the data the change itself uses and changing
    /// nothing: the confirmation a person reads before the change. The
    /// change's own checks run first (its `authorize` action and status
    /// preconditions give the same refusal), then the suspension's or
    /// reactivation's `cascade` plan is asked for exactly as the change asks
    /// (so, like every evaluation, it appears in the decision log); a
    /// deletion's plan is the host's.
    pub async fn preview_subaccount_change(
        &self,
        principal: &Principal,
        id: &str,
        change: Change,
    ) -> Result<Preview> {
        let actor = self
            .enter_subaccount(principal, id, change.action())
            .await?;
        let sub = &actor.target;
        let (campaigns, resources, returns) = match change {
            Change::Suspend | Change::Unsuspend => {
                let event = if change == Change::Suspend {
                    suspendable(sub)?;
                    Event::SubaccountSuspended
                } else {
                    reactivable(sub)?;
                    Event::SubaccountUnsuspended
                };
                let plan = self
                    .cascade_steps(
                        actor.principal_doc(),
                        event,
                        (sub, actor.parent.as_ref()),
                        std::slice::from_ref(sub),
                    )
                    .await?;
                // A reactivation's returns are checked but do nothing.
                let returns = change == Change::Suspend && !plan.returns.is_empty();
                (plan.campaigns, plan.resources, returns)
            }
            Change::Delete => {
                require_not_deleted(sub)?;
                (Campaigns::Delete, Resources::Keep, true)
            }
        };
        let view = self.view(&actor, "balance.read", "balance").await?;
        let mut c = self.store.reader().await?;
        if change == Change::Delete {
            super::retention::refuse_live_resources(&mut c, &sub.id).await?;
        }
        let counts = store::resources::counts_of(&mut c, std::slice::from_ref(&sub.id))
            .await?
            .remove(&sub.id)
            .unwrap_or_default();
        let sims_changed = match resources {
            Resources::Keep => 0,
            Resources::Suspend => {
                store::resources::count_sims(&mut c, &sub.id, ResourceStatus::Active).await?
            }
            Resources::Resume => {
                store::resources::count_sims(&mut c, &sub.id, ResourceStatus::Suspended).await?
            }
        };
        let budget = match sub.credit_mode {
            Some(crate::domain::CreditMode::AssignedBudget) if !view.hides("balance") => Some(
                store::ledger::balance(&mut c, &crate::domain::ledger::LedgerRef::budget(sub))
                    .await?,
            ),
            _ => None,
        };
        Ok(Preview {
            change,
            members: store::credentials::count_members(&mut c, &sub.id).await?,
            live_api_keys: store::credentials::count_live_api_keys(
                &mut c,
                &sub.id,
                self.clock.now_us(),
            )
            .await?,
            lines: counts.line,
            sims: counts.sim,
            campaigns,
            campaigns_changed: store::campaigns::count_for_plan(&mut c, &sub.id, campaigns).await?,
            resources,
            sims_changed,
            budget,
            budget_returned: returns,
            account: actor.target,
        })
    }

    // Parents, by the operator.

    pub async fn suspend_parent(&self, id: &str) -> Result<Account> {
        self.change_parent(id, Event::ParentSuspended).await
    }

    pub async fn unsuspend_parent(&self, id: &str) -> Result<Account> {
        self.change_parent(id, Event::ParentUnsuspended).await
    }

    async fn change_parent(&self, id: &str, event: Event) -> Result<Account> {
        let parent = self.get_parent(id).await?;
        let action = if event == Event::ParentSuspended {
            "parent.suspend"
        } else {
            "parent.unsuspend"
        };
        self.authorize_operator(action, Some(&parent)).await?;
        let own = match (event, parent.status) {
            (Event::ParentSuspended, Status::Active) => StatusChange {
                from: Status::Active,
                to: Status::Suspended,
                previous_status: Some(Status::Active),
                suspended_by: Some(SuspendedBy::Own),
            },
            (Event::ParentUnsuspended, Status::Suspended) => StatusChange {
                from: Status::Suspended,
                to: Status::Active,
                previous_status: None,
                suspended_by: None,
            },
            (_, status) => {
                return Err(Error::Conflict(format!(
                    "parent `{}` is {status}; nothing to {}",
                    parent.id,
                    action.trim_start_matches("parent.")
                )));
            }
        };
        let subs = {
            let mut c = self.store.reader().await?;
            store::accounts::all_subaccounts(&mut c, &parent.id).await?
        };
        let plan = self
            .cascade_steps(PrincipalDoc::operator(), event, (&parent, None), &subs)
            .await?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        Self::apply(&mut tx, &parent.id, own, now_us).await?;
        Self::apply_many(
            &mut tx,
            plan.steps
                .iter()
                .map(|(sub, change)| (sub.id.as_str(), *change)),
            now_us,
        )
        .await?;
        // Every step of a parent's plan suspends (or reactivates) its sub-account.
        let holders: Vec<&str> = plan.steps.iter().map(|(s, _)| s.id.as_str()).collect();
        let changed: Vec<&str> = std::iter::once(parent.id.as_str())
            .chain(holders.iter().copied())
            .collect();
        store::campaigns::apply_plan(&mut tx, &changed, plan.campaigns, now_us).await?;
        let sims = Self::apply_resources(
            &mut tx,
            (event, &parent.id),
            plan.resources,
            &holders,
            now_us,
        )
        .await?;
        // Budgets return only where the plan says so (default: none).
        self.return_budgets(&mut tx, &parent, &plan.returns, now_us)
            .await?;
        let account = Self::reread(&mut tx, &parent.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %parent.id, event = event.name(), subaccounts = plan.steps.len(), returned = plan.returns.len(), sims, "parent status changed");
        Ok(account)
    }

    /// Deletes a parent and every sub-account of it, in one transaction.
    pub async fn delete_parent(&self, id: &str) -> Result<Account> {
        let parent = self.get_parent(id).await?;
        require_not_deleted(&parent)?;
        self.authorize_operator("parent.delete", Some(&parent))
            .await?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        // The parent first, as every cascade does: two operations on one
        // tree queue here instead of locking its rows in different orders.
        if !store::accounts::lock_live(&mut tx, &parent.id).await? {
            return Err(changed_meanwhile(&parent.id));
        }
        super::retention::refuse_live_resources_of_tree(&mut tx, &parent.id).await?;
        let subs = store::accounts::all_subaccounts(&mut tx, &parent.id).await?;
        let deleted = |sub: &Account| StatusChange {
            from: sub.status,
            to: Status::Deleted,
            previous_status: None,
            suspended_by: None,
        };
        Self::apply_many(
            &mut tx,
            subs.iter().map(|s| (s.id.as_str(), deleted(s))),
            now_us,
        )
        .await?;
        let tree: Vec<&str> = std::iter::once(parent.id.as_str())
            .chain(subs.iter().map(|s| s.id.as_str()))
            .collect();
        store::campaigns::apply_plan(&mut tx, &tree, Campaigns::Delete, now_us).await?;
        // Deleted first: no budget is credited to a deleted account, so
        // what is read now is all there is to return.
        self.return_budgets(&mut tx, &parent, &subs, now_us).await?;
        let change = StatusChange {
            from: parent.status,
            to: Status::Deleted,
            previous_status: None,
            suspended_by: None,
        };
        self.close_wallet(&mut tx, &parent, now_us).await?;
        Self::apply(&mut tx, &parent.id, change, now_us).await?;
        let account = Self::reread(&mut tx, &parent.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %parent.id, "parent deleted with its sub-accounts");
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, status: Status, by: Option<SuspendedBy>, previous: Option<Status>) -> Account {
        let mut a = crate::domain::account::tests_support::subaccount(id);
        a.status = status;
        a.suspended_by = by;
        a.previous_status = previous;
        a
    }

    fn policy() -> PolicyRef {
        PolicyRef {
            id: "p".into(),
            name: "p".into(),
            version: 1,
            reason: String::new(),
        }
    }

    fn plan(steps: &[(&str, Status)]) -> CascadePlan {
        CascadePlan {
            subaccounts: StatusPlan::List(
                steps
                    .iter()
                    .map(|(i, s)| (i.to_string(), Target::Status(*s)))
                    .collect(),
            ),
            returns: ReturnPlan::List(vec![]),
            campaigns: Campaigns::Keep,
            resources: Resources::Keep,
        }
    }

    fn rules(out: serde_json::Value) -> CascadePlan {
        crate::policy::output::cascade_plan(&out).unwrap()
    }

    /// A tree of every kind: active, invited, suspended by itself and by
    /// its parent (from active and from invited).
    fn tree() -> Vec<Account> {
        vec![
            sub("a", Status::Active, None, None),
            sub("i", Status::Invited, None, None),
            sub(
                "s",
                Status::Suspended,
                Some(SuspendedBy::Own),
                Some(Status::Active),
            ),
            sub(
                "pa",
                Status::Suspended,
                Some(SuspendedBy::Parent),
                Some(Status::Active),
            ),
            sub(
                "pi",
                Status::Suspended,
                Some(SuspendedBy::Parent),
                Some(Status::Invited),
            ),
        ]
    }

    fn changes(checked: &Checked) -> Vec<(&str, Status)> {
        checked
            .steps
            .iter()
            .map(|(s, c)| (s.id.as_str(), c.to))
            .collect()
    }

    #[test]
    fn rules_expand_against_the_tree() {
        let subs = tree();
        let suspend = rules(serde_json::json!({
            "subaccounts": {"by_status": {"active": "suspended", "invited": "suspended"},
                            "except": [{"id": "i", "status": "keep"}]},
            "returns": {"all": "all", "except": [{"id": "a", "amount": "0"}]}
        }));
        let checked = checked_steps(
            Event::ParentSuspended,
            &policy(),
            &suspend,
            &subs[..2],
            None,
        )
        .unwrap();
        assert_eq!(changes(&checked), [("a", Status::Suspended)]);
        assert_eq!(checked.steps[0].1.previous_status, Some(Status::Active));
        let returned: Vec<&str> = checked.returns.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(returned, ["i"]);

        // Restore: each suspended with its parent back to its own previous
        // status; the one suspended by itself is not selected.
        let restore = rules(serde_json::json!({
            "subaccounts": {"by_status": {"suspended_by_parent": "restore"}}
        }));
        let checked =
            checked_steps(Event::ParentUnsuspended, &policy(), &restore, &subs, None).unwrap();
        assert_eq!(
            changes(&checked),
            [("pa", Status::Active), ("pi", Status::Invited)]
        );
        assert!(checked.returns.is_empty());
        // The specific key wins over `suspended`, and `restore` works in lists.
        let specific = rules(serde_json::json!({
            "subaccounts": {"by_status": {"suspended": "active", "suspended_by_self": "keep",
                                          "suspended_by_parent": "restore"}}
        }));
        let checked =
            checked_steps(Event::ParentUnsuspended, &policy(), &specific, &subs, None).unwrap();
        assert_eq!(checked.steps.len(), 2);
        let listed = rules(serde_json::json!({"subaccounts": [{"id": "pi", "status": "restore"}]}));
        let checked =
            checked_steps(Event::ParentUnsuspended, &policy(), &listed, &subs, None).unwrap();
        assert_eq!(changes(&checked), [("pi", Status::Invited)]);
    }

    #[test]
    fn expanded_rules_are_checked_like_lists() {
        let subs = tree();
        let bad = [
            // Every suspended one back: includes one suspended by itself.
            (
                Event::ParentUnsuspended,
                serde_json::json!({"subaccounts": {"by_status": {"suspended": "restore"}}}),
            ),
            // Restoring one that has no previous status.
            (
                Event::ParentSuspended,
                serde_json::json!({"subaccounts": [{"id": "a", "status": "restore"}]}),
            ),
            // Already suspended.
            (
                Event::ParentSuspended,
                serde_json::json!({"subaccounts": {"by_status": {"suspended": "suspended"}}}),
            ),
            // To a status the event never takes.
            (
                Event::ParentSuspended,
                serde_json::json!({"subaccounts": {"by_status": {"active": "deleted"}}}),
            ),
            // `except` outside the tree, for steps and returns.
            (
                Event::ParentSuspended,
                serde_json::json!({"subaccounts": {"by_status": {}, "except": [{"id": "elsewhere", "status": "keep"}]}}),
            ),
            (
                Event::ParentSuspended,
                serde_json::json!({"returns": {"all": "0", "except": [{"id": "elsewhere", "amount": "all"}]}}),
            ),
            // A list naming one twice.
            (
                Event::ParentSuspended,
                serde_json::json!({"subaccounts": [{"id": "a", "status": "suspended"}, {"id": "a", "status": "keep"}]}),
            ),
        ];
        for (event, out) in bad {
            let plan = rules(out.clone());
            let result = checked_steps(event, &policy(), &plan, &subs, None);
            assert!(
                matches!(result, Err(Error::PolicyFailed(_))),
                "{event:?} {out}"
            );
        }
    }

    #[test]
    fn sims_follow_only_the_matching_event() {
        let subs = tree();
        let with =
            |resources: &str| rules(serde_json::json!({"subaccounts": [], "resources": resources}));
        for event in [Event::ParentSuspended, Event::SubaccountSuspended] {
            let ok = checked_steps(event, &policy(), &with("suspend"), &subs, None).unwrap();
            assert_eq!(ok.resources, Resources::Suspend);
            let refused = checked_steps(event, &policy(), &with("resume"), &subs, None);
            let Err(Error::PolicyFailed(p)) = refused else {
                panic!("{event:?}: {refused:?}")
            };
            assert!(
                p.reason.contains("applies on a reactivation"),
                "{}",
                p.reason
            );
        }
        for event in [Event::ParentUnsuspended, Event::SubaccountUnsuspended] {
            let ok = checked_steps(event, &policy(), &with("resume"), &subs, None).unwrap();
            assert_eq!(ok.resources, Resources::Resume);
            let refused = checked_steps(event, &policy(), &with("suspend"), &subs, None);
            assert!(matches!(refused, Err(Error::PolicyFailed(_))), "{event:?}");
        }
        // `keep`, written or left out, applies on every event.
        for event in [
            Event::ParentSuspended,
            Event::ParentUnsuspended,
            Event::SubaccountSuspended,
            Event::SubaccountUnsuspended,
        ] {
            let ok = checked_steps(event, &policy(), &with("keep"), &subs, None).unwrap();
            assert_eq!(ok.resources, Resources::Keep);
            let ok = checked_steps(event, &policy(), &plan(&[]), &subs, None).unwrap();
            assert_eq!(ok.resources, Resources::Keep);
        }
        // A reactivation undoes its own kind of suspension.
        assert_eq!(
            Event::ParentUnsuspended.suspension(),
            Event::ParentSuspended
        );
        assert_eq!(
            Event::SubaccountUnsuspended.suspension(),
            Event::SubaccountSuspended
        );
    }

    #[test]
    fn rules_over_the_largest_tree_expand_in_linear_time() {
        let subs: Vec<Account> = (0..crate::ops::subaccounts::SUBACCOUNTS_MAX)
            .map(|i| sub(&format!("acct_{i:06}"), Status::Active, None, None))
            .collect();
        let plan = rules(serde_json::json!({
            "subaccounts": {"by_status": {"active": "suspended"}},
            "returns": {"all": "all"}
        }));
        let started = std::time::Instant::now();
        let checked = checked_steps(Event::ParentSuspended, &policy(), &plan, &subs, None).unwrap();
        assert_eq!(checked.steps.len(), subs.len());
        assert_eq!(checked.returns.len(), subs.len());
        eprintln!(
            "expanded and checked {} steps in {:?}",
            subs.len(),
            started.elapsed()
        );
    }

    #[test]
    fn accepts_the_default_plans() {
        let subs = [
            sub("a", Status::Active, None, None),
            sub("i", Status::Invited, None, None),
            sub(
                "s",
                Status::Suspended,
                Some(SuspendedBy::Own),
                Some(Status::Active),
            ),
        ];
        let steps = checked_steps(
            Event::ParentSuspended,
            &policy(),
            &plan(&[("a", Status::Suspended), ("i", Status::Suspended)]),
            &subs,
            None,
        )
        .unwrap();
        assert_eq!(steps.steps[1].1.previous_status, Some(Status::Invited));
        assert_eq!(steps.steps[1].1.suspended_by, Some(SuspendedBy::Parent));
    }

    #[test]
    fn refuses_plans_that_break_the_status_machine() {
        let subs = [
            sub(
                "s",
                Status::Suspended,
                Some(SuspendedBy::Own),
                Some(Status::Active),
            ),
            sub(
                "p",
                Status::Suspended,
                Some(SuspendedBy::Parent),
                Some(Status::Invited),
            ),
        ];
        let bad = [
            (Event::ParentUnsuspended, plan(&[("s", Status::Active)])), // suspended on its own
            (Event::ParentUnsuspended, plan(&[("p", Status::Active)])), // not its previous status
            (Event::ParentSuspended, plan(&[("s", Status::Suspended)])), // already suspended
            (
                Event::ParentSuspended,
                plan(&[("elsewhere", Status::Suspended)]),
            ),
            (Event::ParentSuspended, plan(&[("p", Status::Deleted)])),
        ];
        for (event, plan) in bad {
            let result = checked_steps(event, &policy(), &plan, &subs, None);
            assert!(
                matches!(result, Err(Error::PolicyFailed(_))),
                "{event:?} {plan:?}"
            );
        }
        let ok = checked_steps(
            Event::ParentUnsuspended,
            &policy(),
            &plan(&[("p", Status::Invited)]),
            &subs,
            None,
        )
        .unwrap();
        assert_eq!(ok.steps[0].1.to, Status::Invited);
    }
}
