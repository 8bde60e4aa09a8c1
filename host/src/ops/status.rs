//! Suspension, reactivation and deletion, with their cascades (invariant 3).
//!
//! Suspension and reactivation ask the `cascade` policy for a plan; the host
//! checks every step of it against the status machine and applies it in one
//! transaction. Deletes follow a plan fixed by the host.

use super::access::require_not_deleted;
use super::{Canopy, Principal};
use crate::domain::account::transition_allowed;
use crate::domain::{Account, Relation, Status, SuspendedBy};
use crate::error::PolicyRef;
use crate::policy::input::{self, PrincipalDoc};
use crate::policy::output::{CascadePlan, ReturnAmount};
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
}

fn changed_meanwhile(id: &str) -> Error {
    Error::Conflict(format!(
        "account `{id}` changed status while this request ran; read it again and retry"
    ))
}

/// A cascade plan the host accepted: status changes, and the sub-accounts
/// whose whole budget returns to the parent.
#[derive(Debug, Default)]
struct Checked {
    steps: Vec<(Account, StatusChange)>,
    returns: Vec<Account>,
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
    let mut steps: Vec<(Account, StatusChange)> = Vec::new();
    for (id, to) in &plan.subaccounts {
        let sub = subs.iter().find(|s| &s.id == id).ok_or_else(|| {
            refuse(format!(
                "`{id}` is not a sub-account concerned by {}",
                event.name()
            ))
        })?;
        if steps.iter().any(|(s, _)| &s.id == id) {
            return Err(refuse(format!("`{id}` appears twice")));
        }
        let change = match event {
            Event::ParentSuspended
                if matches!(sub.status, Status::Invited | Status::Active)
                    && *to == Status::Suspended =>
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
                    && Some(*to) == sub.previous_status =>
            {
                StatusChange {
                    from: Status::Suspended,
                    to: *to,
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
    let mut returns = Vec::new();
    for (id, amount) in &plan.returns {
        let sub = subs.iter().find(|s| &s.id == id).ok_or_else(|| {
            refuse(format!(
                "a budget return names `{id}`, which is not concerned"
            ))
        })?;
        if *amount == ReturnAmount::All && !returns.iter().any(|r: &Account| &r.id == id) {
            returns.push(sub.clone());
        }
    }
    Ok(Checked { steps, returns })
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
            Ok(())
        } else {
            Err(changed_meanwhile(id))
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
        if sub.status != Status::Active {
            return Err(Error::Conflict(format!(
                "only an active sub-account can be suspended; `{}` is {}",
                sub.id, sub.status
            )));
        }
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
        self.return_all(&mut tx, actor.tree_parent(), sub, now_us)
            .await?;
        let account = Self::reread(&mut tx, &sub.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %sub.id, "sub-account deleted");
        Ok((account, view))
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
        for (sub, change) in &plan.steps {
            Self::apply(&mut tx, &sub.id, *change, now_us).await?;
        }
        // Budgets return only where the plan says so (default: none).
        for returned in &plan.returns {
            self.return_all(&mut tx, &parent, returned, now_us).await?;
        }
        let account = Self::reread(&mut tx, &parent.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %parent.id, event = event.name(), subaccounts = plan.steps.len(), returned = plan.returns.len(), "parent status changed");
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
        for sub in store::accounts::all_subaccounts(&mut tx, &parent.id).await? {
            let change = StatusChange {
                from: sub.status,
                to: Status::Deleted,
                previous_status: None,
                suspended_by: None,
            };
            Self::apply(&mut tx, &sub.id, change, now_us).await?;
            self.return_all(&mut tx, &parent, &sub, now_us).await?;
        }
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
    use crate::policy::output::Campaigns;

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
            version: 1,
            reason: String::new(),
        }
    }

    fn plan(steps: &[(&str, Status)]) -> CascadePlan {
        CascadePlan {
            subaccounts: steps.iter().map(|(i, s)| (i.to_string(), *s)).collect(),
            returns: vec![],
            campaigns: Campaigns::Keep,
        }
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
