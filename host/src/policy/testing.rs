//! Policies tried offline (`canopy policy check`, `canopy policy test`):
//! a policy file loaded by the runtimes the server uses, each input
//! evaluated and its output checked exactly as the server does, and case
//! files (input, expected output) compared with what the policy returns.
//!
//! A case file is JSON (docs/POLICIES.md "Testing a policy"):
//!
//! ```json
//! {"hook": "authorize",
//!  "cases": [{"name": "a basic user may not invite", "sample": 3,
//!             "with": {"principal": {"role": "basic"}},
//!             "expect": {"decision": "deny"}}]}
//! ```
//!
//! `expect` lists the output fields that must be there with those values
//! (a subset, as `opa test` assertions check what they name); `"exact":
//! true` requires the whole output; `expect_error` expects the policy to
//! fail closed with a message containing that text.

use std::path::Path;

use serde_json::{Map, Value};

use super::{
    Budget, Fault, Hook, Policy, output, rhai_script::RhaiPolicy, samples, wasm::WasmPolicy,
};

/// Largest case file read (a cascade input over a large tree fits).
pub const CASE_FILE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most cases in one file.
pub const CASES_MAX: usize = 10_000;

/// Loads a policy file: a Wasm component (by its `\0asm` header) or a
/// UTF-8 Rhai script, compiled as an upload is.
pub fn load(path: &Path) -> Result<Box<dyn Policy>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let loaded = if bytes.starts_with(b"\0asm") {
        WasmPolicy::load(&name, 1, &bytes).map(|p| Box::new(p) as Box<dyn Policy>)
    } else {
        match String::from_utf8(bytes) {
            Ok(source) => {
                RhaiPolicy::compile(&name, 1, &source).map(|p| Box::new(p) as Box<dyn Policy>)
            }
            Err(_) => Err("neither a Wasm component nor a UTF-8 Rhai script".into()),
        }
    };
    loaded.map_err(|e| format!("{name} does not compile: {e}"))
}

/// One evaluation as the server runs it: the hook's budget (a cascade's
/// grows with its sub-accounts), then the output checked as a well-formed
/// document of the hook. An error is the policy failing closed.
pub fn evaluate(policy: &dyn Policy, hook: Hook, input: &Value) -> Result<Value, Fault> {
    let budget = match hook {
        Hook::Cascade => Budget::cascade(input["subaccounts"].as_array().map_or(0, Vec::len)),
        _ => Budget::DEFAULT,
    };
    let out = policy.evaluate(hook, input, budget)?;
    output::check(hook, &out)?;
    Ok(out)
}

/// A short label of a sample input: its position, and the action with the
/// principal's role and relation where the document has them.
pub fn sample_label(index: usize, count: usize, doc: &Value) -> String {
    let mut label = format!("sample {}/{count}", index + 1);
    let action = doc["action"].as_str().or(doc["event"].as_str());
    if let Some(action) = action {
        label.push_str(&format!(": {action}"));
    }
    let principal = &doc["principal"];
    if principal["relation"] == "operator" {
        label.push_str(" by the operator");
    } else if let Some(role) = principal["role"].as_str() {
        label.push_str(&format!(" by {role}"));
        if let Some(kind) = principal["account_kind"].as_str() {
            label.push_str(&format!(" of a {kind}"));
        }
        if let Some(relation) = principal["relation"].as_str() {
            label.push_str(&format!(" ({relation})"));
        }
    }
    label
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// These fields, with these values (nested objects likewise; arrays
    /// element by element, of the same length).
    Subset(Value),
    /// Exactly this output.
    Exact(Value),
    /// The policy fails closed with a message containing this text.
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub hook: Hook,
    pub input: Value,
    pub expect: Expect,
}

const CASE_FIELDS: [&str; 8] = [
    "name",
    "hook",
    "input",
    "sample",
    "with",
    "expect",
    "exact",
    "expect_error",
];
const HOOKS: &str = "authorize, subaccount.validate, visibility or cascade";

