//! Bulk operations on lines and SIMs (seed 004): what one item of a
//! transfer or an action does to a resource, or why it is refused. No I/O
//! here; `ops::operations` applies the outcome with conditional updates.

use super::resources::{
    self, ItemRefusal, ResourceAction, ResourceKind, ResourceStatus, apply_action, check_movable,
};

str_enum!(OperationKind {
    Transfer = "transfer",
    Activate = "activate",
    Suspend = "suspend",
    Resume = "resume",
    Terminate = "terminate",
    Disconnect = "disconnect",
});
str_enum!(OperationStatus {
    /// Stored, not claimed by a host yet.
    Queued = "queued",
    /// Claimed; items are being processed in chunks.
    Running = "running",
    /// Every item has its outcome (some may have failed one by one).
    Completed = "completed",
    /// Stopped before every item could be tried (the transfer's target
    /// stopped being active); the remaining items failed with that code.
    Failed = "failed",
});
str_enum!(Place {
    Available = "available",
    Assigned = "assigned",
});

/// Items written per operation's first page of errors (API.md).
pub const ERRORS_SHOWN: i64 = 100;
/// Longest resource id accepted in a request (ours are far shorter).
pub const RESOURCE_ID_LEN_MAX: usize = 64;
/// Longest identifier prefix of a filter: the longest ICCID.
pub const PREFIX_LEN_MAX: usize = 20;

/// A stable code of an item that failed without a domain refusal.
pub const NOT_FOUND: &str = "not_found";
pub const ALREADY_THERE: &str = "already_there";
pub const TARGET_NOT_ACTIVE: &str = "target_not_active";

impl OperationKind {
    pub fn of_action(action: ResourceAction) -> OperationKind {
        match action {
            ResourceAction::Activate => OperationKind::Activate,
            ResourceAction::Suspend => OperationKind::Suspend,
            ResourceAction::Resume => OperationKind::Resume,
            ResourceAction::Terminate => OperationKind::Terminate,
            ResourceAction::Disconnect => OperationKind::Disconnect,
        }
    }

    /// The action of an action operation; `None` for a transfer.
    pub fn action(self) -> Option<ResourceAction> {
        ResourceAction::parse(self.as_str())
    }

    /// The `authorize` action that guards this operation.
    pub fn authorize_action(self) -> &'static str {
        match self {
            OperationKind::Transfer => "resource.transfer",
            OperationKind::Activate => "resource.activate",
            OperationKind::Suspend => "resource.suspend",
            OperationKind::Resume => "resource.resume",
            OperationKind::Terminate => "resource.terminate",
            OperationKind::Disconnect => "resource.disconnect",
        }
    }
}

impl OperationStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, OperationStatus::Completed | OperationStatus::Failed)
    }
}

/// A resource as one item of an operation finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: ResourceKind,
    pub status: ResourceStatus,
    /// The tree it belongs to (its parent).
    pub tree_id: String,
    /// Where it is: the parent (Available pool) or a sub-account.
    pub account_id: String,
}

/// What one item does: its new place and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub account_id: String,
    pub status: ResourceStatus,
}

/// What an operation does to each of its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Move every item of `tree_id` to `to` (a sub-account, or the parent
    /// itself: the Available pool).
    Transfer { tree_id: String, to: String },
    /// Apply `action` to the items `holder` holds.
    Act {
        holder: String,
        action: ResourceAction,
    },
}

fn not_found() -> ItemRefusal {
    ItemRefusal {
        code: NOT_FOUND,
        reason: "no such resource within the operation's reach".into(),
    }
}

impl Work {
    /// The change one item makes, or why it is refused. `None` found: the
    /// resource does not exist (or no longer does).
    pub fn decide(&self, found: Option<&Found>) -> Result<Change, ItemRefusal> {
        let found = found.ok_or_else(not_found)?;
        match self {
            Work::Transfer { tree_id, to } => {
                if &found.tree_id != tree_id {
                    return Err(not_found());
                }
                if &found.account_id == to {
                    return Err(ItemRefusal {
                        code: ALREADY_THERE,
                        reason: format!("this {} is already held by `{to}`", found.kind),
                    });
                }
                check_movable(found.kind, found.status)?;
                Ok(Change {
                    account_id: to.clone(),
                    status: found.status,
                })
            }
            Work::Act { holder, action } => {
                if &found.account_id != holder {
                    return Err(not_found());
                }
                let status = apply_action(found.kind, found.status, *action)?;
                Ok(Change {
                    account_id: holder.clone(),
                    status,
                })
            }
        }
    }
}

