//! How the command line reports a mistake: one line that names the flag and
//! the values it takes, and points to the help of the command that was used.

use std::io::IsTerminal;

/// The values `--hook` takes.
pub const HOOKS: [&str; 4] = ["authorize", "subaccount.validate", "visibility", "cascade"];

/// Log lines are coloured only on a terminal, and never under `NO_COLOR`.
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The subcommands of `root` named in `args`, from the binary's name on
/// (`canopy policy check`).
pub fn command_path(root: &clap::Command, args: &[String]) -> String {
    let mut path = vec![root.get_name().to_string()];
    let mut current = root;
    for arg in args {
        if let Some(sub) = current.find_subcommand(arg) {
            path.push(arg.clone());
            current = sub;
        }
    }
    path.join(" ")
}

/// clap's rendered error as one line: its first line, the indented details
/// under it (the missing flags, `[possible values: ...]`), and where to
/// read more. Tips and the usage block are left out.
pub fn one_line(rendered: &str, command: &str) -> String {
    let mut lines = rendered.lines();
    let mut out = lines
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .trim()
        .to_string();
    for line in lines {
        let trimmed = line.trim();
        if trimmed.starts_with("Usage:") || trimmed.starts_with("For more information") {
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with("tip:") || !line.starts_with(' ') {
            continue;
        }
        out.push(' ');
        out.push_str(trimmed);
    }
    format!("{out} (see `{command} --help`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_flag_is_named_with_the_commands_help() {
        let rendered = "error: the following required arguments were not provided:\n  --hook <HOOK>\n\nUsage: canopy policy check --hook <HOOK> <FILE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered, "canopy policy check"),
            "the following required arguments were not provided: --hook <HOOK> (see `canopy policy check --help`)"
        );
    }

    #[test]
    fn allowed_values_are_listed_and_tips_left_out() {
        let rendered = "error: invalid value 'x' for '--hook <HOOK>'\n  [possible values: authorize, cascade]\n\n  tip: a similar value exists: 'cascade'\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered, "canopy policy check"),
            "invalid value 'x' for '--hook <HOOK>' [possible values: authorize, cascade] (see `canopy policy check --help`)"
        );
    }
}
