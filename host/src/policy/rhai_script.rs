//! The Rhai runtime: a policy is a script defining `fn evaluate(hook, input)`
//! that returns the output document as a map.
//!
//! Sandbox: no modules (the `no_module` feature makes `import` a syntax
//! error), no `eval`, no file, clock or randomness access (Rhai
//! has none without modules, and the `no_time` feature removes `timestamp`);
//! limits on operations, call depth, expression depth, string, array and map
//! sizes; a wall-clock deadline checked from the progress callback.

use std::cell::Cell;
use std::sync::LazyLock;
use std::time::Instant;

use rhai::{AST, CallFnOptions, Dynamic, Engine, Scope};
use serde_json::Value;

use super::{Budget, Fault, Hook, Policy};

/// Instruction budget of one evaluation (scaled by its [`Budget`]).
const OPERATIONS_MAX: u64 = 2_000_000;
const CALL_LEVELS_MAX: usize = 32;
const EXPR_DEPTH_MAX: usize = 64;
const FN_EXPR_DEPTH_MAX: usize = 32;
/// Strings are counted together within a collection: a cascade plan over the
/// most sub-accounts a parent may hold (10,000 ids) fits.
const STRING_LEN_MAX: usize = 1024 * 1024;
/// Above the most sub-accounts one parent holds, so a cascade plan fits.
const ARRAY_LEN_MAX: usize = 20_000;
const MAP_LEN_MAX: usize = 50_000;
/// Largest script accepted.
pub const SOURCE_BYTES_MAX: usize = 256 * 1024;
/// The deadline is checked every this many operations.
const DEADLINE_CHECK_EVERY: u64 = 256;

thread_local! {
    /// The deadline of the evaluation running on this thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Its instruction budget (operations).
    static OPERATIONS: Cell<u64> = const { Cell::new(OPERATIONS_MAX) };
}

/// What the progress callback stops an evaluation for.
const PAST_DEADLINE: &str = "deadline";
const OUT_OF_OPERATIONS: &str = "operations";

/// One engine for every Rhai policy: its limits are the sandbox.
static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let mut engine = Engine::new();
    engine
        // The largest budget; each evaluation's own is checked below.
        .set_max_operations(Budget::MAX.instructions(OPERATIONS_MAX))
        .set_max_call_levels(CALL_LEVELS_MAX)
        .set_max_expr_depths(EXPR_DEPTH_MAX, FN_EXPR_DEPTH_MAX)
        .set_max_string_size(STRING_LEN_MAX)
        .set_max_array_size(ARRAY_LEN_MAX)
        .set_max_map_size(MAP_LEN_MAX)
        .set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(|operations| {
        if operations > OPERATIONS.with(Cell::get) {
            return Some(Dynamic::from(OUT_OF_OPERATIONS));
        }
        if operations % DEADLINE_CHECK_EVERY != 0 {
            return None;
        }
        let past = DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() >= deadline));
        past.then(|| Dynamic::from(PAST_DEADLINE))
    });
    engine
});

#[derive(Debug)]
pub struct RhaiPolicy {
    id: String,
    version: i64,
    ast: AST,
}

impl RhaiPolicy {
    /// Compiles a script; the error says where and why it does not compile.
    pub fn compile(id: &str, version: i64, source: &str) -> Result<RhaiPolicy, String> {
        if source.len() > SOURCE_BYTES_MAX {
            return Err(format!(
                "the script is {} bytes; the limit is {SOURCE_BYTES_MAX}",
                source.len()
            ));
        }
        let ast = ENGINE.compile(source).map_err(|e| e.to_string())?;
        let defines_evaluate = ast
            .iter_functions()
            .any(|f| f.name == "evaluate" && f.params.len() == 2);
        if !defines_evaluate {
            return Err("the script must define `fn evaluate(hook, input)`".into());
        }
        Ok(RhaiPolicy {
            id: id.to_string(),
            version,
            ast,
        })
    }
}

