//! One function per product operation. This is the only layer that opens a
//! transaction and calls the policy hooks, so no route (HTTP, command line,
//! a future console) can skip a policy.
//!
//! Every account operation runs the checks of API.md in one order:
//! authentication, the principal's own account suspended, reach, feature
//! enabled, core rules, `authorize`, input and `subaccount.validate`,
//! uniqueness and state, money. Policies run before the write transaction
//! opens, so a slow policy never holds SQLite's only write lock.

pub mod access;
pub mod analytics;
pub mod billing;
pub mod campaigns;
pub mod conversations;
pub mod idempotency;
pub mod identity;
mod locks;
pub mod login;
pub mod members;
pub mod merges;
pub mod messages;
pub mod money;
pub mod operations;
pub mod outbox;
pub mod parents;
pub mod platform_settings;
pub mod policies;
pub mod resources;
pub mod retention;
pub mod status;
pub mod subaccounts;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::policy::Policies;
use crate::store::Store;

pub use access::{Actor, Principal};

/// Settings of the operations layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long an invitation token stays valid.
    pub invitation_ttl: Duration,
    /// How long a session token from `POST /v1/sessions` stays valid.
    pub session_ttl: Duration,
    /// How long decisions are kept, and at most how many per tree (the
    /// operator's actions are one more bucket), so one tree's traffic never
    /// purges another's log.
    pub decision_retention: Duration,
    pub decisions_max_per_tree: i64,
    /// How often expired idempotency keys and old decisions are purged.
    pub purge_every: Duration,
    /// How often a host checks whether another host changed the active
    /// policies.
    pub policy_poll: Duration,
    /// How long a connection may take to send a request's headers before
    /// it is closed.
    pub header_read_timeout: Duration,
    /// On shutdown, how long requests in flight may take before their
    /// connections are closed anyway.
    pub shutdown_drain: Duration,
    /// An uploaded policy's circuit opens after this many consecutive
    /// failures (0: never), for `breaker_cool_down`.
    pub breaker_failures: u32,
    pub breaker_cool_down: Duration,
    /// Sub-accounts one parent may hold: `subaccounts::SUBACCOUNTS_MAX`,
    /// lowered only by tests.
    pub subaccounts_max: i64,
    /// Take the client address of login limits from the last
    /// `X-Forwarded-For` entry (set by a proxy in front) rather than the
    /// peer; off unless such a proxy always sets it.
    pub trust_forwarded_for: bool,
    /// How long a host's claim on a bulk operation lasts unless renewed
    /// (every chunk renews it); then another host takes it over.
    pub operation_lease: Duration,
    /// The key webhook signing secrets are sealed under (`--data-key`; on
    /// SQLite, by default, a private key file beside the database). With
    /// none, webhooks cannot be created.
    pub data_key: Option<crate::secrets::DataKey>,
    /// The first wait before a failed webhook delivery is tried again
    /// (doubled each time, capped); tests use milliseconds.
    pub webhook_backoff_base: Duration,
    /// How long one webhook delivery attempt may take.
    pub webhook_attempt_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            session_ttl: Duration::from_secs(24 * 3600),
            decision_retention: Duration::from_secs(30 * 24 * 3600),
            decisions_max_per_tree: 100_000,
            purge_every: Duration::from_secs(600),
            policy_poll: Duration::from_millis(500),
            header_read_timeout: crate::server::HEADER_READ_TIMEOUT,
            shutdown_drain: crate::server::SHUTDOWN_DRAIN,
            breaker_failures: crate::policy::breaker::FAILURES_TO_OPEN,
            breaker_cool_down: crate::policy::breaker::COOL_DOWN,
            subaccounts_max: subaccounts::SUBACCOUNTS_MAX,
            trust_forwarded_for: false,
            operation_lease: operations::LEASE,
            data_key: None,
            webhook_backoff_base: crate::domain::webhooks::BACKOFF_BASE,
            webhook_attempt_timeout: webhooks::ATTEMPT_TIMEOUT,
        }
    }
}

/// The host's operations, over one store, one policy set and one clock.
pub struct Canopy {
    pub store: Store,
    pub policies: Policies,
    pub clock: Arc<Clock>,
    pub settings: Settings,
    /// SHA-256 of the operator token (replaced when `canopy operator
    /// rotate-token` stores a new one and this host follows the database).
    pub(crate) operator_token_hash: std::sync::RwLock<String>,
    /// Recent login attempts on this host.
    pub(crate) logins: login::LoginLimiter,
}

/// A page request: at most `limit` items after the opaque `cursor`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub after: String,
    pub limit: i64,
}

/// Largest page (API.md).
pub const PAGE_LIMIT_MAX: i64 = 1000;
pub const PAGE_LIMIT_DEFAULT: i64 = 50;

impl Page {
    /// Fetches one more than asked, so the caller knows if a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }
}

/// One page of results and where the next one starts.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_after: Option<String>,
}

impl<T> Paged<T> {
    /// Cuts a `fetch_limit` result down to the page, noting the cursor.
    pub fn from_fetch(mut items: Vec<T>, page: &Page, id: impl Fn(&T) -> String) -> Paged<T> {
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit.max(0) as usize);
        let next_after = if more { items.last().map(&id) } else { None };
        Paged { items, next_after }
    }
}
