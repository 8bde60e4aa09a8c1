//! `default.authorize` as a component: a port of `policies/authorize.rhai`
//! that gives the script's output document on every input (and fails where
//! the script raises an error).
//!
//! Subtle points of the script, kept here:
//! - `input` must be a map, and so must `input.principal` (a missing
//!   principal is `()`, and `().relation` is an error);
//! - `p.relation == "operator"` allows before anything else is read;
//! - `p.relation == "parent_of" && p.role != "admin"` denies; a role that is
//!   not a string (missing, `null`, a number…) is `!= "admin"`;
//! - `switch p.role`: a role that is not one of the three strings has no
//!   permission (`_ => []`); `admin` reads `p.account_kind` (any value but
//!   `"parent"` means a sub-account's admin);
//! - `switch action` (each role's permissions): only a string action
//!   matches a case;
//! - the deny reason interpolates `p.role` and `input.action` as Rhai shows
//!   them (`()` is empty, `1.0` stays `1.0`, arrays and maps in debug form)
//!   and fails, as in Rhai, when it is longer than the sandbox's string
//!   limit (1 MiB).

use canopy_policy::rhai::{check_string, contains_str, get, is_str, map, to_string};
use canopy_policy::serde_json::{Value, json};

const PARENT_ADMIN: &[&str] = &[
    "account.read",
    "account.update",
    "subaccount.create",
    "subaccount.list",
    "subaccount.suspend",
    "subaccount.unsuspend",
    "subaccount.delete",
    "member.list",
    "member.invite",
    "member.remove",
    "apikey.create",
    "apikey.list",
    "apikey.revoke",
    "topup.create",
    "budget.allocate",
    "balance.read",
    "transactions.read",
    "notification.list",
    "message.send",
    "message.list",
    "policy.manage",
    "decision.list",
    "resource.list",
    "resource.transfer",
    "resource.activate",
    "resource.suspend",
    "resource.resume",
    "resource.terminate",
    "resource.disconnect",
    "operation.read",
    "offer.assign",
    "billing.read",
    "invoice.read",
    "merge.request",
    "merge.approve",
    "conversation.list",
    "analytics.read",
    "campaign.create",
    "campaign.list",
    "campaign.cancel",
    "webhook.create",
    "webhook.list",
    "webhook.delete",
];

const SUBACCOUNT_ADMIN: &[&str] = &[
    "account.read",
    "account.update",
    "member.list",
    "member.invite",
    "member.remove",
    "apikey.create",
    "apikey.list",
    "apikey.revoke",
    "balance.read",
    "transactions.read",
    "notification.list",
    "message.send",
    "message.list",
    "resource.list",
    "resource.activate",
    "resource.suspend",
    "resource.resume",
    "resource.terminate",
    "resource.disconnect",
    "operation.read",
    "conversation.list",
    "analytics.read",
    "campaign.create",
    "campaign.list",
    "campaign.cancel",
    "webhook.create",
    "webhook.list",
    "webhook.delete",
];

const ADVANCED: &[&str] = &[
    "account.read",
    "member.list",
    "message.send",
    "message.list",
    "resource.list",
    "operation.read",
    "conversation.list",
    "analytics.read",
    "campaign.list",
];

const BASIC: &[&str] = &[
    "account.read",
    "message.send",
    "message.list",
    "conversation.list",
    "analytics.read",
];

fn permissions(p: &Value) -> Result<&'static [&'static str], String> {
    Ok(match get(p, "role")?.as_str() {
        Some("admin") => {
            if is_str(get(p, "account_kind")?, "parent") {
                PARENT_ADMIN
            } else {
                SUBACCOUNT_ADMIN
            }
        }
        Some("advanced") => ADVANCED,
        Some("basic") => BASIC,
        _ => &[],
    })
}