impl Policy for RhaiPolicy {
    fn id(&self) -> &str {
        &self.id
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn evaluate(&self, hook: Hook, input: &Value, budget: Budget) -> Result<Value, Fault> {
        let input = dynamic_of(input);
        let operations = budget.instructions(OPERATIONS_MAX);
        OPERATIONS.with(|o| o.set(operations));
        DEADLINE.with(|d| d.set(Some(Instant::now() + budget.deadline)));
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result = ENGINE.call_fn_with_options::<Dynamic>(
            options,
            &mut Scope::new(),
            &self.ast,
            "evaluate",
            (hook.name().to_string(), input),
        );
        DEADLINE.with(|d| d.set(None));
        let output = result.map_err(|e| match *e {
            rhai::EvalAltResult::ErrorTerminated(why, _)
                if why.clone().into_string().ok().as_deref() == Some(OUT_OF_OPERATIONS) =>
            {
                Fault(format!("ran past its budget of {operations} operations"))
            }
            rhai::EvalAltResult::ErrorTerminated(..) => Fault(format!(
                "ran past its {} ms deadline",
                budget.deadline.as_millis()
            )),
            other => Fault(other.to_string()),
        })?;
        let output: Value = rhai::serde::from_dynamic(&output)
            .map_err(|e| Fault(format!("output is not a JSON document: {e}")))?;
        let size = super::json_size(&output);
        if size > hook.output_bytes_max() {
            return Err(Fault(format!(
                "output is {size} bytes; the limit is {}",
                hook.output_bytes_max()
            )));
        }
        Ok(output)
    }
}

/// The input document as Rhai values: maps, arrays, strings, integers
/// (floats where a number is not an `i64`), `()` for null. The same as
/// `rhai::serde::to_dynamic`, without the serializer's detour.
fn dynamic_of(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => rhai::ImmutableString::from(s.as_str()).into(),
        Value::Array(items) => Dynamic::from_array(items.iter().map(dynamic_of).collect()),
        Value::Object(fields) => {
            let mut map = rhai::Map::new();
            for (k, v) in fields {
                map.insert(k.as_str().into(), dynamic_of(v));
            }
            Dynamic::from_map(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(source: &str) -> Result<Value, Fault> {
        let policy = RhaiPolicy::compile("test", 1, source).map_err(Fault)?;
        policy.evaluate(
            Hook::Authorize,
            &json!({"action": "account.read"}),
            Budget::DEFAULT,
        )
    }

    #[test]
    fn evaluates_a_map_into_json() {
        let out = run(
            r#"fn evaluate(hook, input) { #{ decision: "allow", hook: hook, action: input.action } }"#,
        );
        assert_eq!(
            out,
            Ok(json!({"decision": "allow", "hook": "authorize", "action": "account.read"}))
        );
    }

    #[test]
    fn refuses_scripts_without_evaluate_or_that_do_not_compile() {
        assert!(
            RhaiPolicy::compile("p", 1, "fn other(a) { a }")
                .unwrap_err()
                .contains("evaluate")
        );
        assert!(RhaiPolicy::compile("p", 1, "fn evaluate(h, i) { let }").is_err());
        assert!(
            RhaiPolicy::compile("p", 1, r#"import "fs" as f; fn evaluate(h, i) { 1 }"#).is_err()
        );
        assert!(
            RhaiPolicy::compile("p", 1, r#"fn evaluate(h, i) { import "fs" as f; 1 }"#).is_err()
        );
    }

    #[test]
    fn the_operations_budget_scales_with_the_evaluation() {
        // 6 to 8 operations per turn: past the default 2,000,000, within
        // the budget of a cascade over the largest tree.
        let policy = RhaiPolicy::compile(
            "busy",
            1,
            r#"fn evaluate(h, i) { let n = 0; while n < 400000 { n += 1; } #{ decision: "allow" } }"#,
        )
        .unwrap();
        let input = json!({});
        let fault = policy
            .evaluate(
                Hook::Authorize,
                &input,
                Budget::with_deadline(std::time::Duration::from_secs(30)),
            )
            .unwrap_err();
        assert!(fault.0.contains("operations"), "{fault}");
        let big = Budget {
            deadline: std::time::Duration::from_secs(30),
            ..Budget::cascade(crate::ops::subaccounts::SUBACCOUNTS_MAX as usize)
        };
        policy.evaluate(Hook::Authorize, &input, big).unwrap();
    }

    #[test]
    fn hostile_scripts_fail_closed_within_the_deadline() {
        let hostile = [
            ("endless loop", "fn evaluate(h, i) { loop { } }"),
            (
                "deep recursion",
                "fn f(n) { f(n + 1) } fn evaluate(h, i) { f(0) }",
            ),
            (
                "memory growth",
                r#"fn evaluate(h, i) { let s = "x"; loop { s += s; } }"#,
            ),
            (
                "huge array",
                "fn evaluate(h, i) { let a = []; loop { a.push(1); } }",
            ),
            ("error", r#"fn evaluate(h, i) { throw "boom"; }"#),
            ("eval", r#"fn evaluate(h, i) { eval("1") }"#),
            (
                "huge output",
                r#"fn evaluate(h, i) { let m = #{}; for n in 0..5000 { m[`k${n}`] = "xxxxxxxxxxxxxxxxxxxxxxxx"; } m }"#,
            ),
        ];
        for (what, source) in hostile {
            let started = Instant::now();
            let result = run(source);
            assert!(result.is_err(), "{what}: {result:?}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{what} took {:?}",
                started.elapsed()
            );
        }
    }
}
