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
pub mod analytics;
pub mod billing;
pub mod campaigns;
pub mod conversations;
pub mod credentials;
pub mod decisions;
pub mod events;
pub mod gauges;
pub mod group_commit;
pub mod held;
pub mod idempotency;
pub mod ledger;
pub mod listing;
pub mod membership;
pub mod merges;
pub mod messages;
pub mod notifications;
pub mod operations;
pub mod password_resets;
pub mod policies;
pub mod resource_status;
pub mod resources;
pub mod retention;
pub mod sessions;
pub mod settings;
pub mod webhooks;

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
/// How long start-up waits for the first PostgreSQL connection: a server
/// that refuses or does not answer is reported at once, not after the
/// pool's acquire timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
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
    /// SQLite: the writer that commits concurrent short writes together.
    group: Option<group_commit::GroupCommit>,
    /// SQLite: the decision log's own database file (`decisions::log_url`),
    /// so writing it never takes the ledger's write lock. `None`: the
    /// decision log lives with everything else (PostgreSQL, in-memory).
    log: Option<LogPools>,
    /// Tells this store's readers from another's in a request's kept
    /// reader (`held`).
    id: u64,
}

#[derive(Clone)]
struct LogPools {
    file: std::path::PathBuf,
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
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
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
                let file = sqlite_file(&url);
                if let Some(file) = &file {
                    create_private(file)
                        .map_err(|e| StoreError::Unreachable(format!("{}: {e}", file.display())))?;
                }
                let (write, read) = sqlite_pools(&url, SQLITE_READERS_MAX).await?;
                if let Some(file) = &file {
                    tighten_companions(file);
                }
                let log = match &file {
                    Some(file) => Some(LogPools::open(&url, file).await?),
                    None => None,
                };
                let group = Some(group_commit::GroupCommit::start(write.clone()));
                Ok(Store {
                    backend,
                    read,
                    write,
                    group,
                    log,
                    id: next_store_id(),
                })
            }
            Backend::Postgres => {
                first_connection(url).await?;
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
                    group: None,
                    log: None,
                    id: next_store_id(),
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
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        if let Some(log) = &self.log {
            decisions::move_to_log_file(&self.write, &log.write, &log.file)
                .await
                .map_err(|e| StoreError::Migration(format!("decision log: {e}")))?;
        }
        Ok(())
    }

    /// A connection for reading the decision log.
    pub async fn log_reader(&self) -> crate::Result<held::Reader> {
        match &self.log {
            Some(log) => Ok(held::Reader::unkept(
                log.read.acquire().await.map_err(db_error)?,
            )),
            None => self.reader().await,
        }
    }

    /// A write transaction on the decision log (never the ledger's writer
    /// on SQLite).
    pub async fn log_begin(&self) -> crate::Result<Tx> {
        held::let_go();
        match &self.log {
            Some(log) => log.write.begin().await,
            None => self.write.begin().await,
        }
        .map_err(db_error)
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    /// A connection for reads: within a request, the one its last read
    /// used (`held`).
    pub async fn reader(&self) -> crate::Result<held::Reader> {
        let conn = match held::take(self.id) {
            Some(conn) => conn,
            None => self.read.acquire().await.map_err(db_error)?,
        };
        Ok(held::Reader::new(self.id, conn))
    }

    /// A write transaction. On SQLite it holds the only writer connection.
    /// The first one a keyed request opens records its Idempotency-Key
    /// (`idempotency`), so the key commits with the effect.
    pub async fn begin(&self) -> crate::Result<Tx> {
        held::let_go();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        if let Some((guard, marker)) = idempotency::marker_step() {
            run_each(&mut tx, std::slice::from_ref(&marker))
                .await
                .map_err(|e| {
                    if idempotency::is_marker_conflict(&e) {
                        guard.conflict()
                    } else {
                        db_error(e)
                    }
                })?;
        }
        Ok(tx)
    }

    /// Runs `steps` as one short write transaction of their own: on SQLite
    /// committed together with others that arrive at once (group commit),
    /// on PostgreSQL alone.
    pub async fn write_steps(
        &self,
        mut steps: Vec<Step>,
    ) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        if let Some((_, marker)) = idempotency::marker_step() {
            steps.insert(0, marker);
        }
        match &self.group {
            Some(group) => {
                held::let_go();
                group.run(steps).await
            }
            // PostgreSQL: statement by statement in a transaction, each
            // a prepared statement the connection keeps (one query of
            // literals was one round trip, but PostgreSQL parsed and
            // planned it anew every time: BENCHMARKS.md). Read and write
            // share one pool here, so the request's kept reader writes,
            // with no second connection.
            None => {
                let mut c = match held::take(self.id) {
                    Some(c) => held::Reader::new(self.id, c),
                    None => held::Reader::new(self.id, self.write.acquire().await?),
                };
                let mut tx = sqlx::Connection::begin(&mut *c).await?;
                let rows = run_each(&mut tx, &steps).await?;
                crate::crashpoint::hit(crate::crashpoint::BEFORE_EFFECT_COMMIT);
                tx.commit().await?;
                Ok(rows)
            }
        }
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
        if let Some(log) = &self.log {
            log.write.close().await;
            log.read.close().await;
        }
    }
}

