//! `default.visibility` as a component: a port of `policies/visibility.rhai`
//! that gives the script's output document on every input (and fails where
//! the script raises an error).
//!
//! Subtle points of the script, kept here:
//! - `input` and `input.principal` must be maps (`().relation` is an error);
//! - the three conditions are `&&`-ed left to right: `p["module"]` is read only
//!   when the relation is `"self"` and the kind `"subaccount"` (it cannot fail
//!   then: `p` is a map);
//! - the hidden groups come in the script's order: pricing, plan, balance,
//!   usage;
//! - any role but the string `"basic"` (missing, `null`, a number…) sees all
//!   rows.

use canopy_policy::rhai::{get, is_str, map};
use canopy_policy::serde_json::{Value, json};

pub fn evaluate(_hook: &str, input: &Value) -> Result<Value, String> {
    map(input, "input")?;
    let p = get(input, "principal")?;
    let hide: &[&str] = if is_str(get(p, "relation")?, "self")
        && is_str(get(p, "account_kind")?, "subaccount")
        && is_str(get(p, "module")?, "reseller")
    {
        &["pricing", "plan", "balance", "usage"]
    } else {
        &[]
    };
    let rows = if is_str(get(p, "role")?, "basic") {
        "own"
    } else {
        "all"
    };
    Ok(json!({"decision": "allow", "hide": hide, "rows": rows}))
}

canopy_policy::export!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_reseller_admin() {
        let input = json!({"principal": {"relation": "self", "account_kind": "subaccount", "module": "reseller", "role": "admin"}});
        assert_eq!(
            evaluate("visibility", &input).unwrap(),
            json!({"decision": "allow", "hide": ["pricing", "plan", "balance", "usage"], "rows": "all"})
        );
    }

    #[test]
    fn basic_rows_and_errors() {
        let input = json!({"principal": {"relation": "parent_of", "role": "basic"}});
        assert_eq!(
            evaluate("visibility", &input).unwrap(),
            json!({"decision": "allow", "hide": [], "rows": "own"})
        );
        assert!(evaluate("visibility", &json!({"principal": null})).is_err());
        assert!(evaluate("visibility", &json!("x")).is_err());
    }
}
