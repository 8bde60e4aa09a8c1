//! The ledger's rules (MISSION.md "The ledger", invariant 4), as plans of
//! postings that the store applies atomically. No I/O here.
//!
//! Every movement is one transfer from a debit ledger account to a credit
//! ledger account, so the sum over all ledger accounts is always zero. The
//! platform's own accounts absorb the other side: top-ups received go
//! negative as customers' balances grow, usage revenue grows as they spend.

use chrono::{DateTime, Datelike, Utc};

use super::{Account, AccountKind, Amount, BillingType, CreditMode};

str_enum!(LedgerKind {
    /// A prepaid parent's balance; never below zero.
    Balance = "balance",
    /// A postpaid parent's credit line; negative by what it owes.
    Credit = "credit",
    /// A sub-account's assigned budget; never below zero.
    Budget = "budget",
    /// Platform: top-ups received from a tree's parent.
    Topups = "topups",
    /// Platform: usage charged in a tree.
    Revenue = "revenue",
    /// Platform: balances of closed (deleted) parents.
    Closed = "closed",
});

str_enum!(TransferKind {
    Topup = "topup",
    Allocation = "allocation",
    Return = "return",
    Usage = "usage",
    Closure = "closure",
});

/// A ledger account, named by what it is. Its id is derived, so it can be
/// created on first use by any host without coordination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRef {
    pub kind: LedgerKind,
    /// The customer account that owns it; `None` for the platform's.
    pub owner: Option<String>,
    /// Platform accounts are kept per tree so that no single row is hot.
    pub key: String,
    pub currency: String,
}

impl LedgerRef {
    pub fn id(&self) -> String {
        format!("la_{}_{}_{}", self.kind.as_str(), self.key, self.currency)
    }

    /// Whether the schema keeps it at or above zero.
    pub fn never_negative(&self) -> bool {
        matches!(self.kind, LedgerKind::Balance | LedgerKind::Budget)
    }

    fn owned(kind: LedgerKind, account_id: &str, currency: &str) -> LedgerRef {
        LedgerRef {
            kind,
            owner: Some(account_id.into()),
            key: account_id.into(),
            currency: currency.into(),
        }
    }

    fn platform(kind: LedgerKind, key: &str, currency: &str) -> LedgerRef {
        LedgerRef {
            kind,
            owner: None,
            key: key.into(),
            currency: currency.into(),
        }
    }

    /// The wallet of a parent: its balance (prepaid) or credit line (postpaid).
    pub fn parent_wallet(parent: &Account) -> LedgerRef {
        let kind = match parent.billing_type {
            Some(BillingType::Postpaid) => LedgerKind::Credit,
            _ => LedgerKind::Balance,
        };
        LedgerRef::owned(kind, &parent.id, &parent.currency)
    }

    pub fn budget(sub: &Account) -> LedgerRef {
        LedgerRef::owned(LedgerKind::Budget, &sub.id, &sub.currency)
    }

    pub fn topups(parent: &Account) -> LedgerRef {
        LedgerRef::platform(LedgerKind::Topups, &parent.id, &parent.currency)
    }

    /// Usage revenue of a tree, in one of [`REVENUE_SHARDS`] rows chosen
    /// by the account that spends, so that a tree's sub-accounts spending
    /// at once do not all wait on one row lock.
    pub fn revenue(parent: &Account, spender_id: &str) -> LedgerRef {
        let shard = fnv1a(spender_id.as_bytes()) % REVENUE_SHARDS;
        LedgerRef::platform(
            LedgerKind::Revenue,
            &format!("{}.{shard}", parent.id),
            &parent.currency,
        )
    }

    pub fn closed(currency: &str) -> LedgerRef {
        LedgerRef::platform(LedgerKind::Closed, "platform", currency)
    }
}

/// Rows a tree's usage revenue is spread over.
pub const REVENUE_SHARDS: u64 = 8;

/// FNV-1a: a stable hash, the same on every host and build.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// A monthly limit a posting must stay within: a postpaid parent's credit
/// limit, or a shared-usage sub-account's usage limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyLimit {
    pub account_id: String,
    /// `None`: counted, not limited.
    pub limit: Option<Amount>,
    pub column: SpendColumn,
}

/// Which monthly counter a posting moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendColumn {
    Usage,
    Allocated,
    Returned,
}

/// One transfer and the monthly counters it moves, all or nothing.
#[derive(Debug, Clone)]
pub struct Posting {
    pub kind: TransferKind,
    pub debit: LedgerRef,
    pub credit: LedgerRef,
    pub amount: Amount,
    pub subject_id: String,
    pub tree_id: String,
    pub month: String,
    pub spend: Vec<MonthlyLimit>,
    pub reference: Option<String>,
}

/// The UTC calendar month of a time, `YYYY-MM`.
pub fn month_of(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

/// A month's counters of a postpaid parent (or a shared-usage
/// sub-account). `restored` is the part of `returned` that gave credit
/// back: never more than was used and allocated in the same month, so
/// budget allocated last month and returned this month cannot lift this
/// month past its limit. The store keeps the same rule
/// (`monthly_net_not_negative`, `within_monthly_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthCounters {
    pub usage: Amount,
    pub allocated: Amount,
    pub returned: Amount,
    pub restored: Amount,
}

