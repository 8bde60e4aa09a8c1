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

/// A cascade policy's plan for a suspension or reactivation. The host
/// expands it against the tree and checks every step before applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadePlan {
    pub subaccounts: StatusPlan,
    pub returns: ReturnPlan,
    pub campaigns: Campaigns,
    pub resources: Resources,
}

/// Where a sub-account's status goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Status(Status),
    /// Back to its `previous_status` (`"restore"`).
    Restore,
    /// Unchanged (`"keep"`), e.g. to leave one out of a rule.
    Keep,
}

impl Target {
    fn parse(name: &str) -> Result<Target, Fault> {
        match name {
            "restore" => Ok(Target::Restore),
            "keep" => Ok(Target::Keep),
            other => Status::parse(other).map(Target::Status).ok_or_else(|| {
                Fault(format!(
                    "unknown status {other:?} in the plan; a step goes to a status, \"restore\" or \"keep\""
                ))
            }),
        }
    }
}

/// Which sub-accounts a `by_status` rule applies to: those of a status, or
/// the suspended ones by who suspended them (more specific than
/// `suspended`, so it wins over it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusKey {
    Invited,
    Active,
    Suspended,
    SuspendedByParent,
    SuspendedBySelf,
}

impl StatusKey {
    pub const ALL: [(&'static str, StatusKey); 5] = [
        ("invited", StatusKey::Invited),
        ("active", StatusKey::Active),
        ("suspended", StatusKey::Suspended),
        ("suspended_by_parent", StatusKey::SuspendedByParent),
        ("suspended_by_self", StatusKey::SuspendedBySelf),
    ];

    fn parse(name: &str) -> Result<StatusKey, Fault> {
        StatusKey::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                Fault(format!(
                    "unknown key {name:?} in `by_status`; known: invited, active, suspended, suspended_by_parent, suspended_by_self"
                ))
            })
    }
}

/// The plan's status changes: a list of steps, or rules the host expands
/// against the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusPlan {
    List(Vec<(String, Target)>),
    Rules {
        by_status: Vec<(StatusKey, Target)>,
        except: Vec<(String, Target)>,
    },
}

impl StatusPlan {
    /// The rule's target for a sub-account of this status, if any: the
    /// most specific key first.
    pub fn rule_for(
        by_status: &[(StatusKey, Target)],
        status: Status,
        suspended_by: Option<crate::domain::SuspendedBy>,
    ) -> Option<Target> {
        use crate::domain::SuspendedBy;
        let find = |key| by_status.iter().find(|(k, _)| *k == key).map(|(_, t)| *t);
        match status {
            Status::Invited => find(StatusKey::Invited),
            Status::Active => find(StatusKey::Active),
            Status::Suspended => match suspended_by {
                Some(SuspendedBy::Parent) => find(StatusKey::SuspendedByParent),
                Some(SuspendedBy::Own) => find(StatusKey::SuspendedBySelf),
                None => None,
            }
            .or_else(|| find(StatusKey::Suspended)),
            _ => None,
        }
    }
}