/// Parses a case file. The error names the case (its position and name)
/// and the field that is wrong, and says what it should be.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    if text.len() > CASE_FILE_BYTES_MAX {
        return Err(format!(
            "the file is {} bytes; the limit is {CASE_FILE_BYTES_MAX}",
            text.len()
        ));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let (file_hook, cases) = match &doc {
        Value::Array(cases) => (None, cases),
        Value::Object(top) => {
            if let Some(unknown) = top.keys().find(|k| *k != "hook" && *k != "cases") {
                return Err(format!(
                    "unknown top-level field `{unknown}`; a case file has `hook` (optional) and `cases`"
                ));
            }
            let hook = match top.get("hook") {
                None => None,
                Some(h) => Some(parse_hook(h).map_err(|e| format!("top-level `hook` {e}"))?),
            };
            match top.get("cases") {
                Some(Value::Array(cases)) => (hook, cases),
                _ => return Err("`cases` must be an array of case objects".into()),
            }
        }
        _ => {
            return Err(
                "a case file is an object `{\"hook\": ..., \"cases\": [...]}` or an array of cases"
                    .into(),
            );
        }
    };
    if cases.is_empty() {
        return Err("the file has no cases".into());
    }
    if cases.len() > CASES_MAX {
        return Err(format!(
            "{} cases; the limit is {CASES_MAX} per file",
            cases.len()
        ));
    }
    let mut parsed: Vec<Case> = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let case = parse_case(case, file_hook).map_err(|(name, field, why)| match name {
            Some(name) => format!("case {} ({name:?}): `{field}` {why}", i + 1),
            None => format!("case {}: `{field}` {why}", i + 1),
        })?;
        if let Some(j) = parsed.iter().position(|c| c.name == case.name) {
            return Err(format!(
                "case {} ({:?}): `name` is already the name of case {}; give each case its own",
                i + 1,
                case.name,
                j + 1
            ));
        }
        parsed.push(case);
    }
    Ok(parsed)
}

