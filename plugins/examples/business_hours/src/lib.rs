//! An example customer policy for the `authorize` hook, the same rule as
//! `policies/examples/business_hours.rhai`: basic users may send messages
//! only from 08:00 to 18:00 in their account's time zone.
//!
//! The host puts `local_now` (RFC 3339 with the zone's offset) and
//! `timezone` in each account document, so the guest reads the local hour
//! from the text: it needs no clock and no time-zone database.

use canopy_policy::serde_json::{Value, json};

/// Sending is open from this hour (inclusive)...
pub const OPENS_AT_HOUR: u32 = 8;
/// ...to this one (exclusive).
pub const CLOSES_AT_HOUR: u32 = 18;

pub fn evaluate(hook: &str, input: &Value) -> Result<Value, String> {
    let allow = json!({"decision": "allow"});
    if hook != "authorize"
        || input["action"] != "message.send"
        || input["principal"]["role"] != "basic"
    {
        return Ok(allow);
    }
    let local = input["target"]["local_now"]
        .as_str()
        .ok_or("`target.local_now` is not a string")?;
    let hour: u32 = local
        .get(11..13)
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| format!("`target.local_now` is not RFC 3339: {local:?}"))?;
    if (OPENS_AT_HOUR..CLOSES_AT_HOUR).contains(&hour) {
        return Ok(allow);
    }
    let zone = input["target"]["timezone"].as_str().unwrap_or("UTC");
    let clock = local.get(11..16).unwrap_or_default();
    Ok(json!({
        "decision": "deny",
        "reason": format!("basic users may send only from 08:00 to 18:00 in {zone}; it is {clock} there"),
    }))
}

canopy_policy::export!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    fn send(role: &str, local_now: &str) -> Value {
        let input = json!({
            "hook": "authorize", "action": "message.send", "principal": {"role": role},
            "target": {"timezone": "Europe/Rome", "local_now": local_now},
        });
        evaluate("authorize", &input).unwrap()
    }

    #[test]
    fn basic_users_send_in_business_hours_only() {
        assert_eq!(
            send("basic", "2026-03-02T08:00:00+01:00")["decision"],
            "allow"
        );
        assert_eq!(
            send("basic", "2026-03-02T17:59:59+01:00")["decision"],
            "allow"
        );
        let late = send("basic", "2026-03-02T18:00:00+01:00");
        assert_eq!(late["decision"], "deny");
        assert_eq!(
            late["reason"],
            "basic users may send only from 08:00 to 18:00 in Europe/Rome; it is 18:00 there"
        );
        assert_eq!(
            send("basic", "2026-03-02T07:59:59+01:00")["decision"],
            "deny"
        );
        assert_eq!(
            send("advanced", "2026-03-02T23:00:00+01:00")["decision"],
            "allow"
        );
    }
}