impl LogPools {
    /// Opens (creating it if missing, 0600) the decision log's file beside
    /// the database `file` (named by `url`), with the same pragmas.
    async fn open(url: &str, file: &std::path::Path) -> Result<LogPools, StoreError> {
        let log_url = decisions::log_url(url);
        let log_file = sqlite_file(&log_url)
            .ok_or_else(|| StoreError::UnsupportedUrl(redact_url(&log_url)))?;
        create_private(&log_file)
            .map_err(|e| StoreError::Unreachable(format!("{}: {e}", log_file.display())))?;
        let (write, read) = sqlite_pools(&log_url, 2).await?;
        tighten_companions(&log_file);
        Ok(LogPools {
            file: file.to_path_buf(),
            read,
            write,
        })
    }
}

/// A new [`Store::id`].
fn next_store_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The file an SQLite URL names; `None` for an in-memory database.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = query.split('&').any(|p| p == "mode=memory");
    if path.is_empty() || path == ":memory:" || memory {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Creates the database file readable and writable by this user only
/// (0600, whatever the umask), before SQLite opens it; an existing file is
/// left as it is. SQLite gives its `-wal` and `-shm` files the database
/// file's permissions.
fn create_private(file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(created) => created.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the `-wal` and `-shm` files no more access than the database file
/// itself has (they hold the same data).
fn tighten_companions(file: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(db) = std::fs::metadata(file) else {
        return;
    };
    let allowed = db.permissions().mode() & 0o777;
    for suffix in ["-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if let Ok(m) = std::fs::metadata(&path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & !allowed != 0 {
                let _ = std::fs::set_permissions(
                    &path,
                    std::fs::Permissions::from_mode(mode & allowed),
                );
            }
        }
    }
}

/// An SQLite file's one writer and `readers` readers.
async fn sqlite_pools(url: &str, readers: u32) -> Result<(AnyPool, AnyPool), StoreError> {
    let unreachable = |e: sqlx::Error| StoreError::Unreachable(e.to_string());
    let options: AnyConnectOptions = url.parse().map_err(unreachable)?;
    let write = sqlite_pool(1)
        .connect_with(options.clone())
        .await
        .map_err(unreachable)?;
    let read = sqlite_pool(readers)
        .connect_with(options)
        .await
        .map_err(unreachable)?;
    Ok((write, read))
}

