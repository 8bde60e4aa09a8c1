//! Starting and stopping the host: open the store, run migrations, settle
//! the operator token, load policies, serve until told to stop.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::ops::outbox::{Mailer, Smtp, deliver_forever};
use crate::ops::{Canopy, Settings};
use crate::policy::{DecisionLog, DefaultsRuntime, Policies, decision};
use crate::secrets::{new_secret, sha256_hex};
use crate::store::{self, Store};

/// A connection that has not sent a whole request head within this long is
/// closed (slow-header clients hold no connection slot for long).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, requests in flight get this long to finish; then their
/// connections are closed and the process exits.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

const OPERATOR_TOKEN_SETTING: &str = "operator_token_sha256";

/// Everything `canopy serve` is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// `None`: use the stored hash, or generate a token on first start.
    pub operator_token: Option<String>,
    /// `None`: the shipped defaults compiled into the binary.
    pub policies_dir: Option<PathBuf>,
    pub test_clock: bool,
    pub settings: Settings,
    /// Deliver notifications over SMTP; `None` keeps them in the outbox only.
    pub smtp: Option<Smtp>,
    /// The runtime the shipped defaults run in.
    pub defaults_runtime: DefaultsRuntime,
    /// The private directory where compiled Wasm components are kept
    /// between restarts (`None`: in memory only); see
    /// [`crate::policy::wasm_cache::default_dir`] for the default.
    pub wasm_cache: Option<PathBuf>,
}

/// A host ready to serve.
pub struct Host {
    pub canopy: Arc<Canopy>,
    pub test_clock: bool,
    /// Set when this start generated the operator token: show it once.
    pub generated_operator_token: Option<String>,
    /// The operator token is the stored one (no `--operator-token`), so a
    /// rotation in the database replaces it on this host too.
    follows_stored_token: bool,
    mailer: Option<Mailer>,
    decisions: mpsc::Receiver<decision::Record>,
    /// What `/metrics` shows; the decision log counts into it too.
    metrics: Arc<crate::metrics::Metrics>,
}

impl Host {
    pub async fn open(config: Config) -> Result<Host, String> {
        crate::policy::wasm::set_cache_dir(config.wasm_cache.clone())?;
        let mut policies = match &config.policies_dir {
            Some(dir) => Policies::from_dir(dir, config.defaults_runtime)?,
            None => Policies::shipped(config.defaults_runtime)?,
        };
        policies.set_breaker(
            config.settings.breaker_failures,
            config.settings.breaker_cool_down,
        );
        let at = |e: store::StoreError| {
            format!("{e} (database {})", store::redact_url(&config.database_url))
        };
        let mailer = config.smtp.as_ref().map(Mailer::new).transpose()?;
        let store = Store::connect(&config.database_url).await.map_err(at)?;
        let mut settings = config.settings;
        if settings.data_key.is_none() {
            settings.data_key = default_data_key(&config.database_url)?;
        }
        store.migrate().await.map_err(at)?;
        let (operator_token_hash, generated_operator_token) =
            operator_token(&store, config.operator_token.as_deref())
                .await
                .map_err(|e| format!("cannot settle the operator token: {e}"))?;
        let clock = Arc::new(Clock::default());
        policies.use_clock(clock.clone());
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (log, decisions) = DecisionLog::new(clock.clone());
        policies.log_decisions(log.counted_in(metrics.clone()));
        let canopy = Canopy {
            store,
            policies,
            clock,
            settings,
            operator_token_hash: std::sync::RwLock::new(operator_token_hash),
            logins: Default::default(),
        };
        canopy
            .reload_policies()
            .await
            .map_err(|e| format!("cannot load the active policies: {e}"))?;
        if config.test_clock {
            crate::crashpoint::arm_from_env();
        }
        Ok(Host {
            canopy: Arc::new(canopy),
            test_clock: config.test_clock,
            generated_operator_token,
            follows_stored_token: config.operator_token.is_none(),
            mailer,
            decisions,
            metrics,
        })
    }

