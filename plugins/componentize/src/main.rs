//! `canopy-componentize CORE.wasm OUT.wasm`: the library's [`componentize`]
//! as a command (the host binary has the same as `canopy policy
//! componentize`).

use anyhow::{Context, Result, bail};
use canopy_componentize::componentize;

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
    let module = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let component = componentize(&module).with_context(|| input.to_string())?;
    std::fs::write(output, &component).with_context(|| format!("writing {output}"))?;
    println!("{output}: {} bytes", component.len());
    Ok(())
}
