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
pub mod exports;
pub mod idempotency;
pub mod identity;
mod locks;
pub mod login;
pub mod members;
pub mod membership;
pub mod merges;
pub mod messages;
pub mod money;
pub mod operations;
pub mod outbox;
pub mod parents;
pub mod platform_settings;
pub mod policies;
pub mod policy_versions;
pub mod resources;
pub mod retention;
pub mod sessions;
pub mod signin;
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

/// A page request: at most `limit` items after the opaque cursor.
///
/// Lists are newest first: a page holds rows older than the cursor's
/// `(created_at, id)` key (`before_us`, `before_id`) and, when the caller
/// asked, created strictly after `after_us` (`store::listing`).
#[derive(Debug, Clone)]
pub struct Page {
    /// The decoded cursor as it came, for the few lists keyed otherwise
    /// (per-sub-account reports, offers).
    pub after: String,
    pub limit: i64,
    pub before_us: i64,
    pub before_id: String,
    pub after_us: i64,
}

impl Default for Page {
    fn default() -> Page {
        Page {
            after: String::new(),
            limit: PAGE_LIMIT_DEFAULT,
            before_us: i64::MAX,
            before_id: String::new(),
            after_us: i64::MIN,
        }
    }
}

/// The cursor of a newest-first list: the last row's creation time and id.
pub fn keyset_cursor(created_at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{}:{id}", created_at.timestamp_micros())
}

impl Page {
    /// A page of `limit` rows after `cursor` (as [`keyset_cursor`] wrote
    /// it), created strictly inside `(created_after, created_before)`.
    /// `None` when the cursor is not one this server gives (no such cursor
    /// today: see below).
    pub fn newest_first(
        cursor: String,
        limit: i64,
        created_after_us: Option<i64>,
        created_before_us: Option<i64>,
    ) -> Option<Page> {
        let mut page = Page {
            limit,
            after_us: created_after_us.unwrap_or(i64::MIN),
            ..Page::default()
        };
        if !cursor.is_empty() {
            // Keyset lists give `micros:id`; the others give their own key.
            if let Some((us, id)) = cursor.split_once(':')
                && let Ok(us) = us.parse::<i64>()
            {
                page.before_us = us;
                page.before_id = id.to_string();
            }
            // Anything else is the key of a list keyed otherwise; on a
            // keyset list, a cursor this server did not give starts at the
            // newest row (any base64url text is a position, as the OpenAPI
            // document's pattern says).
        }
        if let Some(before) = created_before_us
            && before <= page.before_us
        {
            // `created_at < before` then bounds the page on its own.
            page.before_us = before;
            page.before_id = String::new();
        }
        page.after = cursor;
        Some(page)
    }
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

#[cfg(test)]
mod page_tests {
    use super::Page;

    #[test]
    fn a_cursor_and_a_window_make_one_newest_first_bound() {
        let first = Page::newest_first(String::new(), 10, None, None).unwrap();
        assert_eq!((first.before_us, first.after_us), (i64::MAX, i64::MIN));
        let next = Page::newest_first("1500:acct_b".into(), 10, Some(100), None).unwrap();
        assert_eq!(
            (next.before_us, next.before_id.as_str(), next.after_us),
            (1500, "acct_b", 100)
        );
        // `created_before` below the cursor bounds the page on its own ...
        let tighter = Page::newest_first("1500:acct_b".into(), 10, None, Some(900)).unwrap();
        assert_eq!((tighter.before_us, tighter.before_id.as_str()), (900, ""));
        // ... and above it, the cursor does.
        let looser = Page::newest_first("1500:acct_b".into(), 10, None, Some(2000)).unwrap();
        assert_eq!(
            (looser.before_us, looser.before_id.as_str()),
            (1500, "acct_b")
        );
        // Lists keyed otherwise keep their own cursor; a broken keyset one starts at the newest.
        assert_eq!(
            Page::newest_first("2026-10".into(), 10, None, None)
                .unwrap()
                .after,
            "2026-10"
        );
        let broken = Page::newest_first("x:acct_b".into(), 10, None, None).unwrap();
        assert_eq!(
            (broken.before_us, broken.before_id.as_str()),
            (first.before_us, "")
        );
    }
}