impl Default for MonthCounters {
    fn default() -> MonthCounters {
        MonthCounters {
            usage: Amount::ZERO,
            allocated: Amount::ZERO,
            returned: Amount::ZERO,
            restored: Amount::ZERO,
        }
    }
}

impl MonthCounters {
    /// What the month spent: usage and allocations, less the returns that
    /// gave credit back. Never negative.
    pub fn spent(&self) -> Amount {
        let spent = self
            .usage
            .decimal()
            .checked_add(self.allocated.decimal())
            .and_then(|s| s.checked_sub(self.restored.decimal()));
        spent
            .and_then(|s| Amount::new(s.max(rust_decimal::Decimal::ZERO)).ok())
            .unwrap_or(Amount::ZERO)
    }

    /// What a return of `amount` gives back: at most what the month spent.
    pub fn restores(&self, amount: Amount) -> Amount {
        amount.min(self.spent())
    }
}

/// What a postpaid parent may still spend this month: the limit minus what
/// the month spent, never above the limit (and zero once a lowered limit is
/// passed).
pub fn available_credit(limit: Amount, month: &MonthCounters) -> Amount {
    // Counters too large to add up leave no credit.
    let available = month
        .usage
        .decimal()
        .checked_add(month.allocated.decimal())
        .and_then(|s| s.checked_sub(month.restored.decimal()))
        .and_then(|spent| {
            limit
                .decimal()
                .checked_sub(spent.max(rust_decimal::Decimal::ZERO))
        });
    available
        .and_then(|a| Amount::new(a.max(rust_decimal::Decimal::ZERO)).ok())
        .unwrap_or(Amount::ZERO)
}

/// How a message (or any usage) by `account` is paid: which ledger account
/// is debited and which monthly limits apply.
pub fn usage_posting(
    account: &Account,
    parent: Option<&Account>,
    price: Amount,
    month: &str,
) -> Posting {
    let tree = parent.unwrap_or(account);
    let postpaid_parent_limit = |tree: &Account| MonthlyLimit {
        account_id: tree.id.clone(),
        limit: tree.monthly_credit_limit,
        column: SpendColumn::Usage,
    };
    let (debit, spend) = match (account.kind, account.credit_mode) {
        (AccountKind::Subaccount, Some(CreditMode::AssignedBudget)) => {
            (LedgerRef::budget(account), vec![])
        }
        (AccountKind::Subaccount, _) => {
            // Shared usage: the parent's credit line, within the parent's
            // monthly limit and the sub-account's own.
            let own = MonthlyLimit {
                account_id: account.id.clone(),
                limit: account.monthly_usage_limit,
                column: SpendColumn::Usage,
            };
            (
                LedgerRef::parent_wallet(tree),
                vec![postpaid_parent_limit(tree), own],
            )
        }
        (AccountKind::Parent, _) => {
            let spend = if tree.billing_type == Some(BillingType::Postpaid) {
                vec![postpaid_parent_limit(tree)]
            } else {
                vec![]
            };
            (LedgerRef::parent_wallet(tree), spend)
        }
    };
    Posting {
        kind: TransferKind::Usage,
        debit,
        credit: LedgerRef::revenue(tree, &account.id),
        amount: price,
        subject_id: account.id.clone(),
        tree_id: tree.id.clone(),
        month: month.to_string(),
        spend,
        reference: None,
    }
}

/// Moving budget between a parent and one of its sub-accounts: positive
/// allocates, negative returns.
pub fn budget_posting(
    parent: &Account,
    sub: &Account,
    amount: Amount,
    allocate: bool,
    month: &str,
) -> Posting {
    let postpaid = parent.billing_type == Some(BillingType::Postpaid);
    let (kind, debit, credit, column) = if allocate {
        (
            TransferKind::Allocation,
            LedgerRef::parent_wallet(parent),
            LedgerRef::budget(sub),
            SpendColumn::Allocated,
        )
    } else {
        (
            TransferKind::Return,
            LedgerRef::budget(sub),
            LedgerRef::parent_wallet(parent),
            SpendColumn::Returned,
        )
    };
    let spend = if postpaid {
        let limit = if allocate {
            parent.monthly_credit_limit
        } else {
            None
        };
        vec![MonthlyLimit {
            account_id: parent.id.clone(),
            limit,
            column,
        }]
    } else {
        vec![]
    };
    Posting {
        kind,
        debit,
        credit,
        amount,
        subject_id: sub.id.clone(),
        tree_id: parent.id.clone(),
        month: month.to_string(),
        spend,
        reference: None,
    }
}