/// The plan's budget returns: a list, or one amount for every sub-account
/// with exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnPlan {
    List(Vec<(String, ReturnAmount)>),
    Rules {
        all: ReturnAmount,
        except: Vec<(String, ReturnAmount)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnAmount {
    All,
    Nothing,
}

impl ReturnAmount {
    fn parse(amount: &str) -> Result<ReturnAmount, Fault> {
        match amount {
            "all" => Ok(ReturnAmount::All),
            "0" => Ok(ReturnAmount::Nothing),
            other => Err(Fault(format!(
                "a return's `amount` must be \"all\" or \"0\", not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Campaigns {
    #[default]
    Keep,
    Queue,
    Submit,
    Delete,
}

/// What the SIMs of the sub-accounts a plan suspends or reactivates do
/// (`resources`; default `keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resources {
    /// Nothing changes.
    #[default]
    Keep,
    /// On a suspension: each `active` SIM of a suspended sub-account
    /// becomes `suspended`.
    Suspend,
    /// On a reactivation: the SIMs that the matching suspension's cascade
    /// suspended become `active` again.
    Resume,
}

impl Resources {
    pub fn as_str(self) -> &'static str {
        match self {
            Resources::Keep => "keep",
            Resources::Suspend => "suspend",
            Resources::Resume => "resume",
        }
    }

    fn parse(name: &str) -> Result<Resources, Fault> {
        match name {
            "keep" => Ok(Resources::Keep),
            "suspend" => Ok(Resources::Suspend),
            "resume" => Ok(Resources::Resume),
            other => Err(Fault(format!(
                "`resources` must be keep, suspend or resume, not {other:?}"
            ))),
        }
    }
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
    subaccounts: Either<Vec<StatusDoc>, StatusRulesDoc>,
    #[serde(default)]
    returns: Either<Vec<ReturnDoc>, ReturnRulesDoc>,
    #[serde(default = "keep")]
    campaigns: String,
    #[serde(default = "keep")]
    resources: String,
}

fn keep() -> String {
    "keep".into()
}

/// A list, or rules: told apart by the JSON type (array or object), so
/// each form gets its own strict error.
enum Either<L, R> {
    List(L),
    Rules(R),
}

/// Left out: an empty list.
impl<L: Default, R> Default for Either<L, R> {
    fn default() -> Self {
        Either::List(L::default())
    }
}

impl<'de, L: Deserialize<'de>, R: Deserialize<'de>> Deserialize<'de> for Either<L, R> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            v @ Value::Array(_) => L::deserialize(v)
                .map(Either::List)
                .map_err(D::Error::custom),
            v @ Value::Object(_) => R::deserialize(v)
                .map(Either::Rules)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a list or an object of rules, not {other}"
            ))),
        }
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRulesDoc {
    by_status: serde_json::Map<String, Value>,
    #[serde(default)]
    except: Vec<StatusDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnRulesDoc {
    all: String,
    #[serde(default)]
    except: Vec<ReturnDoc>,
}

fn status_steps(docs: Vec<StatusDoc>) -> Result<Vec<(String, Target)>, Fault> {
    docs.into_iter()
        .map(|s| Target::parse(&s.status).map(|t| (s.id, t)))
        .collect()
}

fn return_steps(docs: Vec<ReturnDoc>) -> Result<Vec<(String, ReturnAmount)>, Fault> {
    docs.into_iter()
        .map(|r| ReturnAmount::parse(&r.amount).map(|a| (r.id, a)))
        .collect()
}

/// An `except` list names each sub-account once.
fn once<T>(except: Vec<(String, T)>, field: &str) -> Result<Vec<(String, T)>, Fault> {
    let mut seen = BTreeSet::new();
    for (id, _) in &except {
        if !seen.insert(id.as_str()) {
            return Err(Fault(format!("`{id}` appears twice in `{field}.except`")));
        }
    }
    Ok(except)
}

/// `cascade` output.
pub fn cascade_plan(out: &Value) -> Result<CascadePlan, Fault> {
    let doc: PlanDoc = parse(out)?;
    let subaccounts = match doc.subaccounts {
        Either::List(steps) => StatusPlan::List(status_steps(steps)?),
        Either::Rules(rules) => StatusPlan::Rules {
            by_status: rules
                .by_status
                .iter()
                .map(|(key, target)| {
                    let target = target.as_str().ok_or_else(|| {
                        Fault(format!(
                            "`by_status.{key}` must be a status name, not {target}"
                        ))
                    })?;
                    Ok((StatusKey::parse(key)?, Target::parse(target)?))
                })
                .collect::<Result<_, Fault>>()?,
            except: once(status_steps(rules.except)?, "subaccounts")?,
        },
    };
    let returns = match doc.returns {
        Either::List(steps) => ReturnPlan::List(return_steps(steps)?),
        Either::Rules(rules) => ReturnPlan::Rules {
            all: ReturnAmount::parse(&rules.all)?,
            except: once(return_steps(rules.except)?, "returns")?,
        },
    };
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
        resources: Resources::parse(&doc.resources)?,
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
            StatusPlan::List(vec![(
                "acct_1".to_string(),
                Target::Status(Status::Suspended)
            )])
        );
        assert_eq!(plan.campaigns, Campaigns::Queue);
        assert!(cascade_plan(&json!({"returns": [{"id": "a", "amount": "12"}]})).is_err());
        assert!(cascade_plan(&json!({"subaccounts": [{"id": "a", "status": "gone"}]})).is_err());
    }

    #[test]
    fn cascade_resources_parse_strictly() {
        // Left out: keep.
        assert_eq!(cascade_plan(&json!({})).unwrap().resources, Resources::Keep);
        for (name, want) in [
            ("keep", Resources::Keep),
            ("suspend", Resources::Suspend),
            ("resume", Resources::Resume),
        ] {
            let plan = cascade_plan(&json!({"subaccounts": [], "resources": name})).unwrap();
            assert_eq!(plan.resources, want);
            assert_eq!(want.as_str(), name);
        }
        for bad in [
            json!({"resources": "Suspend"}),
            json!({"resources": " suspend"}),
            json!({"resources": "suspended"}),
            json!({"resources": "activate"}),
            json!({"resources": ""}),
            json!({"resources": null}),
            json!({"resources": true}),
            json!({"resources": ["suspend"]}),
            json!({"resources": {"sim": "suspend"}}),
            // Still no field but the plan's.
            json!({"resources": "keep", "lines": "keep"}),
        ] {
            let err = cascade_plan(&bad).expect_err(&bad.to_string());
            assert!(!err.0.is_empty());
        }
        // The message names the field and its values.
        let err = cascade_plan(&json!({"resources": "pause"})).unwrap_err();
        assert!(
            err.0
                .contains("`resources` must be keep, suspend or resume"),
            "{}",
            err.0
        );
    }

    #[test]
    fn cascade_rules_parse() {
        let plan = cascade_plan(&json!({
            "subaccounts": {
                "by_status": {"active": "suspended", "invited": "suspended", "suspended_by_parent": "restore"},
                "except": [{"id": "acct_1", "status": "keep"}, {"id": "acct_2", "status": "restore"}]
            },
            "returns": {"all": "0", "except": [{"id": "acct_3", "amount": "all"}]},
            "campaigns": "queue"
        }))
        .unwrap();
        let StatusPlan::Rules { by_status, except } = &plan.subaccounts else {
            panic!("{plan:?}")
        };
        assert!(by_status.contains(&(StatusKey::Active, Target::Status(Status::Suspended))));
        assert!(by_status.contains(&(StatusKey::SuspendedByParent, Target::Restore)));
        assert_eq!(except[0], ("acct_1".to_string(), Target::Keep));
        assert_eq!(
            plan.returns,
            ReturnPlan::Rules {
                all: ReturnAmount::Nothing,
                except: vec![("acct_3".to_string(), ReturnAmount::All)]
            }
        );
        // `except` may be left out; the list forms stay valid beside rules.
        assert!(cascade_plan(&json!({"subaccounts": {"by_status": {}}, "returns": []})).is_ok());
        assert!(cascade_plan(&json!({"subaccounts": [], "returns": {"all": "all"}})).is_ok());
    }

    #[test]
    fn cascade_rules_are_strict() {
        for bad in [
            // Unknown keys, at every level.
            json!({"subaccounts": {"by_status": {}, "unless": []}}),
            json!({"subaccounts": {"by_status": {"deleted": "active"}}}),
            json!({"subaccounts": {"by_status": {"active": "suspended"}, "except": [{"id": "a", "status": "keep", "why": 1}]}}),
            json!({"returns": {"all": "0", "some": []}}),
            json!({"returns": {"except": []}}),
            // Bad statuses and amounts.
            json!({"subaccounts": {"by_status": {"active": "asleep"}}}),
            json!({"subaccounts": {"by_status": {"active": 1}}}),
            json!({"subaccounts": {"by_status": {"active": "suspended"}, "except": [{"id": "a", "status": "gone"}]}}),
            json!({"returns": {"all": "12"}}),
            json!({"returns": {"all": "0", "except": [{"id": "a", "amount": "half"}]}}),
            // Duplicate ids in `except`.
            json!({"subaccounts": {"by_status": {}, "except": [{"id": "a", "status": "keep"}, {"id": "a", "status": "suspended"}]}}),
            json!({"returns": {"all": "0", "except": [{"id": "a", "amount": "all"}, {"id": "a", "amount": "0"}]}}),
            // Neither a list nor rules.
            json!({"subaccounts": null}),
            json!({"subaccounts": "all"}),
            json!({"returns": 0}),
        ] {
            assert!(cascade_plan(&bad).is_err(), "{bad} accepted");
        }
    }
}
