//! Limits on password logins (`POST /v1/sessions`): per e-mail and per
//! client address, failures within a window lead to an exponentially
//! growing wait, answered with 429 `rate_limited` and `Retry-After`.
//!
//! The state is in memory, per host: with several hosts behind a load
//! balancer each host limits on its own (so an attacker spread over `n`
//! hosts gets up to `n` times the attempts). Each map holds at most
//! [`TRACKED_MAX`] keys; idle ones are dropped first, then the least
//! recently used. Time is the operations layer's `Clock`, so tests move it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::{Error, Result};

/// Failures an e-mail may have within [`WINDOW_US`] before each further
/// attempt waits.
pub const EMAIL_FAILURES_FREE: u32 = 5;
/// The same for one client address: higher, since people behind one
/// address share it.
pub const CLIENT_FAILURES_FREE: u32 = 50;
/// Failures are forgotten this long after the last one: 15 minutes.
pub const WINDOW_US: i64 = 15 * 60 * 1_000_000;
/// The first wait, doubled with each further failure.
const BACKOFF_FIRST_US: i64 = 1_000_000;
/// The longest wait: 15 minutes.
pub const BACKOFF_MAX_US: i64 = 15 * 60 * 1_000_000;
/// Keys tracked per map (e-mails; client addresses).
pub const TRACKED_MAX: usize = 100_000;

/// What one key has done lately.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Failures since the window last started over.
    failures: u32,
    last_failure_us: i64,
    /// No attempt starts before this.
    blocked_until_us: i64,
    /// Attempts admitted and not finished: counted as failures until they
    /// finish, so parallel guesses cannot all pass the threshold at once.
    in_flight: u32,
    last_seen_us: i64,
}

impl Entry {
    fn idle(&self, now_us: i64) -> bool {
        self.in_flight == 0
            && now_us >= self.blocked_until_us
            && now_us - self.last_failure_us >= WINDOW_US
    }

    /// Microseconds until an attempt may start, or `None` if it may now.
    fn wait(&self, free: u32, now_us: i64) -> Option<i64> {
        if now_us < self.blocked_until_us {
            return Some(self.blocked_until_us - now_us);
        }
        // Under the threshold, up to it at once; past it, one at a time.
        let admitted = free.max(self.failures + 1);
        (self.failures + self.in_flight >= admitted).then_some(BACKOFF_FIRST_US)
    }

    fn fail(&mut self, free: u32, now_us: i64) {
        self.failures += 1;
        self.last_failure_us = now_us;
        if self.failures >= free {
            let doublings = (self.failures - free).min(30);
            let wait = BACKOFF_FIRST_US
                .saturating_mul(1 << doublings)
                .min(BACKOFF_MAX_US);
            self.blocked_until_us = now_us + wait;
        }
    }
}

/// Recent attempts by one kind of key, bounded.
#[derive(Debug)]
struct Tracker<K> {
    free: u32,
    entries: HashMap<K, Entry>,
}

impl<K: std::hash::Hash + Eq + Clone> Tracker<K> {
    fn new(free: u32) -> Tracker<K> {
        Tracker {
            free,
            entries: HashMap::new(),
        }
    }

    fn wait(&mut self, key: &K, now_us: i64) -> Option<i64> {
        let entry = self.entries.get_mut(key)?;
        if entry.idle(now_us) && entry.failures > 0 {
            *entry = Entry::default();
        }
        entry.wait(self.free, now_us)
    }

    fn admit(&mut self, key: &K, now_us: i64) {
        if !self.entries.contains_key(key) && self.entries.len() >= TRACKED_MAX {
            self.make_room(now_us);
        }
        let entry = self.entries.entry(key.clone()).or_default();
        entry.in_flight += 1;
        entry.last_seen_us = now_us;
    }

    /// Ends an admitted attempt: `Some(true)` failed, `Some(false)`
    /// succeeded (the key starts over), `None` neither (an error).
    fn finish(&mut self, key: &K, failed: Option<bool>, now_us: i64) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        match failed {
            Some(true) => entry.fail(self.free, now_us),
            Some(false) => {
                if entry.in_flight == 0 {
                    self.entries.remove(key);
                } else {
                    let in_flight = entry.in_flight;
                    *entry = Entry {
                        in_flight,
                        last_seen_us: now_us,
                        ..Entry::default()
                    };
                }
            }
            None => {}
        }
    }

    /// Drops idle keys; if none is idle, the least recently seen one that
    /// has no attempt in flight.
    fn make_room(&mut self, now_us: i64) {
        self.entries.retain(|_, e| !e.idle(now_us));
        if self.entries.len() < TRACKED_MAX {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.in_flight == 0)
            .min_by_key(|(_, e)| e.last_seen_us)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }
}

/// Login attempts per e-mail key and per client address, on this host.
#[derive(Debug)]
pub struct LoginLimiter {
    inner: Mutex<(Tracker<String>, Tracker<IpAddr>)>,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter {
            inner: Mutex::new((
                Tracker::new(EMAIL_FAILURES_FREE),
                Tracker::new(CLIENT_FAILURES_FREE),
            )),
        }
    }
}

fn refusal(wait_us: i64) -> Error {
    let secs = (wait_us.max(1) as u64).div_ceil(1_000_000);
    Error::RateLimited {
        detail: format!(
            "too many failed sign-ins for this e-mail or from this address; retry in {secs} s"
        ),
        retry_after_secs: secs,
    }
}