    /// Serves on `listener` until `shutdown` completes; requests in flight
    /// then get `shutdown_drain` to finish.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router =
            crate::http::router(self.canopy.clone(), self.metrics.clone(), self.test_clock);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = tokio::spawn(write_decisions(
            self.canopy.clone(),
            self.decisions,
            stopped,
        ));
        let mut background = vec![
            tokio::spawn(purge_loop(self.canopy.clone())),
            tokio::spawn(follow_policies(self.canopy.clone())),
            tokio::spawn(crate::ops::billing::close_forever(self.canopy.clone())),
            tokio::spawn(purge_deleted_accounts(self.canopy.clone(), self.test_clock)),
            tokio::spawn(crate::ops::operations::run_operations(self.canopy.clone())),
            tokio::spawn(crate::ops::campaigns::run_campaigns(self.canopy.clone())),
            tokio::spawn(crate::ops::webhooks::run_webhooks(self.canopy.clone())),
        ];
        if self.follows_stored_token {
            background.push(tokio::spawn(follow_operator_token(self.canopy.clone())));
        }
        if let Some(mailer) = self.mailer {
            background.push(tokio::spawn(deliver_forever(self.canopy.clone(), mailer)));
        }
        let served = serve(listener, router, &self.canopy.settings, shutdown).await;
        background.iter().for_each(|task| task.abort());
        // The decisions of the last requests are written before closing.
        let _ = stop.send(true);
        let _ = writer.await;
        self.canopy.store.close().await;
        served
    }
}

/// After an accept error that is not about one connection (too many open
/// files), wait this long before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves HTTP/1.1 until `shutdown`: a connection that does not send a
/// request head within `header_read_timeout` is closed; at shutdown no new
/// connection is taken, idle ones close, and requests in flight get
/// `shutdown_drain` before the rest are closed.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    settings: &Settings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                ) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // The peer address is what login limits count per client.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "draining: no new connections; requests in flight finish"
    );
    if tokio::time::timeout(settings.shutdown_drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            drain = ?settings.shutdown_drain,
            "connections still open after the drain; closing them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// The operator token's hash: from the flag, from storage, or generated now
/// (and then returned once so it can be printed).
async fn operator_token(
    store: &Store,
    given: Option<&str>,
) -> crate::Result<(String, Option<String>)> {
    if let Some(token) = given {
        return Ok((sha256_hex(token.as_bytes()), None));
    }
    let mut tx = store.begin().await?;
    if let Some(hash) = store::settings::get(&mut tx, OPERATOR_TOKEN_SETTING).await? {
        return Ok((hash, None));
    }
    let token = new_secret("cop");
    let hash = sha256_hex(token.as_bytes());
    let stored = store::settings::insert_if_absent(&mut tx, OPERATOR_TOKEN_SETTING, &hash).await?;
    tx.commit().await.map_err(store::db_error)?;
    // Another host may have generated one first; its token is the one.
    Ok(if stored == hash {
        (hash, Some(token))
    } else {
        (stored, None)
    })
}

/// Replaces the stored operator token with a new one and returns it (shown
/// once). Hosts that took their token from the database follow within a
/// poll; hosts started with `--operator-token` keep theirs.
pub async fn rotate_operator_token(store: &Store) -> crate::Result<String> {
    let token = new_secret("cop");
    let mut tx = store.begin().await?;
    store::settings::put(
        &mut tx,
        OPERATOR_TOKEN_SETTING,
        &sha256_hex(token.as_bytes()),
    )
    .await?;
    tx.commit().await.map_err(store::db_error)?;
    Ok(token)
}

/// Takes up a rotated operator token (every `policy_poll`).
async fn follow_operator_token(canopy: Arc<Canopy>) {
    let mut every = tokio::time::interval(canopy.settings.policy_poll);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let stored = async {
            let mut c = canopy.store.reader().await?;
            store::settings::get(&mut c, OPERATOR_TOKEN_SETTING).await
        }
        .await;
        match stored {
            Ok(Some(hash)) => {
                let mut current = canopy
                    .operator_token_hash
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                if *current != hash {
                    tracing::info!("the operator token was rotated; the new one is in force");
                    *current = hash;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "checking the operator token failed"),
        }
    }
}

async fn purge_loop(canopy: Arc<Canopy>) {
    let mut every = tokio::time::interval(canopy.settings.purge_every);
    loop {
        every.tick().await;
        let purged = async {
            let now = canopy.clock.now_us();
            let mut tx = canopy.store.begin().await?;
            let keys = store::idempotency::purge(&mut tx, now).await?;
            tx.commit().await.map_err(store::db_error)?;
            let settings = &canopy.settings;
            let mut tx = canopy.store.log_begin().await?;
            let decisions = store::decisions::purge(
                &mut tx,
                now - settings.decision_retention.as_micros() as i64,
                settings.decisions_max_per_tree,
            )
            .await?;
            tx.commit().await.map_err(store::db_error)?;
            Ok::<_, crate::Error>((keys, decisions))
        }
        .await;
        match purged {
            Ok((0, 0)) => {}
            Ok((keys, decisions)) => {
                tracing::info!(
                    keys,
                    decisions,
                    "expired idempotency keys and decisions purged"
                )
            }
            Err(e) => tracing::warn!(error = %e, "purging failed"),
        }
    }
}

/// Under `--test-clock` the purge of deleted accounts looks every second,
/// so a test that moves the clock past the retention period sees it soon.
const TEST_CLOCK_PURGE_EVERY: Duration = Duration::from_secs(1);

/// Purges deleted accounts whose retention period ended (every host; each
/// account once).
async fn purge_deleted_accounts(canopy: Arc<Canopy>, test_clock: bool) {
    let period = if test_clock {
        TEST_CLOCK_PURGE_EVERY
    } else {
        canopy.settings.purge_every
    };
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = canopy.purge_deleted_accounts().await {
            tracing::warn!(error = %e, "purging deleted accounts failed");
        }
    }
}

