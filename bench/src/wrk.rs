//! The same measures driven by `wrk` in its own process, where it is
//! installed (`apt-get install wrk`): the load generator then does not share
//! the server's tokio runtime, and its costs are far below reqwest's, so the
//! figures read as the server's.

use std::path::PathBuf;
use std::process::Command;

/// A measure's figures: rate, latency percentiles, failures.
pub struct Figures {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failed: u64,
}

impl Figures {
    pub fn row(&self, what: &str) -> String {
        format!(
            "| {what} | {:.0} | {:.2} | {:.2} | {} |",
            self.per_second, self.p50_ms, self.p99_ms, self.failed
        )
    }
}

/// `wrk` on the PATH, unless `CANOPY_LOAD_WRK=0`.
pub fn available() -> bool {
    std::env::var("CANOPY_LOAD_WRK").as_deref() != Ok("0")
        && Command::new("wrk")
            .arg("--version")
            .output()
            .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// What each connection sends.
pub enum Load<'a> {
    /// GET of `path`, with the key when one is given.
    Get { path: &'a str, key: Option<&'a str> },
    /// A message POSTed to each of `paths` in turn.
    Messages { paths: &'a [String], key: &'a str },
}

/// Runs `wrk` against `base` with `connections` for `seconds`.
pub fn run(base: &str, load: Load<'_>, connections: usize, seconds: u64) -> Figures {
    let script = script_file(&load);
    let first = match &load {
        Load::Get { path, .. } => path.to_string(),
        Load::Messages { paths, .. } => paths[0].clone(),
    };
    let threads = match load {
        Load::Get { .. } => connections.min(2),
        Load::Messages { .. } => connections,
    };
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("{base}{first}"))
        .output()
        .expect("wrk runs");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&text)
}

fn script_file(load: &Load<'_>) -> PathBuf {
    let lua = match load {
        Load::Get { key, .. } => {
            let auth = key
                .map(|k| format!("wrk.headers[\"Authorization\"] = \"Bearer {k}\"\n"))
                .unwrap_or_default();
            format!("wrk.method = \"GET\"\n{auth}")
        }
        // One wrk thread per connection, each on its own path (its own
        // budget) and its own recipient, as a client of the in-process load.
        Load::Messages { paths, key } => {
            let list = paths
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                r#"local paths = {{ {list} }}
local threads = 0
function setup(thread)
  thread:set("n", threads)
  threads = threads + 1
end
function init(args)
  local path = paths[(n % #paths) + 1]
  local body = string.format('{{"channel":"sms","to":"+1555%07d","body":"load test"}}', n)
  local headers = {{ ["Authorization"] = "Bearer {key}", ["Content-Type"] = "application/json" }}
  req = wrk.format("POST", path, headers, body)
end
function request()
  return req
end
"#
            )
        }
    };
    let path = std::env::temp_dir().join(format!("canopy-load-{}.lua", std::process::id()));
    std::fs::write(&path, lua).expect("script written");
    path
}

/// Reads `Requests/sec`, the 50% and 99% latencies and the non-2xx count.
fn parse(text: &str) -> Figures {
    let mut run = Figures {
        per_second: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        failed: 0,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => run.per_second = n.parse().unwrap_or(0.0),
            ["50%", t] => run.p50_ms = millis(t),
            ["99%", t] => run.p99_ms = millis(t),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.failed += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.failed += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    run
}

/// `812.00us`, `1.23ms`, `2.00s` as milliseconds.
fn millis(t: &str) -> f64 {
    let (number, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (t, 1.0)
    };
    number.parse::<f64>().unwrap_or(0.0) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_output() {
        let run = parse(
            "  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     99%    2.50s\n\
             Non-2xx or 3xx responses: 3\nRequests/sec:  64903.21\n",
        );
        assert_eq!(run.per_second, 64903.21);
        assert!((run.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(run.p99_ms, 2500.0);
        assert_eq!(run.failed, 3);
    }
}