impl LoginLimiter {
    /// Admits one attempt for `email_key` from `client`, or refuses it
    /// with the time to wait. The attempt counts as a failure until
    /// [`Attempt::failed`] or [`Attempt::succeeded`] says how it ended (or
    /// it is dropped, which counts neither way).
    pub fn begin(
        &self,
        email_key: &str,
        client: Option<IpAddr>,
        now_us: i64,
    ) -> Result<Attempt<'_>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (emails, clients) = &mut *guard;
        let email_key = email_key.to_string();
        let wait = [
            emails.wait(&email_key, now_us),
            client.and_then(|c| clients.wait(&c, now_us)),
        ];
        if let Some(wait_us) = wait.into_iter().flatten().max() {
            return Err(refusal(wait_us));
        }
        emails.admit(&email_key, now_us);
        if let Some(c) = &client {
            clients.admit(c, now_us);
        }
        Ok(Attempt {
            limiter: self,
            email_key,
            client,
            done: false,
        })
    }

    fn finish(&self, a: &Attempt<'_>, failed: Option<bool>, now_us: i64) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (emails, clients) = &mut *guard;
        emails.finish(&a.email_key, failed, now_us);
        if let Some(c) = &a.client {
            // Only the e-mail starts over on success: one good account must
            // not reset an address that guesses at others.
            clients.finish(c, failed.filter(|f| *f), now_us);
        }
    }
}

/// One admitted login attempt.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    email_key: String,
    client: Option<IpAddr>,
    done: bool,
}

impl Attempt<'_> {
    pub fn failed(mut self, now_us: i64) {
        self.done = true;
        self.limiter.finish(&self, Some(true), now_us);
    }

    /// The e-mail's failures start over.
    pub fn succeeded(mut self, now_us: i64) {
        self.done = true;
        self.limiter.finish(&self, Some(false), now_us);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.finish(self, None, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    /// The seconds an attempt for `key` is told to wait, if refused.
    fn waits(limiter: &LoginLimiter, key: &str, now: i64) -> Option<u64> {
        match limiter.begin(key, None, now) {
            Err(Error::RateLimited {
                retry_after_secs, ..
            }) => Some(retry_after_secs),
            _ => None,
        }
    }

    #[test]
    fn failures_past_the_threshold_wait_longer_each_time() {
        let limiter = LoginLimiter::default();
        let mut now = 1_000 * S;
        for _ in 0..EMAIL_FAILURES_FREE {
            limiter.begin("a@x", None, now).unwrap().failed(now);
        }
        assert_eq!(
            waits(&limiter, "a@x", now),
            Some(1),
            "the sixth attempt waits"
        );
        now += S;
        limiter.begin("a@x", None, now).unwrap().failed(now);
        assert_eq!(waits(&limiter, "a@x", now), Some(2), "twice as long");
        // Another e-mail is not affected; a success starts over.
        limiter.begin("b@x", None, now).unwrap().succeeded(now);
        now += 2 * S;
        limiter.begin("a@x", None, now).unwrap().succeeded(now);
        for _ in 0..EMAIL_FAILURES_FREE - 1 {
            limiter.begin("a@x", None, now).unwrap().failed(now);
        }
        assert!(limiter.begin("a@x", None, now).is_ok());
    }

    #[test]
    fn parallel_attempts_count_while_in_flight_and_waits_are_capped() {
        let limiter = LoginLimiter::default();
        let now = 1_000 * S;
        let admitted: Vec<_> = (0..30)
            .filter_map(|_| limiter.begin("a@x", None, now).ok())
            .collect();
        assert_eq!(admitted.len(), EMAIL_FAILURES_FREE as usize);
        drop(admitted);
        let mut e = Entry::default();
        for _ in 0..100 {
            e.fail(EMAIL_FAILURES_FREE, now);
        }
        assert_eq!(e.blocked_until_us - now, BACKOFF_MAX_US);
        // Failures are forgotten a window after the last one.
        let later = now + BACKOFF_MAX_US + WINDOW_US;
        let mut t = Tracker::new(EMAIL_FAILURES_FREE);
        t.entries.insert("a@x".to_string(), e);
        assert_eq!(t.wait(&"a@x".to_string(), later), None);
    }

    #[test]
    fn one_client_guessing_many_emails_waits_and_a_success_does_not_reset_it() {
        let limiter = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let now = 1_000 * S;
        for i in 0..CLIENT_FAILURES_FREE {
            limiter
                .begin(&format!("u{i}@x"), Some(ip), now)
                .unwrap()
                .failed(now);
        }
        limiter.begin("fresh@x", None, now).unwrap().succeeded(now);
        assert!(limiter.begin("fresh@x", Some(ip), now).is_err());
        assert!(
            limiter
                .begin("fresh@x", Some("192.0.2.8".parse().unwrap()), now)
                .is_ok()
        );
    }

    #[test]
    fn the_maps_stay_bounded() {
        let mut t = Tracker::new(EMAIL_FAILURES_FREE);
        for i in 0..TRACKED_MAX + 10 {
            let key = format!("k{i}");
            t.admit(&key, i as i64);
            t.finish(&key, Some(true), i as i64);
        }
        assert_eq!(t.entries.len(), TRACKED_MAX);
        assert!(!t.entries.contains_key("k0"), "the oldest went first");
    }
}