fn sqlite_pool(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A file cannot drop a connection the way a server can; a ping
        // before each use was one more hop to SQLite's worker thread.
        .test_before_acquire(false)
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

/// A bound value of a [`Step`].
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

/// One SQL statement with its own `$1..$n` parameters.
#[derive(Debug, Clone)]
pub struct Step {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Step {
    pub fn new(sql: impl Into<String>, args: Vec<Arg>) -> Step {
        Step {
            sql: sql.into(),
            args,
        }
    }
}

/// Renumbers `$n` placeholders by `offset` (our own SQL has no `$` in
/// literals).
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            out.push_str(&format!("${}", n + offset));
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs steps in order, in the caller's transaction, and returns the rows
/// they produce. On SQLite they go to the database in one call (each
/// statement would be a hop to SQLite's worker thread); PostgreSQL takes
/// them one by one, as prepared statements it keeps. The first failing
/// statement stops the rest; the caller rolls back.
pub async fn run_steps(
    c: &mut Conn,
    backend: Backend,
    steps: &[Step],
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            let mut sql = String::new();
            let mut args = Vec::new();
            for step in steps {
                sql.push_str(&renumber(&step.sql, args.len()));
                sql.push_str(";\n");
                args.extend(step.args.iter().cloned());
            }
            // Statements and column names are the host's own, never input.
            bind(sqlx::query(sqlx::AssertSqlSafe(sql)), &args)
                .fetch_all(&mut *c)
                .await
        }
        Backend::Postgres => run_each(c, steps).await,
    }
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &[Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v.clone()),
            Arg::Int(v) => q.bind(*v),
        };
    }
    q
}

/// Runs steps one statement at a time, on any backend.
pub async fn run_each(c: &mut Conn, steps: &[Step]) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let mut rows = Vec::new();
    for step in steps {
        rows.extend(
            bind(
                sqlx::query(sqlx::AssertSqlSafe(step.sql.clone())),
                &step.args,
            )
            .fetch_all(&mut *c)
            .await?,
        );
    }
    Ok(rows)
}

/// The named CHECK constraint a failed write broke, if that is why.
pub fn check_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if db.kind() != sqlx::error::ErrorKind::CheckViolation {
        return None;
    }
    Some(
        db.constraint()
            .map(str::to_string)
            .unwrap_or_else(|| db.message().to_string()),
    )
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

/// Opens and closes one PostgreSQL connection within [`CONNECT_TIMEOUT`], so
/// an unreachable server is named in seconds ("connection refused").
async fn first_connection(url: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) if e.to_string().to_lowercase().contains("connection refused") => Err(
            StoreError::Unreachable("connection refused: is PostgreSQL running there?".into()),
        ),
        Ok(Err(e)) => Err(StoreError::Unreachable(e.to_string())),
        Err(_) => Err(StoreError::Unreachable(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// A database URL without its user and password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &base[..scheme], &base[at..])
        }
        _ => base.to_string(),
    };
    if let Some(query) = query {
        // `?password=` (and `sslpassword`, `sslkey`, ...) carry secrets too.
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((name, _))
                    if ["pass", "secret", "key", "token"]
                        .iter()
                        .any(|s| name.to_ascii_lowercase().contains(s)) =>
                {
                    format!("{name}=***")
                }
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn redacted_urls_keep_no_password_in_userinfo_or_query() {
        assert_eq!(
            super::redact_url("mysql://app:hunter2@db:3306/c?password=x&sslmode=require"),
            "mysql://***@db:3306/c?password=***&sslmode=require"
        );
        assert_eq!(
            super::redact_url("postgres://h/c?user=a&PassWord=x&sslkey=/k"),
            "postgres://h/c?user=a&PassWord=***&sslkey=***"
        );
        assert_eq!(
            super::redact_url("sqlite://canopy.db?mode=rwc"),
            "sqlite://canopy.db?mode=rwc"
        );
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        use std::path::PathBuf;
        assert_eq!(
            super::sqlite_file("sqlite:///var/lib/c.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/c.db"))
        );
        assert_eq!(
            super::sqlite_file("sqlite://canopy.db"),
            Some(PathBuf::from("canopy.db"))
        );
        assert_eq!(super::sqlite_file("sqlite::memory:"), None);
        assert_eq!(super::sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(super::sqlite_file("postgres://h/db"), None);
    }

    #[test]
    fn placeholders_are_renumbered_for_one_batch() {
        assert_eq!(
            renumber("UPDATE t SET a = $1 WHERE id = $2 AND b = $12", 3),
            "UPDATE t SET a = $4 WHERE id = $5 AND b = $15"
        );
        assert_eq!(renumber("SELECT 1", 9), "SELECT 1");
    }
}
