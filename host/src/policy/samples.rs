//! Sample input documents of each hook, kept as JSON in
//! `policies/samples/`. They document the inputs, feed `canopy policy
//! check`, and a test checks that the host builds documents of the same
//! shape.

use serde_json::Value;

use super::Hook;

fn parse(text: &str) -> Vec<Value> {
    serde_json::from_str(text).expect("shipped samples are JSON arrays")
}

/// The shipped samples of a hook.
pub fn of(hook: Hook) -> Vec<Value> {
    parse(match hook {
        Hook::Authorize => include_str!("../../../policies/samples/authorize.json"),
        Hook::SubaccountValidate => {
            include_str!("../../../policies/samples/subaccount_validate.json")
        }
        Hook::Visibility => include_str!("../../../policies/samples/visibility.json"),
        Hook::Cascade => include_str!("../../../policies/samples/cascade.json"),
    })
}