/// Checks the ids of a request: at least one, at most `BULK_MAX`, each
/// plausible, none twice.
pub fn resource_ids(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Err("lists no resource; give at least one id, or a `filter`".into());
    }
    if ids.len() > resources::BULK_MAX {
        return Err(format!(
            "lists {} resources; at most {} per operation",
            ids.len(),
            resources::BULK_MAX
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for id in ids {
        if id.is_empty()
            || id.len() > RESOURCE_ID_LEN_MAX
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "`{}` is not a resource id (`res_...`)",
                id.escape_debug()
            ));
        }
        if !seen.insert(id.as_str()) {
            return Err(format!("lists `{id}` twice; list each resource once"));
        }
    }
    Ok(())
}

/// Checks an identifier prefix: `+` or digits, as identifiers begin.
pub fn prefix(raw: &str) -> Result<String, String> {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if raw.is_empty() || raw.len() > PREFIX_LEN_MAX || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "must be the start of an identifier: `+` and digits, or digits (at most {PREFIX_LEN_MAX})"
        ));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResourceStatus as S;

    fn sim(status: ResourceStatus, at: &str) -> Found {
        Found {
            kind: ResourceKind::Sim,
            status,
            tree_id: "acct_p".into(),
            account_id: at.into(),
        }
    }

    #[test]
    fn a_transfer_moves_live_resources_of_its_tree_only() {
        let to_sub = Work::Transfer {
            tree_id: "acct_p".into(),
            to: "acct_s".into(),
        };
        assert_eq!(
            to_sub.decide(Some(&sim(S::Inventory, "acct_p"))),
            Ok(Change {
                account_id: "acct_s".into(),
                status: S::Inventory
            })
        );
        assert_eq!(to_sub.decide(None).unwrap_err().code, NOT_FOUND);
        let mut other_tree = sim(S::Active, "acct_q");
        other_tree.tree_id = "acct_q".into();
        assert_eq!(
            to_sub.decide(Some(&other_tree)).unwrap_err().code,
            NOT_FOUND
        );
        assert_eq!(
            to_sub
                .decide(Some(&sim(S::Active, "acct_s")))
                .unwrap_err()
                .code,
            ALREADY_THERE
        );
        assert_eq!(
            to_sub
                .decide(Some(&sim(S::Terminated, "acct_p")))
                .unwrap_err()
                .code,
            "terminal_status"
        );
    }

    #[test]
    fn an_action_applies_only_to_what_its_holder_holds() {
        let activate = Work::Act {
            holder: "acct_s".into(),
            action: ResourceAction::Activate,
        };
        assert_eq!(
            activate.decide(Some(&sim(S::Inventory, "acct_s"))).unwrap(),
            Change {
                account_id: "acct_s".into(),
                status: S::Active
            }
        );
        assert_eq!(
            activate
                .decide(Some(&sim(S::Inventory, "acct_t")))
                .unwrap_err()
                .code,
            NOT_FOUND
        );
        assert_eq!(
            activate
                .decide(Some(&sim(S::Active, "acct_s")))
                .unwrap_err()
                .code,
            "wrong_status"
        );
    }

    #[test]
    fn ids_and_prefixes_are_checked() {
        assert!(resource_ids(&["res_1".into(), "res_2".into()]).is_ok());
        assert!(resource_ids(&[]).is_err());
        assert!(
            resource_ids(&["res_1".into(), "res_1".into()])
                .unwrap_err()
                .contains("twice")
        );
        assert!(resource_ids(&["res 1".into()]).is_err());
        assert_eq!(prefix("+4415").unwrap(), "+4415");
        assert_eq!(prefix("8944").unwrap(), "8944");
        assert!(prefix("89a").is_err());
        assert!(prefix("").is_err());
        assert!(prefix("+").is_ok());
    }

    #[test]
    fn every_action_is_an_operation_kind() {
        for a in ResourceAction::ALL {
            assert_eq!(OperationKind::of_action(*a).action(), Some(*a));
        }
        assert_eq!(OperationKind::Transfer.action(), None);
    }
}
