//! Crash points for tests of exactly-once (invariant 7): a test server
//! started with `--test-clock` and `CANOPY_TEST_CRASH_AT=<point>` kills
//! itself with SIGKILL when a request reaches that point, so a test can cut
//! a request between any two of its writes. Without both, `hit` does
//! nothing.

use std::sync::OnceLock;

static ARMED: OnceLock<String> = OnceLock::new();

/// The points a request passes, in order.
pub const BEFORE_EFFECT_COMMIT: &str = "before-effect-commit";
pub const AFTER_EFFECT_COMMIT: &str = "after-effect-commit";
pub const AFTER_ANSWER_STORED: &str = "after-answer-stored";

/// Arms the point named by `CANOPY_TEST_CRASH_AT` (test servers only).
pub fn arm_from_env() {
    if let Ok(point) = std::env::var("CANOPY_TEST_CRASH_AT")
        && !point.is_empty()
    {
        tracing::warn!(%point, "test crash point armed");
        let _ = ARMED.set(point);
    }
}

/// Kills the process here if this point is armed.
pub fn hit(point: &str) {
    if ARMED.get().map(String::as_str) == Some(point) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        // The signal is on its way; never go past this point.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