pub fn evaluate(_hook: &str, input: &Value) -> Result<Value, String> {
    map(input, "input")?;
    let p = get(input, "principal")?;
    if is_str(get(p, "relation")?, "operator") {
        return Ok(json!({"decision": "allow"}));
    }
    if is_str(get(p, "relation")?, "parent_of") && !is_str(get(p, "role")?, "admin") {
        return Ok(json!({
            "decision": "deny",
            "reason": "only an admin of the parent account may act in its sub-accounts",
        }));
    }
    let action = get(input, "action")?;
    if contains_str(permissions(p)?, action) {
        Ok(json!({"decision": "allow"}))
    } else {
        let kind = if is_str(get(p, "account_kind")?, "parent") {
            "parent account"
        } else {
            "sub-account"
        };
        let role = get(p, "role")?;
        let reason = check_string(format!(
            "the {} role of a {kind} may not do {}; ask an admin of the account",
            to_string(role),
            to_string(action),
        ))?;
        Ok(json!({"decision": "deny", "reason": reason}))
    }
}

canopy_policy::export!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(relation: &str, role: Value, kind: &str) -> Value {
        json!({"relation": relation, "role": role, "account_kind": kind})
    }

    #[test]
    fn sample_basic_user_inviting_is_denied() {
        let input = json!({"principal": principal("self", json!("basic"), "subaccount"), "action": "member.invite"});
        assert_eq!(
            evaluate("authorize", &input).unwrap(),
            json!({"decision": "deny", "reason": "the basic role of a sub-account may not do member.invite; ask an admin of the account"})
        );
    }

    #[test]
    fn operators_and_admins() {
        let op = json!({"principal": {"relation": "operator"}, "action": 5});
        assert_eq!(
            evaluate("authorize", &op).unwrap(),
            json!({"decision": "allow"})
        );
        let admin = json!({"principal": principal("self", json!("admin"), "parent"), "action": "topup.create"});
        assert_eq!(
            evaluate("authorize", &admin).unwrap(),
            json!({"decision": "allow"})
        );
        let sub = json!({"principal": principal("parent_of", json!(null), "parent"), "action": "topup.create"});
        assert_eq!(
            evaluate("authorize", &sub).unwrap()["reason"],
            "only an admin of the parent account may act in its sub-accounts"
        );
        let odd =
            json!({"principal": principal("self", json!(null), "parent"), "action": [1.0, null]});
        assert_eq!(
            evaluate("authorize", &odd).unwrap()["reason"],
            "the  role of a parent account may not do [1.0, ()]; ask an admin of the account"
        );
    }

    /// Seed 002 and issue 9: only the parent's admin moves resources
    /// between places, assigns offers, reads bills and merges; a
    /// sub-account's admin acts on the SIMs and lines it holds.
    #[test]
    fn resource_actions_by_role() {
        let decide = |role: &str, kind: &str, action: &str| {
            let input =
                json!({"principal": principal("self", json!(role), kind), "action": action});
            evaluate("authorize", &input).unwrap()["decision"].clone()
        };
        for action in [
            "resource.list",
            "resource.transfer",
            "resource.activate",
            "resource.suspend",
            "resource.resume",
            "resource.terminate",
            "resource.disconnect",
            "operation.read",
            "offer.assign",
            "billing.read",
            "invoice.read",
            "merge.request",
            "merge.approve",
        ] {
            assert_eq!(decide("admin", "parent", action), "allow", "{action}");
            let sub = if action.starts_with("resource.") && action != "resource.transfer"
                || action == "operation.read"
            {
                "allow"
            } else {
                "deny"
            };
            assert_eq!(decide("admin", "subaccount", action), sub, "{action}");
            let advanced = if matches!(action, "resource.list" | "operation.read") {
                "allow"
            } else {
                "deny"
            };
            assert_eq!(decide("advanced", "parent", action), advanced, "{action}");
            assert_eq!(
                decide("advanced", "subaccount", action),
                advanced,
                "{action}"
            );
            assert_eq!(decide("basic", "subaccount", action), "deny", "{action}");
        }
        // Provisioning is the operator's.
        assert_eq!(decide("admin", "parent", "resource.provision"), "deny");
    }

    #[test]
    fn errors_where_rhai_errors() {
        assert!(evaluate("authorize", &json!({})).is_err());
        assert!(evaluate("authorize", &json!({"principal": "x"})).is_err());
        assert!(evaluate("authorize", &json!([1])).is_err());
        let long = json!({"principal": principal("self", json!("basic"), "parent"), "action": "x".repeat(canopy_policy::rhai::STRING_LEN_MAX)});
        assert!(evaluate("authorize", &long).is_err());
    }
}
