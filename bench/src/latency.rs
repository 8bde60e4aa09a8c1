//! Latency figures shared by the bench tools: sequential GETs and their
//! percentiles, printed as BENCHMARKS.md rows.

use std::time::Instant;

use canopy_e2e::TestApp;

pub struct Latencies(pub Vec<u64>);

impl Latencies {
    pub fn pct(&self, p: f64) -> f64 {
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }

    /// `| what | p50 ms | p99 ms | p50 / reference |`
    pub fn row(&self, what: &str, reference: f64) -> String {
        format!(
            "| {what} | {:.2} | {:.2} | {:.1}x |",
            self.pct(0.5),
            self.pct(0.99),
            self.pct(0.5) / reference
        )
    }
}

/// `requests` sequential GETs of `path`; their latencies, sorted.
pub async fn time_gets(app: &TestApp, key: &str, path: &str, requests: usize) -> Latencies {
    let mut out = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let reply = app.get(path, key).await;
        assert!(reply.status.is_success(), "{path}: {}", reply.body);
        out.push(t.elapsed().as_micros() as u64);
    }
    out.sort_unstable();
    Latencies(out)
}
