//! The host's metrics, served at `/metrics` in Prometheus' text format.
//!
//! Hand-rolled rather than a crate: the format is a few lines of text, every
//! series here is a counter or a fixed-bucket histogram behind one mutex, and
//! each host (several run in one test process) owns its own registry instead
//! of a process-wide global one. Label sets are bounded: routes are the
//! router's templates, hooks and outcomes closed sets, and policies (which
//! customers create) are capped at [`POLICY_SERIES_MAX`] ids.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::policy::decision::Record;

/// Upper bounds (seconds) of the request latency buckets.
const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds (seconds) of the policy evaluation buckets: the defaults
/// take microseconds, the deadline is 100 ms (a large cascade 2 s).
const POLICY_BUCKETS: [f64; 12] = [
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];
/// Distinct policy ids with series of their own; the rest count under
/// `policy="other"`, so customers' uploads cannot grow a scrape unbounded.
pub const POLICY_SERIES_MAX: usize = 200;
/// The database gauges are read at most this often; scrapes in between are
/// answered from the last reading (a scrape never costs more than that).
pub const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// Rows a gauge counts at most: each is one bounded index scan.
pub const GAUGE_COUNT_MAX: i64 = 100_000;

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Per bucket (not cumulative; summed when rendered).
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len()];
        }
        if let Some(i) = bounds.iter().position(|b| value <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += value;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in bounds.iter().zip(&self.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {:.6}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Series {
    /// (method, route template, status)
    requests: BTreeMap<(String, String, u16), Histogram>,
    /// (hook, outcome)
    decisions: BTreeMap<(&'static str, &'static str), u64>,
    /// hook -> evaluation time of every policy in one decision
    hook_seconds: BTreeMap<&'static str, Histogram>,
    /// hook -> decisions where a shadow policy would have changed the result
    shadow_disagreements: BTreeMap<&'static str, u64>,
    /// (hook, policy, mode, outcome)
    policy_outcomes: BTreeMap<(&'static str, String, &'static str, &'static str), u64>,
    /// (hook, policy)
    policy_seconds: BTreeMap<(&'static str, String), Histogram>,
}

/// One reading of the database gauges.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub lines: Vec<(&'static str, &'static str, i64)>,
}

/// One host's metrics.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<Series>,
    gauges: tokio::sync::Mutex<Option<(Instant, Gauges)>>,
}

/// Quotes a label value (Prometheus escapes backslash, quote and newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn series(&self) -> std::sync::MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One answered request, by its route's template (not its path, so ids
    /// never become labels).
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.series()
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default()
            .observe(&HTTP_BUCKETS, took.as_secs_f64());
    }

    /// One hook decision and every policy's part in it.
    pub fn decision(&self, record: &Record) {
        let mut s = self.series();
        *s.decisions
            .entry((record.hook, record.outcome))
            .or_default() += 1;
        if record.shadow_disagrees {
            *s.shadow_disagreements.entry(record.hook).or_default() += 1;
        }
        let total_us: u64 = record.policies.iter().map(|p| p.duration_us).sum();
        s.hook_seconds
            .entry(record.hook)
            .or_default()
            .observe(&POLICY_BUCKETS, total_us as f64 / 1e6);
        for entry in &record.policies {
            let known = s
                .policy_seconds
                .contains_key(&(record.hook, entry.id.clone()))
                || s.policy_seconds.len() < POLICY_SERIES_MAX;
            let policy = if known {
                entry.id.clone()
            } else {
                "other".to_string()
            };
            *s.policy_outcomes
                .entry((record.hook, policy.clone(), entry.mode, entry.outcome))
                .or_default() += 1;
            s.policy_seconds
                .entry((record.hook, policy))
                .or_default()
                .observe(&POLICY_BUCKETS, entry.duration_us as f64 / 1e6);
        }
    }

    /// The counters and histograms in Prometheus' text format.
    pub fn render(&self) -> String {
        let s = self.series();
        let mut out = String::new();
        out.push_str("# HELP canopy_http_requests_total HTTP requests answered, by route template and status.\n# TYPE canopy_http_requests_total counter\n");
        for ((method, route, status), h) in &s.requests {
            let _ = writeln!(
                out,
                "canopy_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                label(route),
                h.count
            );
        }
        out.push_str("# HELP canopy_http_request_duration_seconds Time to answer a request, by route template and status.\n# TYPE canopy_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in &s.requests {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                label(route)
            );
            h.render(
                &mut out,
                "canopy_http_request_duration_seconds",
                &labels,
                &HTTP_BUCKETS,
            );
        }
        out.push_str("# HELP canopy_policy_decisions_total Hook decisions, by outcome (allow, deny, error).\n# TYPE canopy_policy_decisions_total counter\n");
        for ((hook, outcome), n) in &s.decisions {
            let _ = writeln!(
                out,
                "canopy_policy_decisions_total{{hook=\"{hook}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP canopy_policy_shadow_disagreements_total Decisions a shadow policy would have changed.\n# TYPE canopy_policy_shadow_disagreements_total counter\n");
        for (hook, n) in &s.shadow_disagreements {
            let _ = writeln!(
                out,
                "canopy_policy_shadow_disagreements_total{{hook=\"{hook}\"}} {n}"
            );
        }
        out.push_str("# HELP canopy_policy_decision_seconds Evaluation time of every policy in one hook decision.\n# TYPE canopy_policy_decision_seconds histogram\n");
        for (hook, h) in &s.hook_seconds {
            h.render(
                &mut out,
                "canopy_policy_decision_seconds",
                &format!("hook=\"{hook}\""),
                &POLICY_BUCKETS,
            );
        }
        out.push_str("# HELP canopy_policy_evaluations_total Evaluations of each policy, by mode and outcome.\n# TYPE canopy_policy_evaluations_total counter\n");
        for ((hook, policy, mode, outcome), n) in &s.policy_outcomes {
            let _ = writeln!(
                out,
                "canopy_policy_evaluations_total{{hook=\"{hook}\",policy=\"{}\",mode=\"{mode}\",outcome=\"{outcome}\"}} {n}",
                label(policy)
            );
        }
        out.push_str("# HELP canopy_policy_evaluation_seconds Evaluation time of each policy.\n# TYPE canopy_policy_evaluation_seconds histogram\n");
        for ((hook, policy), h) in &s.policy_seconds {
            h.render(
                &mut out,
                "canopy_policy_evaluation_seconds",
                &format!("hook=\"{hook}\",policy=\"{}\"", label(policy)),
                &POLICY_BUCKETS,
            );
        }
        out
    }

    /// The database gauges, read at most every [`GAUGES_EVERY`] with
    /// bounded counts; a failed reading leaves them out of this scrape.
    pub async fn gauges(&self, store: &crate::store::Store) -> String {
        let mut cached = self.gauges.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < GAUGES_EVERY);
        if !fresh {
            match crate::store::gauges::read(store, GAUGE_COUNT_MAX).await {
                Ok(lines) => *cached = Some((Instant::now(), Gauges { lines })),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the metrics gauges failed");
                    *cached = None;
                }
            }
        }
        let mut out = String::new();
        if let Some((_, gauges)) = cached.as_ref() {
            for (name, help, value) in &gauges.lines {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help} (counted up to {GAUGE_COUNT_MAX}).\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
        out
    }
}
