//! An example customer policy for the `subaccount.validate` hook, the same
//! rule as `policies/examples/domain_allowlist.rhai`:
//!
//! - a sub-account's e-mail must be at one of [`ALLOWED_DOMAINS`]
//!   (`fields.email_domain`, which the host lower-cases);
//! - no sub-account name may contain the word "test", in any case, as a
//!   **whole word**: words are runs of the letters `a`-`z` and digits `0`-`9`
//!   of the lower-cased name, anything else separates them. "Load Test 3"
//!   and "qa-test" are refused; "Contest" and "Testing" are not.
//!
//! On update only the changed fields are set (the others are `null`), so
//! only what is submitted is checked.
//!
//! It answers as the Rhai script does on every input, the sandbox's limits
//! included: the script fails on a lower-cased name of more than 65,536
//! bytes or of more than 20,000 words, and on a reason longer than 65,536
//! bytes; so does this.

use canopy_policy::rhai::{ARRAY_LEN_MAX, check_string, get, map};
use canopy_policy::serde_json::{Value, json};

pub const ALLOWED_DOMAINS: &[&str] = &["acme.example", "acme-corp.example"];

fn deny(field: &str, reason: String) -> Value {
    json!({"decision": "deny", "field": field, "reason": reason})
}

/// The words of a text, lower-cased; anything but a-z and 0-9 separates words.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|w| !w.is_empty())
}

pub fn evaluate(_hook: &str, input: &Value) -> Result<Value, String> {
    map(input, "input")?;
    let fields = get(input, "fields")?;
    if let Value::String(domain) = get(fields, "email_domain")? {
        if !ALLOWED_DOMAINS.contains(&domain.as_str()) {
            return Ok(deny(
                "email",
                check_string(format!(
                    "{domain} is not an allowed domain for sub-account e-mails"
                ))?,
            ));
        }
    }
    if let Value::String(name) = get(fields, "name")? {
        let lower = check_string(name.to_lowercase())?;
        if words(&lower).count() > ARRAY_LEN_MAX {
            return Err("Size of array/BLOB too large".into());
        }
        if words(&lower).any(|w| w == "test") {
            return Ok(deny("name", "must not contain the word \"test\"".into()));
        }
    }
    Ok(json!({"decision": "allow"}))
}

canopy_policy::export!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(fields: Value) -> Value {
        evaluate("subaccount.validate", &json!({"fields": fields})).unwrap()
    }

    #[test]
    fn domains() {
        assert_eq!(
            check(json!({"email_domain": "acme-corp.example"})),
            json!({"decision": "allow"})
        );
        assert_eq!(
            check(json!({"email_domain": "gmail.com"}))["reason"],
            "gmail.com is not an allowed domain for sub-account e-mails"
        );
        assert_eq!(
            check(json!({"email_domain": null, "name": "Sales"})),
            json!({"decision": "allow"})
        );
    }

    #[test]
    fn test_names() {
        for name in ["Load Test 3", "qa-test", "TEST", "a_test_b"] {
            assert_eq!(check(json!({"name": name}))["field"], "name", "{name}");
        }
        for name in ["Contest", "Testing", "Attest 2", "tést"] {
            assert_eq!(
                check(json!({"name": name})),
                json!({"decision": "allow"}),
                "{name}"
            );
        }
    }
}
