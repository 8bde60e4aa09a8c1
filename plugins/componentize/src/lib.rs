//! Turns a policy module built for `wasm32-unknown-unknown` (with the
//! `canopy-policy` SDK) into a component of the world of
//! `plugins/wit/policy.wit`. The `canopy-componentize` binary here and the
//! host's `canopy policy componentize` both call [`componentize`], so a
//! customer gets the same bytes from either.
//!
//! The module must import nothing (the host links no function, not even
//! WASI) and export `evaluate`, `cabi_realloc` and `memory`; it is refused
//! otherwise, and the component written is checked to import nothing.

use anyhow::{Context, Result, bail};
use wasmparser::{Parser, Payload};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// `plugins/wit/policy.wit`, built in.
const WIT: &str = include_str!("../../wit/policy.wit");

/// The component of the `canopy:policy` world made from the core module
/// `module`, after checking that the module can be one.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    check_module(module)?;
    let mut module = module.to_vec();
    let mut resolve = Resolve::default();
    let package = resolve.push_str("policy.wit", WIT)?;
    let world = resolve.select_world(&[package], Some("policy"))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)?
        .encode()
        .context("encoding the module as a component")?;
    check_component(&component)?;
    Ok(component)
}

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
