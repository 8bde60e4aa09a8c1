//! The one source of "now" for business logic. With `--test-clock` a test
//! suite may move it (API.md); SQL never calls `now()`.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

#[derive(Debug, Default)]
pub struct Clock {
    /// Added to the system time; only ever non-zero under `--test-clock`.
    offset_us: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    /// Microseconds since the epoch: the storage form of a time.
    pub fn now_us(&self) -> i64 {
        self.now().timestamp_micros()
    }

    /// Moves the clock so that it reads `now` at this instant, then runs on.
    pub fn set(&self, now: DateTime<Utc>) {
        let offset = now.timestamp_micros() - Utc::now().timestamp_micros();
        self.offset_us.store(offset, Ordering::Relaxed);
    }
}

pub fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_clock_reads_the_new_time_and_runs_on() {
        let clock = Clock::default();
        let target: DateTime<Utc> = "2031-01-31T23:59:59Z".parse().unwrap();
        clock.set(target);
        let read = clock.now();
        assert!(read >= target && read - target < chrono::Duration::seconds(5));
        assert_eq!(from_us(target.timestamp_micros()), target);
    }
}
