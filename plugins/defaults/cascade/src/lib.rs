//! `default.cascade` as a component: a port of `policies/cascade.rhai` that
//! gives the script's output document on every input (and fails where the
//! script raises an error).
//!
//! The script reads only `input.event`, so only that is taken from the
//! input: the sub-accounts (10,000 of them at most, about 1.7 MB of JSON)
//! are skipped by the parser, never built into values.
//!
//! Subtle points of the script, kept here:
//! - `input` must be a map (`input.event` on anything else is an error);
//! - `switch input.event`: an event that is not one of the four strings
//!   (missing, `null`, a number, another name) matches no case, and the plan
//!   is `{"subaccounts": [], "returns": [], "campaigns": "keep",
//!   "resources": "keep"}`;
//! - `resources` is always `"keep"` (seed 000 says nothing about SIMs), and
//!   written out so the plan shows the field.

use canopy_policy::serde_json::{self, Value, json};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// `input.event`, read from the input text without building the rest.
struct Event(Option<String>);

impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Event;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the input document as a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                let mut event = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "event" {
                        // Only a string can match a case; any other value
                        // (a number, a map...) matches none.
                        event = match map.next_value::<Value>()? {
                            Value::String(s) => Some(s),
                            _ => None,
                        };
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Event(event))
            }
        }
        d.deserialize_map(Fields)
    }
}

pub fn evaluate(_hook: &str, input: &str) -> Result<String, String> {
    let Event(event) = serde_json::from_str::<Event>(input)
        .map_err(|e| format!("input: a map was expected ({e})"))?;
    let (changes, campaigns) = plan(event.as_deref());
    let out = json!({
        "subaccounts": changes,
        "returns": [],
        "campaigns": campaigns,
        "resources": "keep",
    });
    serde_json::to_string(&out).map_err(|e| e.to_string())
}

/// The script's `switch`.
fn plan(event: Option<&str>) -> (Value, &'static str) {
    match event {
        Some("parent.suspended") => (
            json!({"by_status": {"active": "suspended", "invited": "suspended"}}),
            "queue",
        ),
        Some("parent.unsuspended") => (
            json!({"by_status": {"suspended_by_parent": "restore"}}),
            "submit",
        ),
        Some("subaccount.suspended") => (json!([]), "queue"),
        Some("subaccount.unsuspended") => (json!([]), "submit"),
        _ => (json!([]), "keep"),
    }
}

canopy_policy::export_raw!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: Value) -> Result<Value, String> {
        evaluate("cascade", &input.to_string()).map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn sample_parent_suspended() {
        let input = json!({"event": "parent.suspended", "subaccounts": [
            {"id": "a", "status": "active"}, {"id": "b", "status": "invited"},
            {"id": "c", "status": "suspended", "previous_status": "active", "suspended_by": "self"},
        ]});
        assert_eq!(
            run(input).unwrap(),
            json!({"campaigns": "queue", "resources": "keep", "returns": [], "subaccounts":
                {"by_status": {"active": "suspended", "invited": "suspended"}}})
        );
    }

    #[test]
    fn odd_inputs() {
        assert_eq!(
            run(json!({"event": 3})).unwrap(),
            json!({"campaigns": "keep", "resources": "keep", "returns": [], "subaccounts": []})
        );
        assert_eq!(
            run(json!({"event": "parent.unsuspended", "subaccounts": "x"})).unwrap(),
            json!({"campaigns": "submit", "resources": "keep", "returns": [],
                   "subaccounts": {"by_status": {"suspended_by_parent": "restore"}}})
        );
        assert!(run(json!([1, 2])).is_err());
        assert!(run(json!("parent.suspended")).is_err());
        assert!(evaluate("cascade", "not json").is_err());
    }
}
