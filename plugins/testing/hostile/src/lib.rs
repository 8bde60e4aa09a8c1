//! A hostile policy component, for the host's sandbox tests
//! (`tests/fixtures/hostile.wasm`; `tests/fixtures/hostile.rhai` is the Rhai
//! counterpart).
//!
//! It answers like a well-behaved policy (an allow document of the hook:
//! `{"decision":"allow"}` for `authorize`, `subaccount.validate` and any
//! other hook; `{"decision":"allow","hide":[],"rows":"all"}` for
//! `visibility`; `{"subaccounts":[],"returns":[],"campaigns":"keep"}` for
//! `cascade`) unless the input text contains one of these markers anywhere
//! (e.g. in `target.name` or `fields.name`), checked in this order:
//!
//! | marker | behaviour |
//! |---|---|
//! | `hostile:trap` | panics: the module traps (`unreachable`) |
//! | `hostile:malformed` | returns `Ok("this is not json")` |
//! | `hostile:output` | returns `Ok` with a 16 MiB JSON document (a deny whose reason is 16 MiB of `x`) |
//! | `hostile:recursion` | unbounded non-tail recursion, until the stack is exhausted |
//! | `hostile:memory` | allocates and touches 1 MiB after 1 MiB, without bound, until memory cannot grow |
//! | `hostile:loop` | loops for ever, until the host stops it (fuel or deadline) |

use core::hint::black_box;

pub const OUTPUT_BYTES: usize = 16 * 1024 * 1024;

fn allow(hook: &str) -> String {
    match hook {
        "visibility" => r#"{"decision":"allow","hide":[],"rows":"all"}"#,
        "cascade" => r#"{"subaccounts":[],"returns":[],"campaigns":"keep"}"#,
        _ => r#"{"decision":"allow"}"#,
    }
    .to_string()
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // A frame with data on the stack, used after the call returns: the call
    // cannot become a loop.
    let frame = black_box([depth; 8]);
    let below = recurse(black_box(depth + 1));
    black_box(below.wrapping_add(frame[(depth % 8) as usize]))
}

/// A 16 MiB deny document, made with bulk memory operations (cheap in fuel:
/// the output's size is what is hostile, not the time taken to make it).
fn huge_output() -> String {
    let head = br#"{"decision":"deny","reason":""#;
    let tail = br#""}"#;
    let mut bytes = vec![b'x'; OUTPUT_BYTES];
    bytes[..head.len()].copy_from_slice(head);
    bytes[OUTPUT_BYTES - tail.len()..].copy_from_slice(tail);
    // SAFETY: every byte is ASCII.
    unsafe { String::from_utf8_unchecked(bytes) }
}

fn endless_memory() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        for i in (0..chunk.len()).step_by(4096) {
            chunk[i] = black_box(i as u8 | 1);
        }
        held.push(black_box(chunk));
    }
}

fn endless_loop() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

pub fn evaluate(hook: &str, input: &str) -> Result<String, String> {
    if input.contains("hostile:trap") {
        panic!("hostile:trap");
    }
    if input.contains("hostile:malformed") {
        return Ok("this is not json".into());
    }
    if input.contains("hostile:output") {
        return Ok(huge_output());
    }
    if input.contains("hostile:recursion") {
        return Ok(recurse(0).to_string());
    }
    if input.contains("hostile:memory") {
        endless_memory();
    }
    if input.contains("hostile:loop") {
        endless_loop();
    }
    Ok(allow(hook))
}

canopy_policy::export_raw!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_without_markers() {
        assert_eq!(
            evaluate("authorize", "{}").unwrap(),
            r#"{"decision":"allow"}"#
        );
        assert_eq!(
            evaluate("visibility", "{}").unwrap(),
            r#"{"decision":"allow","hide":[],"rows":"all"}"#
        );
        assert_eq!(
            evaluate("cascade", "{}").unwrap(),
            r#"{"subaccounts":[],"returns":[],"campaigns":"keep"}"#
        );
        assert_eq!(
            evaluate("authorize", r#"{"n":"hostile:malformed"}"#).unwrap(),
            "this is not json"
        );
        let out = evaluate("authorize", r#"{"n":"hostile:output"}"#).unwrap();
        assert_eq!(out.len(), OUTPUT_BYTES);
    }
}