/// A top-up of a prepaid parent.
pub fn topup_posting(parent: &Account, amount: Amount, month: &str) -> Posting {
    Posting {
        kind: TransferKind::Topup,
        debit: LedgerRef::topups(parent),
        credit: LedgerRef::parent_wallet(parent),
        amount,
        subject_id: parent.id.clone(),
        tree_id: parent.id.clone(),
        month: month.to_string(),
        spend: vec![],
        reference: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::tests_support::subaccount;
    use rust_decimal::Decimal;

    fn amount(s: &str) -> Amount {
        Amount::new(s.parse::<Decimal>().unwrap()).unwrap()
    }

    fn postpaid_parent() -> Account {
        let mut p = subaccount("acct_parent");
        p.kind = AccountKind::Parent;
        p.parent_id = None;
        p.credit_mode = None;
        p.billing_type = Some(BillingType::Postpaid);
        p.monthly_credit_limit = Some(amount("1000"));
        p
    }

    #[test]
    fn available_credit_counts_usage_allocations_and_restoring_returns() {
        let limit = amount("1000");
        let month = |usage, allocated, returned, restored| MonthCounters {
            usage: amount(usage),
            allocated: amount(allocated),
            returned: amount(returned),
            restored: amount(restored),
        };
        assert_eq!(
            available_credit(limit, &month("200", "300", "0", "0")),
            amount("500")
        );
        assert_eq!(
            available_credit(limit, &month("0", "300", "100", "100")),
            amount("800")
        );
        // A lowered limit below what was spent leaves nothing, never a
        // negative credit.
        assert_eq!(
            available_credit(amount("100"), &month("200", "0", "0", "0")),
            Amount::ZERO
        );
    }

    #[test]
    fn a_return_restores_at_most_what_the_month_spent() {
        // Budget allocated last month and returned this month gives nothing
        // back: the month spent nothing.
        let empty = MonthCounters::default();
        assert_eq!(empty.restores(amount("1000")), Amount::ZERO);
        let spent = MonthCounters {
            usage: amount("100"),
            allocated: amount("300"),
            ..MonthCounters::default()
        };
        assert_eq!(spent.restores(amount("250")), amount("250"));
        assert_eq!(spent.restores(amount("900")), amount("400"));
    }

    #[test]
    fn available_credit_is_checked_at_the_extremes() {
        let huge = Amount::from_micros(i64::MAX);
        let month = |usage, allocated, restored| MonthCounters {
            usage,
            allocated,
            returned: restored,
            restored,
        };
        assert_eq!(
            available_credit(amount("1000"), &month(huge, huge, Amount::ZERO)),
            Amount::ZERO
        );
        assert_eq!(
            available_credit(amount("1000"), &month(Amount::ZERO, Amount::ZERO, huge)),
            amount("1000")
        );
    }

    #[test]
    fn usage_is_charged_to_the_right_wallet() {
        let parent = postpaid_parent();
        let mut budgeted = subaccount("acct_b");
        budgeted.credit_mode = Some(CreditMode::AssignedBudget);
        let p = usage_posting(&budgeted, Some(&parent), amount("0.0075"), "2031-01");
        assert_eq!(p.debit.kind, LedgerKind::Budget);
        assert_eq!(p.debit.owner.as_deref(), Some("acct_b"));
        assert!(
            p.spend.is_empty(),
            "budget usage was counted when allocated"
        );
        assert_eq!(p.credit, LedgerRef::revenue(&parent, "acct_b"));

        let mut shared = subaccount("acct_s");
        shared.credit_mode = Some(CreditMode::SharedUsage);
        shared.monthly_usage_limit = Some(amount("50"));
        let p = usage_posting(&shared, Some(&parent), amount("1"), "2031-01");
        assert_eq!(p.debit, LedgerRef::parent_wallet(&parent));
        assert_eq!(p.debit.kind, LedgerKind::Credit);
        assert_eq!(p.spend.len(), 2);
        assert_eq!(p.spend[1].limit, Some(amount("50")));
        assert_eq!(p.subject_id, "acct_s");
    }

    #[test]
    fn budget_moves_count_against_a_postpaid_month() {
        let parent = postpaid_parent();
        let sub = subaccount("acct_b");
        let give = budget_posting(&parent, &sub, amount("300"), true, "2031-01");
        assert_eq!(
            (give.debit.kind, give.credit.kind),
            (LedgerKind::Credit, LedgerKind::Budget)
        );
        assert_eq!(give.spend[0].column, SpendColumn::Allocated);
        let take = budget_posting(&parent, &sub, amount("100"), false, "2031-01");
        assert_eq!(
            (take.debit.kind, take.credit.kind),
            (LedgerKind::Budget, LedgerKind::Credit)
        );
        assert_eq!(take.spend[0].limit, None, "returns are never limited");
    }

    #[test]
    fn ledger_ids_are_derived() {
        let parent = postpaid_parent();
        assert_eq!(
            LedgerRef::revenue(&parent, "acct_b").id(),
            format!(
                "la_revenue_acct_parent.{}_USD",
                fnv1a(b"acct_b") % REVENUE_SHARDS
            )
        );
        assert_eq!(month_of("2031-02-01T00:00:00Z".parse().unwrap()), "2031-02");
    }
}