/// A malformed case: its name if it has one, the field, what is wrong.
type CaseError = (Option<String>, &'static str, String);

fn parse_case(case: &Value, file_hook: Option<Hook>) -> Result<Case, CaseError> {
    let Some(obj) = case.as_object() else {
        return Err((None, "case", "must be an object".into()));
    };
    let name = match obj.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => return Err((None, "name", "must be a non-empty string".into())),
    };
    let bad = |field: &'static str, why: String| (Some(name.clone()), field, why);
    if let Some(unknown) = obj.keys().find(|k| !CASE_FIELDS.contains(&k.as_str())) {
        return Err((
            Some(name.clone()),
            "case",
            format!(
                "has an unknown field `{unknown}`; a case takes {}",
                CASE_FIELDS.join(", ")
            ),
        ));
    }
    let hook = match (obj.get("hook"), file_hook) {
        (Some(h), _) => parse_hook(h).map_err(|e| bad("hook", e))?,
        (None, Some(h)) => h,
        (None, None) => {
            return Err(bad(
                "hook",
                format!("is missing (give it in the case or at the top of the file): {HOOKS}"),
            ));
        }
    };
    let mut input = match (obj.get("input"), obj.get("sample")) {
        (Some(Value::Object(doc)), None) => Value::Object(doc.clone()),
        (Some(_), None) => {
            return Err(bad("input", "must be an input document (an object)".into()));
        }
        (None, Some(n)) => {
            let all = samples::of(hook);
            match n.as_u64() {
                Some(n) if n >= 1 && (n as usize) <= all.len() => all[n as usize - 1].clone(),
                _ => {
                    return Err(bad(
                        "sample",
                        format!(
                            "must be a number from 1 to {}: the built-in samples of `{}` (policies/samples)",
                            all.len(),
                            hook.name()
                        ),
                    ));
                }
            }
        }
        (Some(_), Some(_)) => {
            return Err(bad(
                "sample",
                "and `input` are both given; give one (`with` changes a sample)".into(),
            ));
        }
        (None, None) => {
            return Err(bad(
                "input",
                "is missing: give an input document, or `sample` (a built-in sample's number)"
                    .into(),
            ));
        }
    };
    match obj.get("with") {
        None => {}
        Some(Value::Object(changes)) => merge(&mut input, changes),
        Some(_) => {
            return Err(bad(
                "with",
                "must be an object of the fields to change in the input".into(),
            ));
        }
    }
    let exact = match obj.get("exact") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("exact", "must be true or false".into())),
    };
    let expect = match (obj.get("expect"), obj.get("expect_error")) {
        (Some(Value::Object(e)), None) if exact => Expect::Exact(Value::Object(e.clone())),
        (Some(Value::Object(e)), None) => Expect::Subset(Value::Object(e.clone())),
        (Some(_), None) => {
            return Err(bad(
                "expect",
                "must be an object: the output fields to check".into(),
            ));
        }
        (None, Some(Value::String(s))) if !exact => Expect::Error(s.clone()),
        (None, Some(Value::String(_))) => {
            return Err(bad(
                "exact",
                "applies to `expect`, not to `expect_error`".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                "expect_error",
                "must be a string: text the failure message contains (\"\" for any failure)".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(bad(
                "expect_error",
                "and `expect` are both given; a case expects an output or a failure".into(),
            ));
        }
        (None, None) => {
            return Err(bad(
                "expect",
                "is missing: give the expected output fields, or `expect_error`".into(),
            ));
        }
    };
    Ok(Case {
        name,
        hook,
        input,
        expect,
    })
}

fn parse_hook(h: &Value) -> Result<Hook, String> {
    h.as_str()
        .and_then(Hook::parse)
        .ok_or_else(|| format!("must be one of {HOOKS}"))
}

/// Writes `changes` over `doc`: objects field by field, anything else
/// (`null` included) replaces the value.
fn merge(doc: &mut Value, changes: &Map<String, Value>) {
    let Value::Object(fields) = doc else {
        *doc = Value::Object(changes.clone());
        return;
    };
    for (key, change) in changes {
        match (fields.get_mut(key), change) {
            (Some(existing @ Value::Object(_)), Value::Object(inner)) => merge(existing, inner),
            _ => {
                fields.insert(key.clone(), change.clone());
            }
        }
    }
}

/// One place where the output differs from what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where, as `.field[index]`; `.` is the whole document.
    pub at: String,
    /// `None`: the field should be absent (an exact match).
    pub expected: Option<Value>,
    /// `None`: the field is missing.
    pub actual: Option<Value>,
}

/// How a case went.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// The output differs from `expect`.
    Differs {
        output: Value,
        differences: Vec<Difference>,
    },
    /// The policy failed closed where an output was expected.
    FailedClosed(String),
    /// An output where a failure was expected.
    DidNotFail(Value),
    /// It failed closed, with another message.
    OtherFailure {
        wanted: String,
        got: String,
    },
}

/// Runs one case.
pub fn run_case(policy: &dyn Policy, case: &Case) -> Verdict {
    let result = evaluate(policy, case.hook, &case.input);
    match (&case.expect, result) {
        (Expect::Error(wanted), Err(Fault(got))) => {
            if got.contains(wanted.as_str()) {
                Verdict::Pass
            } else {
                Verdict::OtherFailure {
                    wanted: wanted.clone(),
                    got,
                }
            }
        }
        (Expect::Error(_), Ok(output)) => Verdict::DidNotFail(output),
        (_, Err(Fault(got))) => Verdict::FailedClosed(got),
        (Expect::Subset(expected), Ok(output)) | (Expect::Exact(expected), Ok(output)) => {
            let exact = matches!(case.expect, Expect::Exact(_));
            let mut differences = Vec::new();
            compare("", expected, &output, exact, &mut differences);
            if differences.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Differs {
                    output,
                    differences,
                }
            }
        }
    }
}

