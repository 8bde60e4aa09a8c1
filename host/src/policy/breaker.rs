//! Circuit breakers: a policy that keeps failing stops being called.
//!
//! One circuit per uploaded policy version and tree (a platform policy that
//! fails on one tree's documents opens only that tree's circuit). After
//! `threshold` consecutive failures (errors, limits, deadlines, malformed
//! documents) the circuit opens: every evaluation fails closed at once,
//! without running the policy, until the cool-down ends; then one trial
//! evaluation goes through (half-open): a success closes the circuit, a
//! failure opens it again for another cool-down. The shipped defaults have
//! no circuit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Consecutive failures that open a circuit.
pub const FAILURES_TO_OPEN: u32 = 5;
/// How long an open circuit refuses before it lets one trial through.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

/// A policy version in one tree (`None`: operator actions).
pub type Key = (String, i64, Option<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open {
        until: SystemTime,
    },
    /// One trial is running since `since`.
    HalfOpen {
        since: SystemTime,
    },
}

/// One circuit's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Circuit {
    pub state: State,
    /// Consecutive failures.
    pub failures: u32,
}

impl Default for Circuit {
    fn default() -> Circuit {
        Circuit {
            state: State::Closed,
            failures: 0,
        }
    }
}

/// Whether an evaluation may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Refused: open until then, after `failures` consecutive failures.
    No {
        until: SystemTime,
        failures: u32,
    },
}

impl Circuit {
    /// Asks to run one evaluation at `now`.
    pub fn admit(&mut self, now: SystemTime, cool_down: Duration) -> Admit {
        match self.state {
            State::Closed => Admit::Yes,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { since: now };
                Admit::Yes
            }
            State::Open { until } => Admit::No {
                until,
                failures: self.failures,
            },
            // A trial that never reported (it cannot, but never wedge).
            State::HalfOpen { since } if now >= since + cool_down => {
                self.state = State::HalfOpen { since: now };
                Admit::Yes
            }
            State::HalfOpen { since } => Admit::No {
                until: since + cool_down,
                failures: self.failures,
            },
        }
    }

    /// Whether it would refuse at `now`, without changing anything.
    pub fn refuses(&self, now: SystemTime) -> Option<Admit> {
        match self.state {
            State::Open { until } if now < until => Some(Admit::No {
                until,
                failures: self.failures,
            }),
            _ => None,
        }
    }

    /// Records an evaluation's outcome; true when this opened the circuit.
    pub fn record(
        &mut self,
        ok: bool,
        now: SystemTime,
        threshold: u32,
        cool_down: Duration,
    ) -> bool {
        if ok {
            *self = Circuit::default();
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        let opens = match self.state {
            State::HalfOpen { .. } => true,
            State::Closed => threshold > 0 && self.failures >= threshold,
            State::Open { .. } => false,
        };
        if opens {
            self.state = State::Open {
                until: now + cool_down,
            };
        }
        opens
    }
}

/// What the policy list shows of a circuit that is not closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `open` or `half_open`.
    pub state: &'static str,
    pub until: Option<SystemTime>,
    pub failures: u32,
}

/// Every circuit of this host, with counters for `/metrics`.
#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    cool_down: Duration,
    circuits: Mutex<HashMap<Key, Circuit>>,
    opened: AtomicU64,
    refused: AtomicU64,
}

impl Default for Breakers {
    fn default() -> Breakers {
        Breakers::new(FAILURES_TO_OPEN, COOL_DOWN)
    }
}

