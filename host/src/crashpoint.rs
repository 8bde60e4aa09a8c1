//! Crash and pause points for tests of exactly-once and of races: a test
//! server started with `--test-clock` and `CANOPY_TEST_CRASH_AT=<point>`
//! kills itself with SIGKILL when a request reaches that point, so a test
//! can cut a request between any two of its writes; with
//! `CANOPY_TEST_PAUSE_AT=<point>` a request waits there for a second, so a
//! test can slip another request in. Without `--test-clock` both do
//! nothing.

use std::sync::OnceLock;

static ARMED: OnceLock<String> = OnceLock::new();
static PAUSED: OnceLock<String> = OnceLock::new();

/// How long a request waits at an armed pause point.
const PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The points a request passes, in order.
pub const BEFORE_EFFECT_COMMIT: &str = "before-effect-commit";
pub const AFTER_EFFECT_COMMIT: &str = "after-effect-commit";
pub const AFTER_ANSWER_STORED: &str = "after-answer-stored";
/// A send, after its checks and before its write.
pub const BEFORE_SEND_WRITE: &str = "before-send-write";
/// An invitation's acceptance, after it read the account's status inside
/// its transaction and before it changes it.
pub const BEFORE_ACCEPTANCE_STATUS: &str = "before-acceptance-status";

/// A bulk operation's worker, after a chunk committed and before the next.
pub const BETWEEN_OPERATION_CHUNKS: &str = "between-operation-chunks";
/// A campaign's sender, after a chunk of recipients committed and before
/// the next.
pub const BETWEEN_CAMPAIGN_CHUNKS: &str = "between-campaign-chunks";

/// Arms the point named by `CANOPY_TEST_CRASH_AT` (test servers only).
pub fn arm_from_env() {
    if let Ok(point) = std::env::var("CANOPY_TEST_CRASH_AT")
        && !point.is_empty()
    {
        tracing::warn!(%point, "test crash point armed");
        let _ = ARMED.set(point);
    }
    if let Ok(point) = std::env::var("CANOPY_TEST_PAUSE_AT")
        && !point.is_empty()
    {
        tracing::warn!(%point, "test pause point armed");
        let _ = PAUSED.set(point);
    }
}

/// Waits here a while if this point is armed.
pub async fn pause(point: &str) {
    if PAUSED.get().map(String::as_str) == Some(point) {
        tokio::time::sleep(PAUSE).await;
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
