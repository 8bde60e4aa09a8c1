//! `Idempotency-Key`s, recorded in the transaction of the effect they guard
//! (invariant 7).
//!
//! The HTTP layer runs a keyed request inside [`guarded`]; the first write
//! transaction that request opens ([`super::Store::begin`] or
//! [`super::Store::write_steps`]) inserts the key's row as its first
//! statement. So the key is committed exactly when the effect is: a crash
//! before the commit leaves neither (a retry runs once), a crash after it
//! leaves both (a retry finds the key and never runs the effect again), and
//! of two parallel twins the second one's insert fails on the primary key
//! and its whole transaction rolls back. The answer is stored after the
//! commit; when a crash lost it, `resource` (what the effect created) lets
//! the operation answer again from what was committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::Row;

use super::{Arg, Conn, Step, db_error};
use crate::{Error, Result};

/// Keys are kept 24 hours (API.md).
pub const RETENTION_US: i64 = 24 * 60 * 60 * 1_000_000;

tokio::task_local! {
    static GUARD: Arc<Guard>;
}

/// The key of the request being served, and what became of it.
#[derive(Debug)]
pub struct Guard {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    pub now_us: i64,
    /// This request's own id, written with its key row.
    owner: String,
    /// Set when an earlier request with this key committed its effect but
    /// its answer was lost: what that effect created, if it said.
    pub committed: Option<Option<String>>,
    resource: Mutex<Option<String>>,
    recorded: AtomicBool,
    conflicted: AtomicBool,
}

impl Guard {
    pub fn new(
        scope: String,
        key: String,
        request_hash: String,
        now_us: i64,
        committed: Option<Option<String>>,
    ) -> Guard {
        Guard {
            scope,
            key,
            request_hash,
            now_us,
            owner: crate::secrets::new_id("req"),
            committed,
            resource: Mutex::new(None),
            recorded: AtomicBool::new(false),
            conflicted: AtomicBool::new(false),
        }
    }

    /// Whether this request's key row was written with its effect.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::SeqCst)
    }

    /// Whether the key row could not be written (a twin, or an effect
    /// already committed): the answer is a 409 that must not be stored.
    pub fn conflicted(&self) -> bool {
        self.conflicted.load(Ordering::SeqCst)
    }

    /// The first write of the request records the key; later ones do not.
    fn take_first_write(&self) -> bool {
        !self.recorded.swap(true, Ordering::SeqCst)
    }

    fn marker(&self) -> Step {
        let resource = self.resource.lock().expect("not poisoned").clone();
        Step::new(
            "INSERT INTO idempotency_keys (scope, key, request_hash, owner, resource, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Arg::Text(Some(self.scope.clone())),
                Arg::Text(Some(self.key.clone())),
                Arg::Text(Some(self.request_hash.clone())),
                Arg::Text(Some(self.owner.clone())),
                Arg::Text(resource),
                Arg::Int(Some(self.now_us)),
            ],
        )
    }

    /// The error of a write whose key row ran into an existing one.
    pub fn conflict(&self) -> Error {
        self.conflicted.store(true, Ordering::SeqCst);
        match &self.committed {
            Some(Some(resource)) => Error::IdempotencyConflict(format!(
                "the request with this Idempotency-Key was carried out (it created `{resource}`) but its answer was lost in a failure; read `{resource}` instead of retrying"
            )),
            Some(None) => Error::IdempotencyConflict(
                "the request with this Idempotency-Key was carried out but its answer was lost in a failure; read the resource it changed instead of retrying".into(),
            ),
            None => Error::IdempotencyConflict(
                "another request with this Idempotency-Key is in progress; retry shortly to get its answer".into(),
            ),
        }
    }
}

/// Runs `f` (a whole request) with `guard` as its key.
pub async fn guarded<F: Future>(guard: Arc<Guard>, f: F) -> F::Output {
    GUARD.scope(guard, f).await
}

/// The key of the request being served, if it has one.
pub fn current() -> Option<Arc<Guard>> {
    GUARD.try_with(Arc::clone).ok()
}

/// Names what the request's effect creates, before its write, so a retry
/// after a lost answer can answer from it.
pub fn note_resource(id: &str) {
    if let Some(g) = current() {
        *g.resource.lock().expect("not poisoned") = Some(id.to_string());
    }
}