impl Breakers {
    /// `threshold` 0 never opens a circuit.
    pub fn new(threshold: u32, cool_down: Duration) -> Breakers {
        Breakers {
            threshold,
            cool_down,
            circuits: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, Circuit>) -> R) -> R {
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut circuits)
    }

    /// Asks to run `key` now; a refusal is counted.
    pub fn admit(&self, key: &Key) -> Admit {
        let now = SystemTime::now();
        let admit = self.with(|c| match c.get_mut(key) {
            Some(circuit) => circuit.admit(now, self.cool_down),
            None => Admit::Yes,
        });
        if admit != Admit::Yes {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admit
    }

    /// Refused now without changing anything (no trial is started); a
    /// refusal is counted.
    pub fn refuses(&self, key: &Key) -> Option<Admit> {
        let now = SystemTime::now();
        let refused = self.with(|c| c.get(key).and_then(|circuit| circuit.refuses(now)));
        if refused.is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    /// Records the outcome of an admitted evaluation.
    pub fn record(&self, key: &Key, ok: bool) {
        let now = SystemTime::now();
        let opened = self.with(|c| {
            if ok {
                // Closed circuits are not kept.
                c.remove(key);
                return None;
            }
            let circuit = c.entry(key.clone()).or_default();
            circuit
                .record(false, now, self.threshold, self.cool_down)
                .then_some(circuit.failures)
        });
        if let Some(failures) = opened {
            self.opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(policy = %key.0, version = key.1, tree = key.2.as_deref().unwrap_or("-"), failures, cool_down_s = self.cool_down.as_secs(), "policy circuit breaker opened: the policy fails closed without being evaluated until the cool-down ends");
        }
    }

    /// The state of the policy version's circuits that are not closed: the
    /// one open longest ahead, if any.
    pub fn status(&self, id: &str, version: i64) -> Option<Status> {
        self.with(|c| {
            c.iter()
                .filter(|((i, v, _), _)| i == id && *v == version)
                .filter_map(|(_, circuit)| match circuit.state {
                    State::Closed => None,
                    State::Open { until } => Some(Status {
                        state: "open",
                        until: Some(until),
                        failures: circuit.failures,
                    }),
                    State::HalfOpen { .. } => Some(Status {
                        state: "half_open",
                        until: None,
                        failures: circuit.failures,
                    }),
                })
                .max_by_key(|s| s.until)
        })
    }

    /// Circuits open now.
    pub fn open_now(&self) -> usize {
        let now = SystemTime::now();
        self.with(|c| c.values().filter(|x| x.refuses(now).is_some()).count())
    }

    /// Circuits opened since start.
    pub fn opened_total(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Evaluations refused by an open circuit since start.
    pub fn refused_total(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_consecutive_failures_then_lets_one_trial_through() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut c = Circuit::default();
        for i in 1..5 {
            assert_eq!(c.admit(t0, COOL), Admit::Yes);
            assert!(!c.record(false, t0, 5, COOL), "failure {i} keeps it closed");
        }
        // A success in between resets the count.
        c.record(true, t0, 5, COOL);
        assert_eq!(c.failures, 0);
        for _ in 0..4 {
            c.record(false, t0, 5, COOL);
        }
        assert!(c.record(false, t0, 5, COOL), "the fifth opens it");
        let until = t0 + COOL;
        assert_eq!(c.state, State::Open { until });
        // Open: refused at once, until the cool-down ends.
        let t1 = t0 + Duration::from_secs(29);
        assert_eq!(c.refuses(t1), Some(Admit::No { until, failures: 5 }));
        assert_eq!(c.admit(t1, COOL), Admit::No { until, failures: 5 });
        // Then one trial, and only one, goes through.
        let t2 = t0 + Duration::from_secs(30);
        assert_eq!(c.refuses(t2), None);
        assert_eq!(c.admit(t2, COOL), Admit::Yes);
        assert_eq!(c.state, State::HalfOpen { since: t2 });
        assert!(matches!(c.admit(t2, COOL), Admit::No { .. }));
        // A failed trial opens it again for a whole cool-down.
        assert!(c.record(false, t2, 5, COOL));
        assert_eq!(c.state, State::Open { until: t2 + COOL });
        assert_eq!(c.failures, 6);
        // A successful trial closes it.
        let t3 = t2 + COOL;
        assert_eq!(c.admit(t3, COOL), Admit::Yes);
        c.record(true, t3, 5, COOL);
        assert_eq!(c, Circuit::default());
        assert_eq!(c.admit(t3, COOL), Admit::Yes);
    }

    #[test]
    fn a_trial_that_never_reports_does_not_wedge_the_circuit() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut c = Circuit {
            state: State::HalfOpen { since: t0 },
            failures: 5,
        };
        assert!(matches!(c.admit(t0 + COOL / 2, COOL), Admit::No { .. }));
        assert_eq!(c.admit(t0 + COOL, COOL), Admit::Yes);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let mut c = Circuit::default();
        for _ in 0..100 {
            assert!(!c.record(false, SystemTime::UNIX_EPOCH, 0, COOL));
        }
        assert_eq!(c.state, State::Closed);
    }

    #[test]
    fn circuits_are_per_version_and_tree_and_counted() {
        let b = Breakers::new(2, COOL);
        let a: Key = ("pol_1".into(), 1, Some("acct_a".into()));
        let other_tree: Key = ("pol_1".into(), 1, Some("acct_b".into()));
        let other_version: Key = ("pol_1".into(), 2, Some("acct_a".into()));
        b.record(&a, false);
        b.record(&a, false);
        assert!(matches!(b.admit(&a), Admit::No { failures: 2, .. }));
        assert!(b.refuses(&a).is_some());
        assert_eq!(b.admit(&other_tree), Admit::Yes);
        assert_eq!(b.admit(&other_version), Admit::Yes);
        assert_eq!(b.opened_total(), 1);
        assert_eq!(b.refused_total(), 2);
        assert_eq!(b.open_now(), 1);
        let status = b.status("pol_1", 1).unwrap();
        assert_eq!((status.state, status.failures), ("open", 2));
        assert_eq!(b.status("pol_1", 2), None);
    }
}
