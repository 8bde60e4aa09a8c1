//! The input documents of each hook, built by the host from what it has in
//! hand. Every runtime gets the same JSON; `policies/samples/` holds a sample
//! of each and `docs/POLICIES.md` describes every field.

use serde_json::{Value, json};

use super::Hook;
use crate::domain::{Account, AccountKind, Module, Relation, Role};

/// Who is acting, as policies see it.
#[derive(Debug, Clone)]
pub struct PrincipalDoc {
    pub user_id: Option<String>,
    pub role: Option<Role>,
    /// The account the principal belongs to (for an operator: none).
    pub account_id: Option<String>,
    pub account_kind: Option<AccountKind>,
    /// The sub-account module of the principal's tree.
    pub module: Option<Module>,
    pub relation: Relation,
}

impl PrincipalDoc {
    pub fn operator() -> PrincipalDoc {
        PrincipalDoc {
            user_id: None,
            role: None,
            account_id: None,
            account_kind: None,
            module: None,
            relation: Relation::Operator,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "user_id": self.user_id,
            "role": self.role.map(Role::as_str),
            "account_id": self.account_id,
            "account_kind": self.account_kind.map(AccountKind::as_str),
            "module": self.module.map(Module::as_str),
            "relation": self.relation.as_str(),
        })
    }
}

/// The domain rules compare: NFKC-normalised and lower-cased.
pub(crate) fn email_domain(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, d)| crate::domain::names::normalize_domain(d))
        .unwrap_or_default()
}

/// An account as the host sees it, with its parent (if any).
pub fn account(a: &Account, parent: Option<&Account>) -> Value {
    json!({
        "id": a.id,
        "kind": a.kind.as_str(),
        "status": a.status.as_str(),
        "name": a.name,
        "email": a.email,
        "email_domain": email_domain(&a.email),
        "external_id": a.external_id,
        "channels": a.channels,
        "currency": a.currency,
        "region": a.region,
        "timezone": a.timezone,
        "module": a.tree.module.map(Module::as_str),
        "subaccounts_enabled": a.tree.subaccounts_enabled,
        "billing_type": a.billing_type.map(|b| b.as_str()),
        "credit_mode": a.credit_mode.map(|c| c.as_str()),
        "parent": parent.map(|p| json!({
            "id": p.id,
            "name": p.name,
            "email": p.email,
            "email_domain": email_domain(&p.email),
            "status": p.status.as_str(),
            "timezone": p.timezone,
            "module": p.tree.module.map(Module::as_str),
            "billing_type": p.billing_type.map(|b| b.as_str()),
        })),
    })
}

/// `authorize`: may `principal` do `action` on `target`? `fields` names the
/// fields a change would set (empty for other actions).
/// Documents take `target` (and `parent`) by value: `json!` would otherwise
/// serialize a borrowed tree into a copy, the costliest step of a decision.
pub fn authorize(principal: &PrincipalDoc, action: &str, target: Value, fields: &[&str]) -> Value {
    json!({
        "hook": Hook::Authorize.name(),
        "principal": principal.to_json(),
        "action": action,
        "target": target,
        "fields": fields,
    })
}

/// The fields submitted to create or change a sub-account.
#[derive(Debug, Clone, Default)]
pub struct SubmittedFields {
    pub name: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub channels: Option<Vec<String>>,
    pub timezone: Option<String>,
}

/// `subaccount.validate`: are these fields acceptable? `target` is the
/// parent on create and the sub-account on update; `parent` is always the
/// parent.
pub fn validate(
    principal: &PrincipalDoc,
    action: &str,
    target: Value,
    parent: Value,
    fields: &SubmittedFields,
) -> Value {
    json!({
        "hook": Hook::SubaccountValidate.name(),
        "principal": principal.to_json(),
        "action": action,
        "target": target,
        "parent": parent,
        "fields": {
            "name": fields.name,
            "email": fields.email,
            "email_domain": fields.email.as_deref().map(email_domain),
            "external_id": fields.external_id,
            "channels": fields.channels,
            "timezone": fields.timezone,
        },
    })
}

/// `visibility`: what may `principal` see of `resource` in `target`?
pub fn visibility(principal: &PrincipalDoc, action: &str, resource: &str, target: Value) -> Value {
    json!({
        "hook": Hook::Visibility.name(),
        "principal": principal.to_json(),
        "action": action,
        "resource": resource,
        "target": target,
    })
}