/// Names what the request's effect created, inside the effect's own
/// transaction (after the key row was written by `begin`).
pub async fn note_resource_in(c: &mut Conn, id: &str) -> Result<()> {
    let Some(g) = current().filter(|g| g.recorded()) else {
        return Ok(());
    };
    sqlx::query("UPDATE idempotency_keys SET resource = $3 WHERE scope = $1 AND key = $2")
        .bind(&g.scope)
        .bind(&g.key)
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// What an earlier request with this key created, when its answer was
/// lost: the operation answers from it instead of running again.
pub fn committed_resource() -> Option<String> {
    current().and_then(|g| g.committed.clone().flatten())
}

/// The key row for the first write of a guarded request.
pub(super) fn marker_step() -> Option<(Arc<Guard>, Step)> {
    let g = current()?;
    if !g.take_first_write() {
        return None;
    }
    let step = g.marker();
    Some((g, step))
}

/// Whether a failed write ran into a key row.
pub fn is_marker_conflict(e: &sqlx::Error) -> bool {
    super::unique_violation(e).is_some_and(|c| c.contains("idempotency_keys"))
}

/// Maps a failed write: a key-row conflict becomes the guard's 409.
pub fn write_error(e: sqlx::Error) -> std::result::Result<sqlx::Error, Error> {
    match current() {
        Some(g) if is_marker_conflict(&e) => Err(g.conflict()),
        _ => Ok(e),
    }
}

/// What a key holds.
#[derive(Debug, Clone)]
pub enum Stored {
    /// Its request committed; the answer was not stored (yet).
    Committed {
        request_hash: String,
        resource: Option<String>,
    },
    /// The answer to replay.
    Answer {
        request_hash: String,
        status: u16,
        content_type: String,
        body: String,
        redacted: Option<String>,
    },
}

/// The key's row, if it has one within retention.
pub async fn find(c: &mut Conn, scope: &str, key: &str, now_us: i64) -> Result<Option<Stored>> {
    let row = sqlx::query(
        "SELECT request_hash, resource, status_code, content_type, response_body, redacted
         FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at >= $3",
    )
    .bind(scope)
    .bind(key)
    .bind(now_us - RETENTION_US)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    let request_hash: String = row.try_get("request_hash").map_err(db_error)?;
    let text = |col: &str| row.try_get::<Option<String>, _>(col).map_err(db_error);
    Ok(Some(
        match row
            .try_get::<Option<i64>, _>("status_code")
            .map_err(db_error)?
        {
            None => Stored::Committed {
                request_hash,
                resource: text("resource")?,
            },
            Some(status) => Stored::Answer {
                request_hash,
                status: u16::try_from(status).unwrap_or(500),
                content_type: text("content_type")?.unwrap_or_default(),
                body: text("response_body")?.unwrap_or_default(),
                redacted: text("redacted")?,
            },
        },
    ))
}

/// An answer to store (already without secrets).
pub struct Answer<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub body: &'a str,
    pub redacted: Option<&'a str>,
}

/// Stores the answer. Into the row this request's own effect wrote; or,
/// answering from an effect an earlier request committed, into that row;
/// otherwise (a request that changed nothing) as a new row, never over an
/// existing one, so a twin's refusal cannot hide a committed effect.
pub async fn remember(c: &mut Conn, guard: &Guard, answer: &Answer<'_>) -> Result<()> {
    let set = "status_code = $3, content_type = $4, response_body = $5, redacted = $6";
    let bind = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
        q.bind(guard.scope.clone())
            .bind(guard.key.clone())
            .bind(i64::from(answer.status))
            .bind(answer.content_type.to_string())
            .bind(answer.body.to_string())
            .bind(answer.redacted.map(str::to_string))
    };
    let own = bind(sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE idempotency_keys SET {set}
         WHERE scope = $1 AND key = $2 AND status_code IS NULL AND owner = $7"
    ))))
    .bind(guard.owner.clone())
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    if own.rows_affected() == 1 {
        return Ok(());
    }
    if guard.committed.is_some() {
        if (200..300).contains(&answer.status) {
            bind(sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE idempotency_keys SET {set}
                 WHERE scope = $1 AND key = $2 AND status_code IS NULL AND request_hash = $7"
            ))))
            .bind(guard.request_hash.clone())
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
        }
        return Ok(());
    }
    bind(sqlx::query(
        "INSERT INTO idempotency_keys
             (scope, key, status_code, content_type, response_body, redacted, request_hash, owner, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (scope, key) DO NOTHING",
    ))
    .bind(guard.request_hash.clone())
    .bind(guard.owner.clone())
    .bind(guard.now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Drops keys past retention; run now and then.
pub async fn purge(c: &mut Conn, now_us: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_us - RETENTION_US)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}
