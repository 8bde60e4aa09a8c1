//! Parsing output documents (API.md "Policy ABI"). Whatever does not match
//! exactly is a [`Fault`], so a confused policy fails closed.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use super::Fault;
use crate::domain::Status;

/// Longest reason a policy may give.
const REASON_LEN_MAX: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny {
        reason: String,
        field: Option<String>,
    },
}

/// Field groups a viewer may be denied (MISSION.md "visibility").
pub const FIELD_GROUPS: [&str; 4] = ["pricing", "balance", "usage", "plan"];

/// What a viewer may see: all but the hidden groups, of all rows or its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub hidden: BTreeSet<&'static str>,
    pub own_rows_only: bool,
    /// The first policy that hid a group, to name it when a view is denied
    /// because everything in it is hidden.
    pub hidden_by: Option<crate::error::PolicyRef>,
}

impl View {
    pub fn hides(&self, group: &str) -> bool {
        self.hidden.contains(group)
    }

    pub fn union(mut self, other: View) -> View {
        self.hidden.extend(other.hidden);
        self.own_rows_only |= other.own_rows_only;
        self.hidden_by = self.hidden_by.or(other.hidden_by);
        self
    }
}

/// A cascade policy's plan for a suspension or reactivation. The host checks
/// it against the invariants before applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadePlan {
    pub subaccounts: Vec<(String, Status)>,
    pub returns: Vec<(String, ReturnAmount)>,
    pub campaigns: Campaigns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnAmount {
    All,
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Campaigns {
    Keep,
    Queue,
    Submit,
    Delete,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionDoc {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    hide: Option<Vec<String>>,
    #[serde(default)]
    rows: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(out: &Value) -> Result<T, Fault> {
    T::deserialize(out).map_err(|e| Fault(format!("output does not match the hook's schema: {e}")))
}

fn checked_reason(reason: Option<String>) -> Result<String, Fault> {
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| Fault("a deny must give a `reason`".into()))?;
    if reason.chars().count() > REASON_LEN_MAX {
        return Err(Fault(format!(
            "`reason` is longer than {REASON_LEN_MAX} characters"
        )));
    }
    Ok(reason)
}

/// `authorize` and `subaccount.validate` outputs.
pub fn decision(out: &Value) -> Result<Decision, Fault> {
    let doc: DecisionDoc = parse(out)?;
    if doc.hide.is_some() || doc.rows.is_some() {
        return Err(Fault(
            "`hide` and `rows` belong to visibility outputs only".into(),
        ));
    }
    match doc.decision.as_str() {
        "allow" => Ok(Decision::Allow),
        "deny" => Ok(Decision::Deny {
            reason: checked_reason(doc.reason)?,
            field: doc.field,
        }),
        other => Err(Fault(format!(
            "`decision` must be \"allow\" or \"deny\", not {other:?}"
        ))),
    }
}

/// `visibility` output: the view, or a deny's reason.
pub fn view(out: &Value) -> Result<Result<View, String>, Fault> {
    let doc: DecisionDoc = parse(out)?;
    match doc.decision.as_str() {
        "deny" => Ok(Err(checked_reason(doc.reason)?)),
        "allow" => {
            let mut hidden = BTreeSet::new();
            for group in doc.hide.unwrap_or_default() {
                let known = FIELD_GROUPS.iter().find(|g| **g == group).ok_or_else(|| {
                    Fault(format!(
                        "unknown field group {group:?} in `hide`; known: {FIELD_GROUPS:?}"
                    ))
                })?;
                hidden.insert(*known);
            }
            let own_rows_only = match doc.rows.as_deref() {
                None | Some("all") => false,
                Some("own") => true,
                Some(other) => {
                    return Err(Fault(format!(
                        "`rows` must be \"all\" or \"own\", not {other:?}"
                    )));
                }
            };
            Ok(Ok(View {
                hidden,
                own_rows_only,
                hidden_by: None,
            }))
        }
        other => Err(Fault(format!(
            "`decision` must be \"allow\" or \"deny\", not {other:?}"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDoc {
    #[serde(default)]
    subaccounts: Vec<StatusDoc>,
    #[serde(default)]
    returns: Vec<ReturnDoc>,
    #[serde(default = "keep")]
    campaigns: String,
}

fn keep() -> String {
    "keep".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusDoc {
    id: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnDoc {
    id: String,
    amount: String,
}

/// `cascade` output.
pub fn cascade_plan(out: &Value) -> Result<CascadePlan, Fault> {
    let doc: PlanDoc = parse(out)?;
    let subaccounts = doc
        .subaccounts
        .into_iter()
        .map(|s| {
            Status::parse(&s.status)
                .map(|status| (s.id, status))
                .ok_or_else(|| Fault(format!("unknown status {:?} in the plan", s.status)))
        })
        .collect::<Result<_, _>>()?;
    let returns = doc
        .returns
        .into_iter()
        .map(|r| match r.amount.as_str() {
            "all" => Ok((r.id, ReturnAmount::All)),
            "0" => Ok((r.id, ReturnAmount::Nothing)),
            other => Err(Fault(format!(
                "a return's `amount` must be \"all\" or \"0\", not {other:?}"
            ))),
        })
        .collect::<Result<_, _>>()?;
    let campaigns = match doc.campaigns.as_str() {
        "keep" => Campaigns::Keep,
        "queue" => Campaigns::Queue,
        "submit" => Campaigns::Submit,
        "delete" => Campaigns::Delete,
        other => {
            return Err(Fault(format!(
                "`campaigns` must be keep, queue, submit or delete, not {other:?}"
            )));
        }
    };
    Ok(CascadePlan {
        subaccounts,
        returns,
        campaigns,
    })
}

/// Whether `out` is a well-formed output of `hook` (what the host would
/// accept), for checking a policy before it runs.
pub fn check(hook: super::Hook, out: &Value) -> Result<(), Fault> {
    use super::Hook;
    match hook {
        Hook::Authorize | Hook::SubaccountValidate => decision(out).map(|_| ()),
        Hook::Visibility => view(out).map(|_| ()),
        Hook::Cascade => cascade_plan(out).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decisions_parse_strictly() {
        assert_eq!(decision(&json!({"decision": "allow"})), Ok(Decision::Allow));
        assert_eq!(
            decision(&json!({"decision": "deny", "reason": "no", "field": "email"})),
            Ok(Decision::Deny {
                reason: "no".into(),
                field: Some("email".into())
            })
        );
        for bad in [
            json!({"decision": "deny"}),
            json!({"decision": "maybe"}),
            json!({"decision": "allow", "extra": 1}),
            json!("allow"),
            json!(null),
            json!({"decision": "allow", "hide": ["pricing"]}),
        ] {
            assert!(decision(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn views_union_and_reject_unknown_groups() {
        let a = view(&json!({"decision": "allow", "hide": ["pricing"]}))
            .unwrap()
            .unwrap();
        let b = view(&json!({"decision": "allow", "hide": ["balance"], "rows": "own"}))
            .unwrap()
            .unwrap();
        let both = a.union(b);
        assert!(both.hides("pricing") && both.hides("balance") && !both.hides("usage"));
        assert!(both.own_rows_only);
        assert!(view(&json!({"decision": "allow", "hide": ["secrets"]})).is_err());
        assert!(view(&json!({"decision": "allow", "rows": "some"})).is_err());
        assert_eq!(
            view(&json!({"decision": "deny", "reason": "r"})).unwrap(),
            Err("r".to_string())
        );
    }

    #[test]
    fn cascade_plans_parse() {
        let plan = cascade_plan(&json!({
            "subaccounts": [{"id": "acct_1", "status": "suspended"}],
            "returns": [{"id": "acct_1", "amount": "0"}],
            "campaigns": "queue"
        }))
        .unwrap();
        assert_eq!(
            plan.subaccounts,
            vec![("acct_1".to_string(), Status::Suspended)]
        );
        assert_eq!(plan.campaigns, Campaigns::Queue);
        assert!(cascade_plan(&json!({"returns": [{"id": "a", "amount": "12"}]})).is_err());
        assert!(cascade_plan(&json!({"subaccounts": [{"id": "a", "status": "gone"}]})).is_err());
    }
}
