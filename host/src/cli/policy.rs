//! `canopy policy check | test | componentize`: policies tried and built
//! offline, with the server's own runtimes (`policy::testing`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde_json::Value;

use crate::policy::testing::{self, Verdict};
use crate::policy::{Hook, samples};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Compile a policy and print its decision on each sample input.
    Check {
        /// A Rhai script, or a Wasm component (`.wasm`).
        file: PathBuf,
        /// authorize, subaccount.validate, visibility or cascade.
        #[arg(long, value_parser = super::usage::HOOKS)]
        hook: String,
        /// One input document (a JSON object); default: the hook's built-in
        /// samples.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Run a policy on case files (input and expected output) and report
    /// each case that fails with a diff. Exit status: 0 every case passed,
    /// 1 a case failed, 2 a case file is malformed or the policy does not
    /// compile. Format: docs/POLICIES.md "Testing a policy".
    Test {
        /// A Rhai script, or a Wasm component (`.wasm`).
        file: PathBuf,
        /// Case files (JSON), e.g. policies/tests/authorize.json.
        #[arg(required = true)]
        cases: Vec<PathBuf>,
    },
    /// Turn a policy module built for wasm32-unknown-unknown into a
    /// component of the canopy:policy world, ready to upload.
    Componentize {
        /// The core module (`target/wasm32-unknown-unknown/release/NAME.wasm`).
        input: PathBuf,
        /// Where to write the component.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Exit status of `policy test` when the tests could not run.
const CANNOT_RUN: u8 = 2;

pub fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Check { file, hook, input } => check(&file, &hook, input.as_deref()),
        PolicyCommand::Test { file, cases } => test(&file, &cases),
        PolicyCommand::Componentize { input, output } => componentize(&input, &output),
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("canopy: {message}");
    ExitCode::from(code)
}

fn hook(name: &str) -> Result<Hook, ExitCode> {
    Hook::parse(name).ok_or_else(|| {
        fail(
            2,
            format!(
                "unknown hook `{name}`; use authorize, subaccount.validate, visibility or cascade"
            ),
        )
    })
}

/// Loads the policy and says how long compiling took.
fn load(file: &Path, code: u8) -> Result<Box<dyn crate::policy::Policy>, ExitCode> {
    let started = Instant::now();
    let policy = testing::load(file).map_err(|e| fail(code, e))?;
    println!("compiled in {} us", started.elapsed().as_micros());
    Ok(policy)
}

fn check(file: &Path, hook_name: &str, input: Option<&Path>) -> ExitCode {
    let hook = match hook(hook_name) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let inputs: Vec<(String, Value)> = match input {
        Some(path) => match read_one_document(path) {
            Ok(doc) => vec![(path.display().to_string(), doc)],
            Err(e) => return fail(1, format!("cannot read input {}: {e}", path.display())),
        },
        None => {
            let all = samples::of(hook);
            let count = all.len();
            all.into_iter()
                .enumerate()
                .map(|(i, doc)| (testing::sample_label(i, count, &doc), doc))
                .collect()
        }
    };
    let policy = match load(file, 1) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut failed = false;
    for (label, doc) in inputs {
        println!("{label}");
        let started = Instant::now();
        let result = testing::evaluate(policy.as_ref(), hook, &doc);
        let took = started.elapsed().as_micros();
        match result {
            Ok(out) => println!("{out}  ({took} us)"),
            Err(fault) => {
                failed = true;
                println!("fails closed: {fault}  ({took} us)");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The one input document of `--input`: an object, not the array a
/// samples file holds.
fn read_one_document(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    match doc {
        Value::Object(_) => Ok(doc),
        Value::Array(items) => Err(format!(
            "expected one object (one input document), found an array of {}; pass one of its documents, or leave out --input to run the built-in samples",
            items.len()
        )),
        _ => Err("expected one object (one input document)".into()),
    }
}

fn test(file: &Path, case_files: &[PathBuf]) -> ExitCode {
    // Every case file is read before anything runs: a malformed one stops
    // the run with its own status.
    let mut suites = Vec::new();
    for path in case_files {
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| testing::parse_cases(&text));
        match parsed {
            Ok(cases) => suites.push((path, cases)),
            Err(e) => {
                return fail(
                    CANNOT_RUN,
                    format!("{}: malformed case file: {e}", path.display()),
                );
            }
        }
    }
    let policy = match load(file, CANNOT_RUN) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (mut passed, mut failed) = (0, 0);
    for (path, cases) in suites {
        for case in cases {
            let verdict = testing::run_case(policy.as_ref(), &case);
            if verdict == Verdict::Pass {
                passed += 1;
                println!("PASS  {}", case.name);
            } else {
                failed += 1;
                println!(
                    "FAIL  {}  ({}, {})",
                    case.name,
                    case.hook.name(),
                    path.display()
                );
                for line in testing::explain(&verdict) {
                    println!("      {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn componentize(input: &Path, output: &Path) -> ExitCode {
    let module = match std::fs::read(input) {
        Ok(m) => m,
        Err(e) => return fail(1, format!("cannot read {}: {e}", input.display())),
    };
    let component = match canopy_componentize::componentize(&module) {
        Ok(c) => c,
        Err(e) => {
            let why = crate::policy::wasm::one_line(&format!("{e:#}"));
            return fail(1, format!("{}: {why}", input.display()));
        }
    };
    if let Err(e) = std::fs::write(output, &component) {
        return fail(1, format!("cannot write {}: {e}", output.display()));
    }
    println!("{}: {} bytes", output.display(), component.len());
    ExitCode::SUCCESS
}
