//! `canopy-componentize CORE.wasm OUT.wasm`: turns a policy module built for
//! `wasm32-unknown-unknown` (with the `canopy-policy` SDK) into a component of
//! the world of `plugins/wit/policy.wit`.
//!
//! The module must import nothing (the host links no function, not even
//! WASI) and export `evaluate`, `cabi_realloc` and `memory`; the tool refuses
//! it otherwise, and checks that the component it writes imports nothing.

use anyhow::{Context, Result, bail};
use wasmparser::{Parser, Payload};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// `plugins/wit/policy.wit`, built in.
const WIT: &str = include_str!("../../wit/policy.wit");

fn check_module(module: &[u8]) -> Result<()> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.context("the module is not WebAssembly")? {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Module => {
                bail!("the input is already a component: give the core module")
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import?;
                    imports.push(format!("{}::{}", import.module, import.name));
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    exports.push(export?.name.to_string());
                }
            }
            _ => {}
        }
    }
    if !imports.is_empty() {
        bail!(
            "the module imports {}; a policy may import nothing (the host links no function, not even WASI)",
            imports.join(", ")
        );
    }
    for needed in ["evaluate", "cabi_realloc", "memory"] {
        if !exports.iter().any(|e| e == needed) {
            bail!(
                "the module does not export `{needed}`: export the policy with `canopy_policy::export!`"
            );
        }
    }
    Ok(())
}

fn check_component(component: &[u8]) -> Result<()> {
    let mut depth = 0;
    for payload in Parser::new(0).parse_all(component) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    bail!("the component imports `{}`", import?.name.name);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("canopy-componentize: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: canopy-componentize CORE.wasm OUT.wasm");
    };
    let mut module = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    check_module(&module).with_context(|| format!("{input}"))?;

    let mut resolve = Resolve::default();
    let package = resolve.push_str("policy.wit", WIT)?;
    let world = resolve.select_world(&[package], Some("policy"))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;

    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)?
        .encode()
        .with_context(|| format!("encoding {input} as a component"))?;
    check_component(&component)?;
    std::fs::write(output, &component).with_context(|| format!("writing {output}"))?;
    println!("{output}: {} bytes", component.len());
    Ok(())
}
