//! Fair shares of policy evaluation between trees.
//!
//! Policies from outside the binary run on the blocking pool behind a global
//! limit of evaluations at once. Without a share per tree, one tree whose
//! policies run to their deadline on many parallel requests would take every
//! slot, and every other tenant would wait behind it. So each tree (and the
//! operator's own actions, as one more bucket) may hold at most
//! [`PER_TREE_MAX`] of the slots at once; its requests beyond that wait at
//! most [`WAIT_MAX`] for one of its own, then are refused with 429
//! `rate_limited` (fail closed: the operation does not happen).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;

/// Evaluations one tree may run at once (the global limit is larger).
pub const PER_TREE_MAX: usize = 4;
/// How long a request waits for its tree's share before it is refused.
pub const WAIT_MAX: Duration = Duration::from_secs(2);
/// Idle trees' entries are dropped once this many are kept.
const TREES_KEPT: usize = 1024;

#[derive(Debug)]
pub struct Fairness {
    per_tree: usize,
    wait: Duration,
    trees: Mutex<HashMap<String, Arc<Semaphore>>>,
    refused: AtomicU64,
}

impl Default for Fairness {
    fn default() -> Fairness {
        Fairness::new(PER_TREE_MAX, WAIT_MAX)
    }
}

impl Fairness {
    pub fn new(per_tree: usize, wait: Duration) -> Fairness {
        Fairness {
            per_tree: per_tree.max(1),
            wait,
            trees: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    fn semaphore(&self, bucket: &str) -> Arc<Semaphore> {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        if trees.len() >= TREES_KEPT && !trees.contains_key(bucket) {
            // Only this map holds an idle tree's semaphore.
            trees.retain(|_, s| Arc::strong_count(s) > 1);
        }
        trees
            .entry(bucket.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tree)))
            .clone()
    }

    /// Takes one of `tree`'s evaluation slots (`None`: operator actions),
    /// waiting at most the bounded time.
    pub async fn enter(&self, tree: Option<&str>) -> Result<OwnedSemaphorePermit, Error> {
        let bucket = tree.unwrap_or("");
        let semaphore = self.semaphore(bucket);
        match tokio::time::timeout(self.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(e)) => Err(Error::internal(e)),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                let whose = tree.map_or("the operator's actions".to_string(), |t| {
                    format!("tree `{t}`")
                });
                tracing::warn!(
                    tree = bucket,
                    per_tree = self.per_tree,
                    "policy evaluation refused: the tree's share of the evaluation pool is busy"
                );
                Err(Error::RateLimited {
                    detail: format!(
                        "the policies of {whose} are already running {} evaluations at once, its share of the host; the operation was refused, retry later",
                        self.per_tree
                    ),
                    retry_after_secs: 1,
                })
            }
        }
    }

    /// Evaluations refused since start because their tree's share was busy.
    pub fn refused_total(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tree_holds_at_most_its_share_and_others_are_not_held_up() {
        let f = Fairness::new(2, Duration::from_millis(50));
        let a1 = f.enter(Some("a")).await.unwrap();
        let _a2 = f.enter(Some("a")).await.unwrap();
        let refused = f.enter(Some("a")).await.unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(f.refused_total(), 1);
        // Another tree and the operator still get theirs at once.
        let _b = f.enter(Some("b")).await.unwrap();
        let _operator = f.enter(None).await.unwrap();
        drop(a1);
        let _a3 = f.enter(Some("a")).await.unwrap();
    }
}
