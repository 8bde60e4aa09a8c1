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

/// How often expired idempotency keys are purged.
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
    /// Where compiled Wasm components are kept between restarts.
    pub wasm_cache: Option<PathBuf>,
}

/// A host ready to serve.
pub struct Host {
    pub canopy: Arc<Canopy>,
    pub test_clock: bool,
    /// Set when this start generated the operator token: show it once.
    pub generated_operator_token: Option<String>,
    mailer: Option<Mailer>,
    decisions: mpsc::Receiver<decision::Record>,
}

impl Host {
    pub async fn open(config: Config) -> Result<Host, String> {
        crate::policy::wasm::set_cache_dir(config.wasm_cache.clone());
        let policies = match &config.policies_dir {
            Some(dir) => Policies::from_dir(dir, config.defaults_runtime)?,
            None => Policies::shipped(config.defaults_runtime)?,
        };
        let at = |e: store::StoreError| format!("{e} (database {})", redact(&config.database_url));
        let mailer = config.smtp.as_ref().map(Mailer::new).transpose()?;
        let store = Store::connect(&config.database_url).await.map_err(at)?;
        store.migrate().await.map_err(at)?;
        let (operator_token_hash, generated_operator_token) =
            operator_token(&store, config.operator_token.as_deref())
                .await
                .map_err(|e| format!("cannot settle the operator token: {e}"))?;
        let clock = Arc::new(Clock::default());
        let (log, decisions) = DecisionLog::new(clock.clone());
        policies.log_decisions(log);
        let canopy = Canopy {
            store,
            policies,
            clock,
            settings: config.settings,
            operator_token_hash,
            logins: Default::default(),
        };
        canopy
            .reload_policies()
            .await
            .map_err(|e| format!("cannot load the active policies: {e}"))?;
        Ok(Host {
            canopy: Arc::new(canopy),
            test_clock: config.test_clock,
            generated_operator_token,
            mailer,
            decisions,
        })
    }

    /// Serves on `listener` until `shutdown` completes; requests in flight
    /// finish first.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = crate::http::router(self.canopy.clone(), self.test_clock);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = tokio::spawn(write_decisions(
            self.canopy.clone(),
            self.decisions,
            stopped,
        ));
        let mut background = vec![
            tokio::spawn(purge_loop(self.canopy.clone())),
            tokio::spawn(follow_policies(self.canopy.clone())),
        ];
        if let Some(mailer) = self.mailer {
            background.push(tokio::spawn(deliver_forever(self.canopy.clone(), mailer)));
        }
        // The peer address is what login limits count per client.
        let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        background.iter().for_each(|task| task.abort());
        // The decisions of the last requests are written before closing.
        let _ = stop.send(true);
        let _ = writer.await;
        self.canopy.store.close().await;
        served
    }
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

async fn purge_loop(canopy: Arc<Canopy>) {
    let mut every = tokio::time::interval(canopy.settings.purge_every);
    loop {
        every.tick().await;
        let purged = async {
            let mut tx = canopy.store.begin().await?;
            let now = canopy.clock.now_us();
            let keys = store::idempotency::purge(&mut tx, now).await?;
            let settings = &canopy.settings;
            let decisions = store::decisions::purge(
                &mut tx,
                now - settings.decision_retention.as_micros() as i64,
                settings.decisions_max,
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
                let mut tx = canopy.store.begin().await?;
                store::decisions::insert(&mut tx, &batch).await?;
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

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
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