fn compare(at: &str, expected: &Value, actual: &Value, exact: bool, out: &mut Vec<Difference>) {
    let differ = |out: &mut Vec<Difference>| {
        out.push(Difference {
            at: if at.is_empty() { ".".into() } else { at.into() },
            expected: Some(expected.clone()),
            actual: Some(actual.clone()),
        })
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, want) in e {
                let here = format!("{at}.{key}");
                match a.get(key) {
                    Some(got) => compare(&here, want, got, exact, out),
                    None => out.push(Difference {
                        at: here,
                        expected: Some(want.clone()),
                        actual: None,
                    }),
                }
            }
            if exact {
                for (key, got) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                    out.push(Difference {
                        at: format!("{at}.{key}"),
                        expected: None,
                        actual: Some(got.clone()),
                    });
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (want, got)) in e.iter().zip(a).enumerate() {
                compare(&format!("{at}[{i}]"), want, got, exact, out);
            }
        }
        _ if expected == actual => {}
        _ => differ(out),
    }
}

/// A verdict in words, one line per difference, for the command line.
pub fn explain(verdict: &Verdict) -> Vec<String> {
    fn shown(v: &Option<Value>) -> String {
        match v {
            Some(v) => v.to_string(),
            None => "(absent)".into(),
        }
    }
    match verdict {
        Verdict::Pass => Vec::new(),
        Verdict::Differs {
            output,
            differences,
        } => {
            let width = differences.iter().map(|d| d.at.len()).max().unwrap_or(1);
            let mut lines = Vec::new();
            for d in differences {
                lines.push(format!(
                    "{:width$}  - expected {}",
                    d.at,
                    shown(&d.expected)
                ));
                lines.push(format!("{:width$}  + actual   {}", "", shown(&d.actual)));
            }
            lines.push(format!("output: {output}"));
            lines
        }
        Verdict::FailedClosed(why) => vec![format!("fails closed: {why}")],
        Verdict::DidNotFail(output) => vec![
            "expected the policy to fail closed, but it returned an output".into(),
            format!("output: {output}"),
        ],
        Verdict::OtherFailure { wanted, got } => vec![
            format!("- expected a failure containing {wanted:?}"),
            format!("+ fails closed: {got}"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed(Result<Value, Fault>);

    impl Policy for Fixed {
        fn id(&self) -> &str {
            "fixed"
        }
        fn version(&self) -> i64 {
            1
        }
        fn evaluate(&self, _: Hook, _: &Value, _: Budget) -> Result<Value, Fault> {
            self.0.clone()
        }
    }

    fn case(expect: Expect) -> Case {
        Case {
            name: "c".into(),
            hook: Hook::SubaccountValidate,
            input: json!({}),
            expect,
        }
    }

    #[test]
    fn a_subset_matches_the_fields_it_names_and_exact_all_of_them() {
        let deny = Fixed(Ok(
            json!({"decision": "deny", "field": "email", "reason": "free-mail"}),
        ));
        let subset = case(Expect::Subset(json!({"decision": "deny"})));
        assert_eq!(run_case(&deny, &subset), Verdict::Pass);
        let exact = case(Expect::Exact(json!({"decision": "deny", "field": "email"})));
        let Verdict::Differs { differences, .. } = run_case(&deny, &exact) else {
            panic!("an extra field fails an exact match");
        };
        assert_eq!(
            differences,
            vec![Difference {
                at: ".reason".into(),
                expected: None,
                actual: Some(json!("free-mail")),
            }]
        );
        let wrong = case(Expect::Subset(
            json!({"decision": "allow", "field": "name"}),
        ));
        let verdict = run_case(&deny, &wrong);
        let Verdict::Differs { differences, .. } = &verdict else {
            panic!("{verdict:?}");
        };
        assert_eq!(differences.len(), 2);
        let lines = explain(&verdict);
        assert!(lines[0].starts_with(".decision") && lines[0].ends_with("- expected \"allow\""));
        assert!(lines[1].ends_with("+ actual   \"deny\""), "{lines:?}");
    }

    #[test]
    fn arrays_compare_element_by_element() {
        let view = Fixed(Ok(
            json!({"decision": "allow", "rows": "all", "hide": ["pricing", "balance"]}),
        ));
        let mut c = case(Expect::Subset(json!({"hide": ["pricing", "usage"]})));
        c.hook = Hook::Visibility;
        let Verdict::Differs { differences, .. } = run_case(&view, &c) else {
            panic!()
        };
        assert_eq!(differences[0].at, ".hide[1]");
        c.expect = Expect::Subset(json!({"hide": ["pricing"]}));
        let Verdict::Differs { differences, .. } = run_case(&view, &c) else {
            panic!()
        };
        assert_eq!(
            differences[0].at, ".hide",
            "another length: the whole array"
        );
    }

    #[test]
    fn failures_are_checked_as_the_server_checks_outputs() {
        let malformed = Fixed(Ok(json!({"decision": "maybe"})));
        let c = case(Expect::Subset(json!({"decision": "maybe"})));
        assert!(matches!(run_case(&malformed, &c), Verdict::FailedClosed(_)));
        let c = case(Expect::Error(String::new()));
        assert_eq!(run_case(&malformed, &c), Verdict::Pass);
        let c = case(Expect::Error("ran out of fuel".into()));
        assert!(matches!(
            run_case(&malformed, &c),
            Verdict::OtherFailure { .. }
        ));
        let allow = Fixed(Ok(json!({"decision": "allow"})));
        assert!(matches!(run_case(&allow, &c), Verdict::DidNotFail(_)));
    }

    #[test]
    fn samples_are_changed_with_with() {
        let cases = parse_cases(
            r#"{"hook": "authorize", "cases": [
                {"name": "a", "sample": 1, "with": {"principal": {"role": "basic"}, "fields": null},
                 "expect": {"decision": "deny"}}]}"#,
        )
        .unwrap();
        let input = &cases[0].input;
        assert_eq!(input["principal"]["role"], "basic");
        assert_eq!(input["principal"]["relation"], "self", "other fields kept");
        assert_eq!(input["fields"], Value::Null, "null replaces");
    }

    #[test]
    fn a_malformed_file_names_the_case_and_the_field() {
        for (text, wanted) in [
            ("[", "not valid JSON"),
            (r#"{"cases": []}"#, "no cases"),
            (
                r#"{"hook": "authorise", "cases": []}"#,
                "top-level `hook` must be one of",
            ),
            (
                r#"[{"hook": "authorize", "input": {}, "expect": {}}]"#,
                "case 1: `name`",
            ),
            (
                r#"[{"name": "x", "input": {}, "expect": {}}]"#,
                "case 1 (\"x\"): `hook` is missing",
            ),
            (
                r#"[{"name": "x", "hook": "authorize", "input": [], "expect": {}}]"#,
                "case 1 (\"x\"): `input` must be an input document",
            ),
            (
                r#"[{"name": "x", "hook": "authorize", "sample": 99, "expect": {}}]"#,
                "`sample` must be a number from 1 to",
            ),
            (
                r#"[{"name": "x", "hook": "authorize", "input": {}, "expected": {}}]"#,
                "unknown field `expected`",
            ),
            (
                r#"[{"name": "x", "hook": "authorize", "input": {}}]"#,
                "`expect` is missing",
            ),
            (
                r#"[{"name": "x", "hook": "authorize", "input": {}, "expect": "allow"}]"#,
                "`expect` must be an object",
            ),
            (
                r#"[{"name": "x", "hook": "authorize", "input": {}, "expect": {}},
                    {"name": "x", "hook": "authorize", "input": {}, "expect": {}}]"#,
                "case 2 (\"x\"): `name` is already the name of case 1",
            ),
        ] {
            let err = parse_cases(text).unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn sample_labels_say_what_the_sample_is() {
        let doc = json!({"action": "member.invite",
            "principal": {"role": "basic", "account_kind": "subaccount", "relation": "self"}});
        assert_eq!(
            sample_label(2, 8, &doc),
            "sample 3/8: member.invite by basic of a subaccount (self)"
        );
        assert_eq!(sample_label(0, 1, &json!({})), "sample 1/1");
    }
}
