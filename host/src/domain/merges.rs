//! Merges of sub-accounts (seed 003): what a request may name, and who may
//! decide it. No I/O here.

use std::collections::HashSet;

use super::ledger::{LedgerRef, Posting, TransferKind};
use super::{Account, AccountKind, Amount, Status};

str_enum!(MergeStatus { Pending = "pending", Completed = "completed", Rejected = "rejected" });

/// Most sources one merge may name.
pub const MERGE_SOURCES_MAX: usize = 100;

/// Checks the shape of a request: at least one source, at most
/// [`MERGE_SOURCES_MAX`], each named once, and the target not among them.
/// Returns `(field, reason)` for the 422.
pub fn check_request(sources: &[String], target: &str) -> Result<(), (&'static str, String)> {
    if sources.is_empty() {
        return Err(("sources", "must name at least one sub-account".into()));
    }
    if sources.len() > MERGE_SOURCES_MAX {
        return Err((
            "sources",
            format!(
                "names {} sub-accounts; at most {MERGE_SOURCES_MAX} merge at once",
                sources.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for s in sources {
        if !seen.insert(s.as_str()) {
            return Err(("sources", format!("names `{s}` twice")));
        }
    }
    if seen.contains(target) {
        return Err((
            "target",
            format!("`{target}` is also a source; a sub-account cannot merge into itself"),
        ));
    }
    Ok(())
}

/// Why `account` cannot take part in a merge in `parent_id`'s tree, as a
/// source (`is_target` false) or as the target; `None` if it can. The
/// target must be active; a source active or suspended.
pub fn refusal(account: &Account, parent_id: &str, is_target: bool) -> Option<String> {
    let id = &account.id;
    if account.kind != AccountKind::Subaccount || account.parent_id.as_deref() != Some(parent_id) {
        return Some(format!("`{id}` is not a sub-account of `{parent_id}`"));
    }
    let ok = if is_target {
        account.status == Status::Active
    } else {
        matches!(account.status, Status::Active | Status::Suspended)
    };
    if ok {
        return None;
    }
    let what = if is_target {
        "the target must be active"
    } else {
        "a source must be active or suspended"
    };
    Some(format!("`{id}` is {}; {what}", account.shown_status()))
}

/// A source's remaining budget moving to the target's budget: one direct
/// transfer between the two budgets. Its kind is `allocation` (the target
/// is given budget), but it moves no monthly counter: the money never left
/// the tree, so a postpaid parent's month neither spends nor restores
/// credit (a return then an allocation could pass the month's limit), and
/// the ledger check counts only allocations from the parent's credit line.
pub fn budget_move_posting(
    parent: &Account,
    source: &Account,
    target: &Account,
    amount: Amount,
    month: &str,
    merge_id: &str,
) -> Posting {
    Posting {
        kind: TransferKind::Allocation,
        debit: LedgerRef::budget(source),
        credit: LedgerRef::budget(target),
        amount,
        subject_id: target.id.clone(),
        tree_id: parent.id.clone(),
        month: month.to_string(),
        spend: vec![],
        reference: Some(format!("merge {merge_id}: budget of {}", source.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::tests_support::subaccount;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("acct_{i}")).collect()
    }

    #[test]
    fn requests_are_checked() {
        assert!(check_request(&ids(2), "acct_t").is_ok());
        assert!(check_request(&ids(MERGE_SOURCES_MAX), "acct_t").is_ok());
        assert_eq!(check_request(&[], "acct_t").unwrap_err().0, "sources");
        assert_eq!(
            check_request(&ids(MERGE_SOURCES_MAX + 1), "acct_t")
                .unwrap_err()
                .0,
            "sources"
        );
        let twice = vec!["a".to_string(), "a".to_string()];
        assert_eq!(check_request(&twice, "t").unwrap_err().0, "sources");
        assert_eq!(check_request(&ids(2), "acct_1").unwrap_err().0, "target");
    }

    #[test]
    fn budget_moves_between_budgets_without_counters() {
        let mut parent = subaccount("acct_parent");
        parent.kind = AccountKind::Parent;
        parent.parent_id = None;
        parent.billing_type = Some(crate::domain::BillingType::Postpaid);
        let p = budget_move_posting(
            &parent,
            &subaccount("a"),
            &subaccount("t"),
            Amount::from_micros(5_000_000),
            "2026-01",
            "mrg_1",
        );
        assert_eq!(p.debit, LedgerRef::budget(&subaccount("a")));
        assert_eq!(p.credit, LedgerRef::budget(&subaccount("t")));
        assert!(p.spend.is_empty(), "no monthly counter moves");
        assert_eq!(p.tree_id, "acct_parent");
    }

    #[test]
    fn who_may_take_part() {
        let mut a = subaccount("a");
        assert!(refusal(&a, "acct_parent", true).is_none());
        assert!(refusal(&a, "acct_other", false).is_some());
        a.status = Status::Suspended;
        assert!(refusal(&a, "acct_parent", false).is_none());
        assert!(refusal(&a, "acct_parent", true).is_some());
        a.status = Status::Invited;
        assert!(refusal(&a, "acct_parent", false).is_some());
        a.status = Status::Deleted;
        a.merged_into = Some("t".into());
        assert!(
            refusal(&a, "acct_parent", false)
                .unwrap()
                .contains("merged")
        );
    }
}
