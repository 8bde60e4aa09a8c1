//! `default.subaccount.validate` as a component: a port of
//! `policies/subaccount_validate.rhai` that gives the script's output document
//! on every input (and fails where the script raises an error).
//!
//! Subtle points of the script, kept here:
//! - `input` and `input.fields` must be maps (`().name` is an error);
//! - the name is checked only when it is a string; it is trimmed with Rust's
//!   `str::trim` (Unicode white space) and measured in characters, not bytes;
//!   a trimmed name longer than 65,536 bytes breaks Rhai's string limit
//!   (`trim` is a function call, whose target is checked): an error;
//! - the e-mail is checked only when `fields.email` is a string, but the
//!   domain is `fields.email_domain`, whatever its type: only a string can be
//!   a free-mail domain, or a subdomain of one (`mail.gmail.com`; the host
//!   gives domains NFKC-normalised and lower-cased, and the script compares
//!   them as given; `ends_with` does not check its target against the
//!   sandbox's string limit, so a huge domain is compared, not an error);
//!   under the enterprise module any domain that is not
//!   `==` the parent's (by Rhai's `==`: `1 == 1.0`, arrays and maps compared
//!   deeply, a missing one is `()`) is refused;
//! - `input.parent` must then be a map (`parent["module"]` on anything else
//!   is an error), but `parent.email_domain` is read only under the
//!   enterprise module;
//! - the reason shows the parent's domain as Rhai shows it (`()` is empty,
//!   arrays and maps in debug form), and fails beyond 65,536 bytes.

use canopy_policy::rhai::{check_size, check_string, eq, get, is_str, len, map, to_string};
use canopy_policy::serde_json::{Value, json};

const NAME_LEN_MAX: usize = 160;

const FREE_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "rocketmail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "mail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "rediffmail.com",
    "tutanota.com",
    "fastmail.com",
    "hey.com",
    "libero.it",
    "orange.fr",
    "free.fr",
];

/// The listed free-mail domain that `domain` is, or is a subdomain of
/// (the script's `free_mail_domain`).
fn free_mail_domain(domain: &Value) -> Option<&'static str> {
    let Value::String(domain) = domain else {
        return None;
    };
    FREE_MAIL_DOMAINS
        .iter()
        .find(|d| domain == *d || domain.ends_with(&format!(".{d}")))
        .copied()
}

fn deny(field: &str, reason: String) -> Value {
    json!({"decision": "deny", "field": field, "reason": reason})
}

pub fn evaluate(_hook: &str, input: &Value) -> Result<Value, String> {
    map(input, "input")?;
    let f = get(input, "fields")?;
    if let Value::String(name) = get(f, "name")? {
        let name = name.trim();
        check_size(&Value::String(name.to_string()))?;
        let chars = len(name);
        if chars == 0 {
            return Ok(deny("name", "must not be empty".into()));
        }
        if chars > NAME_LEN_MAX {
            return Ok(deny(
                "name",
                format!("must be at most {NAME_LEN_MAX} characters; it has {chars}"),
            ));
        }
    }
    if get(f, "email")?.is_string() {
        let domain = get(f, "email_domain")?;
        if let Some(free) = free_mail_domain(domain) {
            let domain = to_string(domain);
            let reason = if domain == free {
                format!("must be a business address; {domain} is a free-mail domain")
            } else {
                format!("must be a business address; {domain} is under the free-mail domain {free}")
            };
            return Ok(deny("email", check_string(reason)?));
        }
        let parent = get(input, "parent")?;
        if is_str(get(parent, "module")?, "enterprise") {
            let parent_domain = get(parent, "email_domain")?;
            if !eq(domain, parent_domain)? {
                return Ok(deny(
                    "email",
                    check_string(format!(
                        "must use the parent account's domain {} under the enterprise module",
                        to_string(parent_domain)
                    ))?,
                ));
            }
        }
    }
    Ok(json!({"decision": "allow"}))
}

canopy_policy::export!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    fn input(fields: Value, parent: Value) -> Value {
        json!({"fields": fields, "parent": parent})
    }

    #[test]
    fn sample_free_mail() {
        let i = input(
            json!({"name": "Acme Support", "email": "someone@gmail.com", "email_domain": "gmail.com"}),
            json!({"module": "enterprise", "email_domain": "acme.example"}),
        );
        assert_eq!(
            evaluate("subaccount.validate", &i).unwrap(),
            json!({"decision": "deny", "field": "email", "reason": "must be a business address; gmail.com is a free-mail domain"})
        );
    }

    #[test]
    fn subdomains_of_free_mail() {
        let parent = json!({"module": "reseller"});
        let sub = input(
            json!({"email": "x@mail.gmail.com", "email_domain": "mail.gmail.com"}),
            parent.clone(),
        );
        assert_eq!(
            evaluate("subaccount.validate", &sub).unwrap()["reason"],
            "must be a business address; mail.gmail.com is under the free-mail domain gmail.com"
        );
        let near = input(
            json!({"email": "x@notgmail.com", "email_domain": "notgmail.com"}),
            parent,
        );
        assert_eq!(
            evaluate("subaccount.validate", &near).unwrap(),
            json!({"decision": "allow"})
        );
    }

    #[test]
    fn names() {
        let blank = input(json!({"name": " \u{3000}\t"}), json!(null));
        assert_eq!(
            evaluate("subaccount.validate", &blank).unwrap()["reason"],
            "must not be empty"
        );
        let long = input(json!({"name": "é".repeat(161)}), json!(null));
        assert_eq!(
            evaluate("subaccount.validate", &long).unwrap()["reason"],
            "must be at most 160 characters; it has 161"
        );
        let ok = input(json!({"name": "é".repeat(160)}), json!(null));
        assert_eq!(
            evaluate("subaccount.validate", &ok).unwrap(),
            json!({"decision": "allow"})
        );
        let huge = input(json!({"name": "x".repeat(70_000)}), json!(null));
        assert!(evaluate("subaccount.validate", &huge).is_err());
    }

    #[test]
    fn domains() {
        let other = input(
            json!({"email": "a@b.example", "email_domain": "b.example"}),
            json!({"module": "enterprise", "email_domain": ["acme", 1.5]}),
        );
        assert_eq!(
            evaluate("subaccount.validate", &other).unwrap()["reason"],
            "must use the parent account's domain [\"acme\", 1.5] under the enterprise module"
        );
        let no_parent = input(
            json!({"email": "a@b.example", "email_domain": "b.example"}),
            json!(null),
        );
        assert!(evaluate("subaccount.validate", &no_parent).is_err());
        let reseller = input(
            json!({"email": "a@b.example", "email_domain": 1}),
            json!({"module": "reseller"}),
        );
        assert_eq!(
            evaluate("subaccount.validate", &reseller).unwrap(),
            json!({"decision": "allow"})
        );
    }
}
