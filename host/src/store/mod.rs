//! Storage through sqlx, for SQLite and PostgreSQL alike.
//!
//! Both backends run the same SQL (the `migrations/` set is written in the
//! dialect they share; `$N` placeholders work on both). Transactions and
//! locks live here and in the operations that open them; nothing above this
//! module writes SQL.
//!
//! SQLite has one writer: all writes go through a pool of exactly one
//! connection, so a transaction never meets `SQLITE_BUSY` from another of our
//! own writers, and readers use their own pool (WAL lets them run beside the
//! writer). PostgreSQL uses one pool for both, and conditional updates or
//! unique constraints where two hosts could race.

pub mod accounts;
pub mod credentials;
pub mod idempotency;
pub mod ledger;
pub mod messages;
pub mod notifications;
pub mod settings;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use sqlx::AnyConnection as Conn;
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Readers on SQLite: enough for 2 cores and the load client beside them.
const SQLITE_READERS_MAX: u32 = 4;
/// Connections to PostgreSQL per host; several hosts share one server.
const POSTGRES_CONNECTIONS_MAX: u32 = 16;
/// How long a request waits for a connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an SQLite writer waits for another process's lock.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pub backend: Backend,
    read: AnyPool,
    write: AnyPool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite://FILE or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot reach database: {0}")]
    Unreachable(String),
    #[error("migrations failed: {0}")]
    Migration(String),
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl Store {
    /// Opens the database named by `url`, creating an SQLite file if missing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let unreachable = |e: sqlx::Error| StoreError::Unreachable(e.to_string());
        match backend {
            Backend::Sqlite => {
                let url = if url.contains("mode=") {
                    url.to_string()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                let options: AnyConnectOptions = url.parse().map_err(unreachable)?;
                let write = sqlite_pool(1)
                    .connect_with(options.clone())
                    .await
                    .map_err(unreachable)?;
                let read = sqlite_pool(SQLITE_READERS_MAX)
                    .connect_with(options)
                    .await
                    .map_err(unreachable)?;
                Ok(Store {
                    backend,
                    read,
                    write,
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS_MAX)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(unreachable)?;
                Ok(Store {
                    backend,
                    read: pool.clone(),
                    write: pool,
                })
            }
        }
    }

    /// Brings the schema up to date. Safe when several hosts start at once:
    /// sqlx takes an advisory lock on PostgreSQL.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    /// A connection for reads that need no transaction.
    pub async fn reader(&self) -> crate::Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.read.acquire().await.map_err(db_error)
    }

    /// A write transaction. On SQLite it holds the only writer connection.
    pub async fn begin(&self) -> crate::Result<Tx> {
        self.write.begin().await.map_err(db_error)
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn sqlite_pool(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL: readers never block the writer. synchronous=NORMAL in WAL
                // survives a crash of the process (only an OS crash may lose the
                // last transactions). Foreign keys are off by default in SQLite.
                for pragma in [
                    "PRAGMA journal_mode = WAL".to_string(),
                    "PRAGMA synchronous = NORMAL".to_string(),
                    "PRAGMA foreign_keys = ON".to_string(),
                    format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"),
                ] {
                    conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                }
                Ok(())
            })
        })
}

/// A database failure the caller cannot fix.
pub fn db_error(e: sqlx::Error) -> crate::Error {
    crate::Error::internal(format!("database: {e}"))
}

/// The unique index a failed write ran into, if that is why it failed.
/// PostgreSQL names the constraint; SQLite names the columns.
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    Some(
        db.constraint()
            .map(str::to_string)
            .unwrap_or_else(|| db.message().to_string()),
    )
}
