//! Accounts: parents and their sub-accounts (invariant 1), and the status
//! machine (invariant 3).

use std::collections::BTreeMap;

use super::money::Amount;

str_enum!(AccountKind { Parent = "parent", Subaccount = "subaccount" });
str_enum!(Status { Invited = "invited", Active = "active", Suspended = "suspended", Deleted = "deleted" });
str_enum!(
    /// Who suspended an account, so that a parent's reactivation restores only
    /// what its own suspension took away.
    SuspendedBy { Own = "self", Parent = "parent" }
);
str_enum!(BillingType { Prepaid = "prepaid", Postpaid = "postpaid" });
str_enum!(Module { Enterprise = "enterprise", Reseller = "reseller" });
str_enum!(CreditMode { AssignedBudget = "assigned_budget", SharedUsage = "shared_usage" });

/// Longest sub-account name the host stores at all; the shipped validation
/// policy narrows it to 160 (seed 000).
pub const NAME_LEN_MAX: usize = 1000;
/// Short free-text fields (external id, timezone, region, company name).
pub const SHORT_TEXT_LEN_MAX: usize = 255;
/// Channels per account.
pub const CHANNELS_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowBalanceAlert {
    pub threshold: Amount,
    pub emails: Vec<String>,
}

/// An account as the host sees it. A sub-account's inherited fields
/// (currency, region, prices, module) are filled from its parent when it is
/// read, so a parent's change applies to every sub-account at once.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub kind: AccountKind,
    pub parent_id: Option<String>,
    pub name: String,
    pub email: String,
    pub external_id: Option<String>,
    pub company_name: String,
    pub status: Status,
    pub previous_status: Option<Status>,
    pub suspended_by: Option<SuspendedBy>,
    pub timezone: String,
    pub region: Option<String>,
    pub currency: String,
    pub channels: Vec<String>,
    pub prices: BTreeMap<String, Amount>,
    /// The tree's settings, held by the parent.
    pub tree: TreeSettings,
    /// Parent only.
    pub billing_type: Option<BillingType>,
    pub monthly_credit_limit: Option<Amount>,
    /// Sub-account only.
    pub credit_mode: Option<CreditMode>,
    pub monthly_usage_limit: Option<Amount>,
    pub low_balance_alert: Option<LowBalanceAlert>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// A merged sub-account: the target it was merged into. Stored as
    /// `deleted`; shown as `merged`.
    pub merged_into: Option<String>,
}

/// The operator's switches for one parent's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeSettings {
    pub subaccounts_enabled: bool,
    pub module: Option<Module>,
    pub monthly_usage_limit_enabled: bool,
    /// The parent's admin may top up the parent itself (Canopy takes no
    /// payment, so a platform enables this behind its own payment flow).
    pub self_topups_enabled: bool,
}

impl Account {
    pub fn is_parent(&self) -> bool {
        self.kind == AccountKind::Parent
    }

    /// The parent at the top of this account's tree.
    pub fn tree_root_id(&self) -> &str {
        self.parent_id.as_deref().unwrap_or(&self.id)
    }

    /// The status the API shows: `merged` for a sub-account merged into
    /// another (stored as `deleted`, so every rule about deleted accounts
    /// holds for it), else the stored status.
    pub fn shown_status(&self) -> &'static str {
        if self.merged_into.is_some() {
            MERGED
        } else {
            self.status.as_str()
        }
    }

    /// Whether users of this account may act at all (invariant 3).
    pub fn is_usable(&self) -> bool {
        matches!(self.status, Status::Active | Status::Invited)
    }
}

/// The status shown for a merged account (terminal).
pub const MERGED: &str = "merged";

/// A status change the status machine allows (invariant 3):
/// `invited -> active <-> suspended`, a cascade's `invited -> suspended` and
/// its restore, and anything to `deleted`.
pub fn transition_allowed(from: Status, to: Status, by_cascade: bool) -> bool {
    use Status::*;
    match (from, to) {
        (Deleted, _) => false,
        (_, Deleted) => true,
        (Invited, Active) | (Active, Suspended) => true,
        (Suspended, Active) => true,
        (Invited, Suspended) | (Suspended, Invited) => by_cascade,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn status_machine() {
        assert!(transition_allowed(Invited, Active, false));
        assert!(transition_allowed(Active, Suspended, false));
        assert!(transition_allowed(Suspended, Active, false));
        assert!(!transition_allowed(Invited, Suspended, false));
        assert!(transition_allowed(Invited, Suspended, true));
        assert!(transition_allowed(Suspended, Invited, true));
        assert!(!transition_allowed(Active, Invited, true));
        for s in Status::ALL {
            assert!(
                !transition_allowed(Deleted, *s, true),
                "deleted is terminal"
            );
            if *s != Deleted {
                assert!(transition_allowed(*s, Deleted, false));
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
        }
        assert_eq!(SuspendedBy::parse("self"), Some(SuspendedBy::Own));
        assert_eq!(Module::parse("reseller"), Some(Module::Reseller));
        assert_eq!(CreditMode::parse("nope"), None);
    }
}

str_enum!(
    /// How the principal stands to the account it acts in (invariant 2).
    Relation { Own = "self", ParentOf = "parent_of", Operator = "operator" }
);

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// A plain active sub-account for unit tests.
    pub fn subaccount(id: &str) -> Account {
        Account {
            id: id.into(),
            kind: AccountKind::Subaccount,
            parent_id: Some("acct_parent".into()),
            name: id.into(),
            email: format!("{id}@acme.example"),
            external_id: None,
            company_name: "Acme".into(),
            status: Status::Active,
            previous_status: None,
            suspended_by: None,
            timezone: "UTC".into(),
            region: None,
            currency: "USD".into(),
            channels: vec!["sms".into()],
            prices: BTreeMap::new(),
            tree: TreeSettings {
                subaccounts_enabled: true,
                module: Some(Module::Enterprise),
                monthly_usage_limit_enabled: false,
                self_topups_enabled: false,
            },
            billing_type: None,
            monthly_credit_limit: None,
            credit_mode: Some(CreditMode::AssignedBudget),
            monthly_usage_limit: None,
            low_balance_alert: None,
            created_at: chrono::DateTime::default(),
            merged_into: None,
        }
    }
}
