//! `default.cascade` as a component: a port of `policies/cascade.rhai` that
//! gives the script's output document on every input (and fails where the
//! script raises an error).
//!
//! Subtle points of the script, kept here:
//! - `input` must be a map; `switch input.event`: an event that is not one of
//!   the four strings (missing, `null`, a number, another name) matches no
//!   case, and the plan is `{"subaccounts": [], "returns": [], "campaigns":
//!   "keep"}`;
//! - on the `parent.*` events, `for s in input.subaccounts` iterates an array,
//!   or the characters of a string (so `""` is like `[]`, and a non-empty
//!   string fails on `s.status`); anything else (`()`, a map, a number) is an
//!   error, and so is an item that is not a map;
//! - `s.id` and `s.previous_status` are copied into the plan as they are,
//!   whatever their type (a missing one is `null`; an integer above
//!   `i64::MAX` comes out as an `f64`, as from Rhai);
//! - after each `push`, Rhai checks the plan's list against the sandbox's
//!   data limits, counted recursively: 20,000 array items, 50,000 map
//!   properties (2 per step), 1 MiB of strings (the ids, and
//!   `"suspended"` or the previous statuses). A plan over the 10,000
//!   sub-accounts a parent may hold fits; a larger one fails, in Rhai as
//!   here.

use canopy_policy::rhai::{check_size, get, is_str, map, rhai_value};
use canopy_policy::serde_json::{Value, json};

/// The items `for s in v` visits; `Err` where Rhai refuses to iterate.
fn items(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        _ => Err("For loop expects iterable type".into()),
    }
}

/// `s.name` for an item of the loop: a character (a string item here) has no
/// property, so only maps are accepted.
fn prop<'a>(s: &'a Value, name: &str) -> Result<&'a Value, String> {
    match s {
        Value::Object(_) => get(s, name),
        _ => Err(format!(
            "Unknown property '{name}' of a sub-account that is not a map"
        )),
    }
}

pub fn evaluate(_hook: &str, input: &Value) -> Result<Value, String> {
    map(input, "input")?;
    let mut changes: Vec<Value> = Vec::new();
    let mut campaigns = "keep";
    match get(input, "event")?.as_str() {
        Some("parent.suspended") => {
            for s in items(get(input, "subaccounts")?)? {
                if is_str(prop(&s, "status")?, "invited") || is_str(prop(&s, "status")?, "active") {
                    changes.push(json!({"id": rhai_value(prop(&s, "id")?), "status": "suspended"}));
                }
            }
            campaigns = "queue";
        }
        Some("parent.unsuspended") => {
            for s in items(get(input, "subaccounts")?)? {
                if is_str(prop(&s, "status")?, "suspended")
                    && is_str(prop(&s, "suspended_by")?, "parent")
                {
                    changes.push(json!({
                        "id": rhai_value(prop(&s, "id")?),
                        "status": rhai_value(prop(&s, "previous_status")?),
                    }));
                }
            }
            campaigns = "submit";
        }
        Some("subaccount.suspended") => campaigns = "queue",
        Some("subaccount.unsuspended") => campaigns = "submit",
        _ => {}
    }
    // The sizes only grow: checking the final list is checking every push.
    let changes = Value::Array(changes);
    if changes.as_array().is_some_and(|c| !c.is_empty()) {
        check_size(&changes)?;
    }
    Ok(json!({"subaccounts": changes, "returns": [], "campaigns": campaigns}))
}

canopy_policy::export!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_parent_suspended() {
        let input = json!({"event": "parent.suspended", "subaccounts": [
            {"id": "a", "status": "active"}, {"id": "b", "status": "invited"},
            {"id": "c", "status": "suspended", "previous_status": "active", "suspended_by": "self"},
        ]});
        assert_eq!(
            evaluate("cascade", &input).unwrap(),
            json!({"campaigns": "queue", "returns": [], "subaccounts": [
                {"id": "a", "status": "suspended"}, {"id": "b", "status": "suspended"}]})
        );
    }

    #[test]
    fn odd_inputs() {
        assert_eq!(
            evaluate("cascade", &json!({"event": 3})).unwrap(),
            json!({"campaigns": "keep", "returns": [], "subaccounts": []})
        );
        assert_eq!(
            evaluate(
                "cascade",
                &json!({"event": "parent.unsuspended", "subaccounts": ""})
            )
            .unwrap(),
            json!({"campaigns": "submit", "returns": [], "subaccounts": []})
        );
        assert!(
            evaluate(
                "cascade",
                &json!({"event": "parent.unsuspended", "subaccounts": "x"})
            )
            .is_err()
        );
        assert!(evaluate("cascade", &json!({"event": "parent.suspended"})).is_err());
        assert!(
            evaluate(
                "cascade",
                &json!({"event": "parent.suspended", "subaccounts": [1]})
            )
            .is_err()
        );
        let many: Vec<Value> = (0..1425)
            .map(|i| json!({"id": format!("acct_{i:032}"), "status": "active"}))
            .collect();
        assert!(
            evaluate(
                "cascade",
                &json!({"event": "parent.suspended", "subaccounts": many})
            )
            .is_err()
        );
    }
}