/// `cascade`: what follows `event` on `target`? `subaccounts` are the
/// sub-accounts concerned, with their status.
pub fn cascade(
    principal: &PrincipalDoc,
    event: &str,
    target: Value,
    subaccounts: &[Account],
    budgets: &std::collections::HashMap<String, crate::domain::Amount>,
) -> Value {
    let subs: Vec<Value> = subaccounts
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "status": s.status.as_str(),
                "previous_status": s.previous_status.map(|p| p.as_str()),
                "suspended_by": s.suspended_by.map(|p| p.as_str()),
                "credit_mode": s.credit_mode.map(|c| c.as_str()),
                "budget": budgets.get(&s.id).map(|b| b.to_api_string()),
            })
        })
        .collect();
    json!({
        "hook": Hook::Cascade.name(),
        "event": event,
        "principal": principal.to_json(),
        "target": target,
        "subaccounts": subs,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::account::tests_support::subaccount;
    use crate::policy::samples;

    /// Every key path of a document (`a.b`, `list[].c`), to compare shapes.
    fn shape(v: &Value, at: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let path = format!("{at}.{k}");
                    out.insert(path.clone());
                    shape(child, &path, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| shape(i, &format!("{at}[]"), out)),
            _ => {}
        }
    }

    fn shape_of(v: &Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        shape(v, "", &mut out);
        out
    }

    fn parent() -> Account {
        let mut p = subaccount("acct_parent");
        p.kind = AccountKind::Parent;
        p.parent_id = None;
        p.credit_mode = None;
        p
    }

    fn principal() -> PrincipalDoc {
        PrincipalDoc {
            user_id: Some("usr_1".into()),
            role: Some(Role::Admin),
            account_id: Some("acct_parent".into()),
            account_kind: Some(AccountKind::Parent),
            module: Some(Module::Enterprise),
            relation: Relation::ParentOf,
        }
    }

    /// The shipped samples document exactly what the host builds.
    #[test]
    fn samples_have_the_shape_the_host_builds() {
        let p = parent();
        let sub = subaccount("acct_sub");
        let sub_doc = account(&sub, Some(&p));
        let parent_doc = account(&p, None);
        let fields = SubmittedFields {
            name: Some("n".into()),
            ..SubmittedFields::default()
        };
        let built = [
            (
                Hook::Authorize,
                authorize(
                    &principal(),
                    "subaccount.suspend",
                    sub_doc.clone(),
                    &["name"],
                ),
            ),
            (
                Hook::SubaccountValidate,
                validate(
                    &principal(),
                    "subaccount.update",
                    sub_doc.clone(),
                    parent_doc.clone(),
                    &fields,
                ),
            ),
            (
                Hook::Visibility,
                visibility(&principal(), "account.read", "account", sub_doc.clone()),
            ),
            (
                Hook::Cascade,
                cascade(
                    &principal(),
                    "subaccount.suspended",
                    sub_doc.clone(),
                    std::slice::from_ref(&sub),
                    &[(
                        sub.id.clone(),
                        crate::domain::Amount::from_micros(40_000_000),
                    )]
                    .into(),
                ),
            ),
        ];
        for (hook, mut doc) in built {
            crate::policy::time::stamp(&mut doc, "2026-03-02T16:30:00Z".parse().unwrap());
            let host = shape_of(&doc);
            for sample in samples::of(hook) {
                let documented = shape_of(&sample);
                // A sample may leave out a nested parent that is null here,
                // or fill one in that is null in another sample: compare
                // the top two levels and the principal exactly.
                let top = |s: &BTreeSet<String>| -> BTreeSet<String> {
                    s.iter()
                        .filter(|k| {
                            !k.starts_with(".target.parent.") && !k.starts_with(".parent.parent")
                        })
                        .cloned()
                        .collect()
                };
                assert_eq!(
                    top(&documented),
                    top(&host),
                    "sample of {} differs from what the host builds",
                    hook.name()
                );
            }
        }
    }

    #[test]
    fn a_cascade_over_the_largest_tree_fits_the_input_limit() {
        let subs: Vec<Account> = (0..crate::ops::subaccounts::SUBACCOUNTS_MAX)
            .map(|i| subaccount(&format!("acct_0190a1b2c3d4e5f60718293a4b{i:06}")))
            .collect();
        // Every sub-account with a budget of the largest amount storage holds.
        let budgets = subs
            .iter()
            .map(|s| (s.id.clone(), crate::domain::Amount::from_micros(i64::MAX)))
            .collect();
        let doc = cascade(
            &PrincipalDoc::operator(),
            "parent.suspended",
            account(&parent(), None),
            &subs,
            &budgets,
        );
        let size = serde_json::to_vec(&doc).unwrap().len();
        assert!(size < crate::policy::INPUT_BYTES_MAX, "{size} bytes");
    }
}