/// Reloads the registry whenever another host changes the active policies.
async fn follow_policies(canopy: Arc<Canopy>) {
    let mut every = tokio::time::interval(canopy.settings.policy_poll);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = canopy.sync_policies(false).await {
            tracing::warn!(error = %e, "checking for policy changes failed");
        }
    }
}

/// Decisions are written in batches, outside the operations' transactions.
const DECISION_BATCH_EVERY: Duration = Duration::from_millis(100);
const DECISION_BATCH_MAX: usize = 5_000;

async fn write_decisions(
    canopy: Arc<Canopy>,
    mut queue: mpsc::Receiver<decision::Record>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(DECISION_BATCH_MAX);
    loop {
        let stopping = tokio::select! {
            n = queue.recv_many(&mut batch, DECISION_BATCH_MAX) => n == 0,
            _ = stop.changed() => true,
        };
        if !stopping {
            // Let a burst gather into one transaction.
            tokio::time::sleep(DECISION_BATCH_EVERY).await;
        }
        while batch.len() < DECISION_BATCH_MAX
            && let Ok(r) = queue.try_recv()
        {
            batch.push(r);
        }
        if !batch.is_empty() {
            let written = async {
                let mut tx = canopy.store.log_begin().await?;
                store::decisions::insert(&mut tx, canopy.store.backend, &batch).await?;
                tx.commit().await.map_err(store::db_error)
            }
            .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, lost = batch.len(), "writing decisions failed");
            }
            batch.clear();
        }
        if stopping && queue.is_empty() {
            return;
        }
    }
}

/// What the data key's file is called beside an SQLite database.
pub const DATA_KEY_FILE: &str = "canopy-data.key";

/// The data key when none was given: on SQLite, a private key file beside
/// the database (made on first start; one database, one host); for an
/// in-memory database a key for this process alone; on PostgreSQL none
/// (the hosts must share one: `--data-key`).
fn default_data_key(database_url: &str) -> Result<Option<crate::secrets::DataKey>, String> {
    use crate::secrets::{DataKey, KEY_BYTES, load_or_make_key_file};
    if !database_url.starts_with("sqlite:") {
        return Ok(None);
    }
    match store::sqlite_file(database_url) {
        Some(file) => {
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let key = load_or_make_key_file(&dir.join(DATA_KEY_FILE), "data key")?;
            Ok(Some(DataKey::from_bytes(key)))
        }
        None => {
            let mut key = [0u8; KEY_BYTES];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            Ok(Some(DataKey::from_bytes(key)))
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down; letting requests in flight finish");
}
