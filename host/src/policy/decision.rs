//! The decision log: one record per hook evaluation, with every policy that
//! took part (id, version, mode, outcome, reason, duration).
//!
//! Records leave the request path through a bounded channel and are written
//! in batches by the host (`store::decisions`), outside the operation's
//! transaction: logging never slows a decision down nor fails an operation.
//! When the channel is full (the database far behind), records are dropped
//! and counted, and a warning says how many.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Hook;
use crate::clock::Clock;
use crate::{Error, Result};

/// Records waiting to be written, at most.
pub const QUEUE_MAX: usize = 50_000;

/// One policy's part in a decision.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub version: i64,
    pub mode: &'static str,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_us: u64,
    /// Shadow entries only: whether this outcome differs from the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagrees: Option<bool>,
}

/// One hook evaluation.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub tree_id: Option<String>,
    pub account_id: Option<String>,
    pub hook: &'static str,
    pub action: String,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub shadow_disagrees: bool,
    pub policies: Vec<Entry>,
    pub created_at_us: i64,
}

impl Record {
    pub fn new<T>(
        hook: Hook,
        tree_id: Option<String>,
        account_id: Option<String>,
        action: String,
        result: &Result<T>,
        shadow_disagrees: bool,
        policies: Vec<Entry>,
    ) -> Record {
        let (outcome, reason) = outcome_of(result);
        Record {
            id: crate::secrets::new_id("dec"),
            tree_id,
            account_id,
            hook: hook.name(),
            action,
            outcome,
            reason,
            shadow_disagrees,
            policies,
            created_at_us: 0,
        }
    }
}

/// `allow`, `deny` or `error`, and the reason of a deny or an error.
pub fn outcome_of<T>(result: &Result<T>) -> (&'static str, Option<String>) {
    match result {
        Ok(_) => ("allow", None),
        Err(Error::PolicyDenied(p)) => ("deny", Some(p.reason.clone())),
        Err(Error::Validation {
            policy: Some(p), ..
        }) => ("deny", Some(p.reason.clone())),
        Err(Error::PolicyFailed(p)) => ("error", Some(p.reason.clone())),
        Err(e) => ("error", Some(e.to_string())),
    }
}

/// The action an input document is about (`event` for cascades).
pub fn action_of(input: &Value) -> String {
    input
        .get("action")
        .or_else(|| input.get("event"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The id of the account an input document targets.
pub fn target_of(input: &Value) -> Option<String> {
    input
        .pointer("/target/id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The sending side of the decision log.
pub struct DecisionLog {
    queue: mpsc::Sender<Record>,
    clock: Arc<Clock>,
    dropped: AtomicU64,
    /// Counts every decision for `/metrics`.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl DecisionLog {
    /// A log and the receiving end its writer drains.
    pub fn new(clock: Arc<Clock>) -> (DecisionLog, mpsc::Receiver<Record>) {
        let (queue, rx) = mpsc::channel(QUEUE_MAX);
        let log = DecisionLog {
            queue,
            clock,
            dropped: AtomicU64::new(0),
            metrics: None,
        };
        (log, rx)
    }

    /// Counts each decision in `metrics` as it is recorded.
    pub fn counted_in(mut self, metrics: Arc<crate::metrics::Metrics>) -> DecisionLog {
        self.metrics = Some(metrics);
        self
    }

    pub fn record(&self, mut record: Record) {
        record.created_at_us = self.clock.now_us();
        if let Some(metrics) = &self.metrics {
            metrics.decision(&record);
        }
        if self.queue.try_send(record).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "decision log queue full; decisions dropped");
            }
        }
    }

    /// Decisions dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
