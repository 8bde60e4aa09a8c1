//! A request's reader connection, kept from one of its reads to the next.
//!
//! A pool pings every connection handed back to it (a hop to SQLite's
//! worker thread, a round trip to PostgreSQL, where a connection is also
//! pinged on its way out), so a request that read four times paid four
//! pings more than its four queries. Inside [`scope`] (every HTTP request),
//! a reader let go of is kept for the request's next read and given back
//! once, when the request ends.
//!
//! A kept reader is given back early ([`let_go`]) before the request waits
//! on anything but a read: a write (the writer, or on PostgreSQL a second
//! connection of the same pool, which could deadlock a full pool), an
//! uploaded policy's evaluation, a password hash, a DNS lookup. So a slow or
//! queued request never holds a connection another one needs.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

tokio::task_local! {
    static KEPT: RefCell<Option<Kept>>;
}

/// A kept connection and the pool it belongs to (a `Store`'s id).
struct Kept {
    pool: u64,
    conn: PoolConnection<Any>,
}

/// Runs `request` with a place to keep its reader between reads.
pub async fn scope<F: Future>(request: F) -> F::Output {
    KEPT.scope(RefCell::new(None), request).await
}

/// Gives the request's kept reader back to its pool.
pub fn let_go() {
    drop(KEPT.try_with(|k| k.borrow_mut().take()));
}

/// The kept reader of pool `pool`, if the request holds one.
pub(super) fn take(pool: u64) -> Option<PoolConnection<Any>> {
    let kept = KEPT.try_with(|k| k.borrow_mut().take()).ok().flatten()?;
    // Another store's connection (tests open several): back to its pool.
    (kept.pool == pool).then_some(kept.conn)
}

/// A connection for reads: the request's kept one or a new one from the
/// pool; kept again when dropped inside a request.
pub struct Reader {
    pool: u64,
    conn: Option<PoolConnection<Any>>,
}

impl Reader {
    pub(super) fn new(pool: u64, conn: PoolConnection<Any>) -> Reader {
        Reader {
            pool,
            conn: Some(conn),
        }
    }

    /// A reader of a pool no request keeps from (the decision log's).
    pub(super) fn unkept(conn: PoolConnection<Any>) -> Reader {
        Reader::new(UNKEPT, conn)
    }
}

/// The pool id of [`Reader::unkept`]; stores count from 1.
const UNKEPT: u64 = 0;

impl Deref for Reader {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.pool == UNKEPT {
            return;
        }
        let mut spare = Some(Kept {
            pool: self.pool,
            conn,
        });
        // Outside a request, or when one is kept already (two readers at
        // once), the connection goes back to its pool.
        let _ = KEPT.try_with(|k| {
            let mut k = k.borrow_mut();
            if k.is_none() {
                *k = spare.take();
            }
        });
    }
}
