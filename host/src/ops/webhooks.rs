//! Webhooks (API.md, "Traffic"; docs/WEBHOOKS.md): an account's webhooks,
//! the events the other operations record, and the worker every host runs
//! that fans events out into deliveries and attempts them.
//!
//! Events are written to the `events` outbox in the transaction of the
//! change they report. The worker (a) fans each undispatched event out
//! into one `webhook_deliveries` row per subscribed live webhook of the
//! event's account and of its tree's parent (unique per webhook and
//! event), and (b) claims due deliveries by lease and POSTs them, signed,
//! at most [`DELIVERIES_AT_ONCE`] at a time per host and each within the
//! attempt timeout, outside any transaction: a receiver that hangs holds
//! one delivery slot, never a request nor the database. A non-2xx answer,
//! a timeout or a refused address is retried with capped exponential
//! backoff and jitter until [`RETRY_WINDOW`] after the event, then the
//! delivery is `failed`. At least once: a host that dies mid-attempt
//! leaves the claim to expire and another host tries again, with the same
//! event id.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::{Canopy, Page, Paged, Principal};
use crate::domain::events::EventType;
use crate::domain::webhooks::{
    self as rules, LOG_RETENTION, RETRY_WINDOW, WEBHOOKS_PER_ACCOUNT_MAX, backoff, payload_data,
    refused_address, signature,
};
use crate::secrets::{new_id, new_secret};
use crate::store::accounts::NewAccount;
use crate::store::merges::Merge;
use crate::store::webhooks::{Attempt, Delivery, Due, Undispatched, Webhook};
use crate::store::{self, Conn, Tx};
use crate::{Error, Result};

/// Deliveries one host attempts at once.
pub const DELIVERIES_AT_ONCE: usize = 16;
/// Attempts one host makes at once to one webhook: a receiver that hangs
/// holds at most these slots, and the others go on to other receivers.
pub const PER_WEBHOOK_AT_ONCE: i64 = 4;
/// How long one attempt (connect, TLS, request, response head) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the worker looks for events and due deliveries.
const POLL: Duration = Duration::from_millis(200);
/// Events fanned out per transaction.
const DISPATCH_BATCH: i64 = 200;
/// How long a claimed delivery is this host's (wall clock): well past the
/// attempt timeout.
const CLAIM: Duration = Duration::from_secs(60);
/// The most of a failure's text kept in the delivery log.
const ERROR_MAX: usize = 300;
/// Rows one purge statement deletes at most.
const PURGE_BATCH: i64 = 10_000;
/// The `User-Agent` of deliveries.
const USER_AGENT: &str = "Canopy-Webhooks/1";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: `https://` (or `http://`), at most 2048
    /// characters, no user name or password, resolving to public addresses
    /// unless the operator allows private targets.
    #[schema(example = "https://example.com/canopy/hooks")]
    pub url: String,
    /// Event types (API.md), or `account.*` for every `account.` event.
    #[schema(example = json!(["account.*", "budget.low"]))]
    pub events: Vec<String>,
}

fn no_data_key() -> Error {
    Error::FeatureNotEnabled(
        "webhooks need a data key to seal their signing secrets, and this host has none: the operator starts every host with the same --data-key (CANOPY_DATA_KEY, 64 hex digits)".into(),
    )
}

impl Canopy {
    /// Enters an account for a webhook route and authorizes `action`.
    async fn enter_webhooks(
        &self,
        principal: &Principal,
        account_id: &str,
        action: &str,
        fields: &[&str],
    ) -> Result<super::Actor> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, action, fields).await?;
        Ok(actor)
    }

    /// `POST /v1/accounts/{id}/webhooks`: the webhook and its signing
    /// secret, shown this once.
    pub async fn create_webhook(
        &self,
        principal: &Principal,
        account_id: &str,
        req: NewWebhook,
    ) -> Result<(Webhook, String)> {
        let actor = self
            .enter_webhooks(principal, account_id, "webhook.create", &["url", "events"])
            .await?;
        super::access::require_not_deleted(&actor.target)?;
        if let Some(id) = store::idempotency::committed_resource() {
            return Err(Error::Conflict(format!(
                "webhook `{id}` was created by an earlier request with this Idempotency-Key, and its secret was shown only then: delete it and create another"
            )));
        }
        let url = rules::check_url(&req.url).map_err(|why| Error::invalid("url", why))?;
        let events =
            rules::parse_events(&req.events).map_err(|why| Error::invalid("events", why))?;
        let key = self.settings.data_key.clone().ok_or_else(no_data_key)?;
        let allow_private = {
            let mut c = self.store.reader().await?;
            super::platform_settings::read(&mut c)
                .await?
                .webhooks_allow_private
        };
        target_addresses(&url, allow_private)
            .await
            .map_err(|why| Error::invalid("url", why))?;
        let view = self.view(&actor, "webhook.create", "webhooks").await?;
        let id = new_id("wh");
        let secret = new_secret("whsec");
        let webhook = Webhook {
            sealed_secret: key.seal(&id, &secret),
            id,
            tree_id: actor.tree_parent().id.clone(),
            account_id: actor.target.id.clone(),
            url: url.to_string(),
            events: events.iter().map(|e| e.as_str().to_string()).collect(),
            hidden: view.hidden.iter().map(|g| g.to_string()).collect(),
            created_by: Some(actor.user_id.clone()),
            created_at: self.clock.now(),
        };
        let mut tx = self.store.begin().await?;
        // The count holds until commit: parallel creations wait here.
        store::accounts::lock(&mut tx, &webhook.account_id).await?;
        if store::webhooks::count_live(&mut tx, &webhook.account_id).await?
            >= WEBHOOKS_PER_ACCOUNT_MAX
        {
            return Err(Error::Conflict(format!(
                "account `{}` already has {WEBHOOKS_PER_ACCOUNT_MAX} webhooks, the most one account may have; delete one first",
                webhook.account_id
            )));
        }
        store::webhooks::insert(&mut tx, &webhook).await?;
        store::idempotency::note_resource_in(&mut tx, &webhook.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(webhook = %webhook.id, account = %webhook.account_id, events = ?webhook.events, "webhook created");
        Ok((webhook, secret))
    }

    pub async fn list_webhooks(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<Webhook>> {
        let actor = self
            .enter_webhooks(principal, account_id, "webhook.list", &[])
            .await?;
        let mut c = self.store.reader().await?;
        let items = store::webhooks::list(&mut c, &actor.target.id, page).await?;
        Ok(Paged::from_fetch(items, page, |w| {
            super::keyset_cursor(w.created_at, &w.id)
        }))
    }

    pub async fn get_webhook(
        &self,
        principal: &Principal,
        account_id: &str,
        id: &str,
    ) -> Result<Webhook> {
        let actor = self
            .enter_webhooks(principal, account_id, "webhook.list", &[])
            .await?;
        let mut c = self.store.reader().await?;
        store::webhooks::get(&mut c, &actor.target.id, id)
            .await?
            .ok_or_else(|| Error::not_found("webhook", id))
    }

    /// Deletes a webhook: nothing more is delivered to it.
    pub async fn delete_webhook(
        &self,
        principal: &Principal,
        account_id: &str,
        id: &str,
    ) -> Result<()> {
        let actor = self
            .enter_webhooks(principal, account_id, "webhook.delete", &[])
            .await?;
        let mut tx = self.store.begin().await?;
        if !store::webhooks::delete(&mut tx, &actor.target.id, id, self.clock.now_us()).await? {
            return Err(Error::not_found("webhook", id));
        }
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(webhook = %id, account = %actor.target.id, "webhook deleted");
        Ok(())
    }

    /// A webhook's delivery log, newest first.
    pub async fn list_deliveries(
        &self,
        principal: &Principal,
        account_id: &str,
        id: &str,
        page: &Page,
    ) -> Result<Paged<Delivery>> {
        let webhook = self.get_webhook(principal, account_id, id).await?;
        let mut c = self.store.reader().await?;
        let items = store::webhooks::deliveries(&mut c, &webhook.id, page).await?;
        Ok(Paged::from_fetch(items, page, |d| {
            super::keyset_cursor(d.created_at, &d.id)
        }))
    }
}

// The events other operations record, each in its own transaction.

/// `account.created`, in the sub-account's creation transaction. Data:
/// `{"name", "status", "parent_id"}`.
pub(crate) async fn account_created(c: &mut Conn, new: &NewAccount, now_us: i64) -> Result<()> {
    let parent = new.parent_id.as_deref().unwrap_or(&new.id);
    let data = json!({"name": new.name, "status": new.status.as_str(), "parent_id": new.parent_id});
    store::events::emit(c, parent, &new.id, EventType::AccountCreated, &data, now_us)
        .await
        .map(|_| ())
}

/// `account.merged` for each source of a merge, in its transaction. Data:
/// `{"merged_into", "merge_id"}`.
pub(crate) async fn accounts_merged(c: &mut Conn, merge: &Merge, now_us: i64) -> Result<()> {
    let data = json!({"merged_into": merge.target_id, "merge_id": merge.id});
    for source in &merge.sources {
        store::events::emit(
            c,
            &merge.tree_id,
            source,
            EventType::AccountMerged,
            &data,
            now_us,
        )
        .await?;
    }
    Ok(())
}

/// `operation.completed` when a bulk operation finishes (completed or
/// failed), in the transaction that finishes it. Data: `{"operation_id",
/// "kind", "status", "total", "succeeded", "failed"}`.
pub(crate) async fn operation_finished(c: &mut Conn, op_id: &str, now_us: i64) -> Result<()> {
    let Some(op) = store::operations::get(c, op_id).await? else {
        return Ok(());
    };
    let data = json!({
        "operation_id": op.id,
        "kind": op.kind.as_str(),
        "status": op.status.as_str(),
        "total": op.total,
        "succeeded": op.succeeded,
        "failed": op.failed,
    });
    store::events::emit(
        c,
        &op.tree_id,
        &op.account_id,
        EventType::OperationCompleted,
        &data,
        now_us,
    )
    .await
    .map(|_| ())
}

// Where deliveries go.

/// The addresses a target URL may be delivered to: its IP literal, or
/// every address its host name resolves to, each one checked (a name with
/// any refused address is refused, so a mixed record cannot slip through).
/// Cloud metadata addresses are refused even when private targets are
/// allowed.
pub async fn target_addresses(
    url: &url::Url,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let port = url
        .port_or_known_default()
        .ok_or("names no port and its scheme has none")?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => {
            crate::store::held::let_go();
            let resolved = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host((name, port)),
            )
            .await
            .map_err(|_| format!("host `{name}` did not resolve within 5 s"))?
            .map_err(|e| format!("host `{name}` does not resolve ({e}); check its spelling"))?
            .collect::<Vec<_>>();
            if resolved.is_empty() {
                return Err(format!("host `{name}` has no address"));
            }
            resolved
        }
        None => return Err("must name a host".into()),
    };
    for addr in &addrs {
        if let Some(why) = refused_address(addr.ip()) {
            if allow_private && why != "a cloud metadata address" {
                continue;
            }
            return Err(format!(
                "points to {why} ({}); webhooks go to public addresses: use a public host name (the operator may allow private targets with the platform setting `webhooks_allow_private`)",
                addr.ip()
            ));
        }
    }
    Ok(addrs)
}

/// POSTs `body` to `url` through a connection to `addr` (the address that
/// was checked: no second resolution), TLS for https with the URL's host
/// as the server name. Returns the HTTP status; redirects are not
/// followed (a 3xx is a failure like any non-2xx).
async fn post(
    url: &url::Url,
    addr: SocketAddr,
    body: Vec<u8>,
    signature: &str,
    event_id: &str,
) -> Result<u16, String> {
    use axum::body::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;

    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header("Canopy-Signature", signature)
        .header("Canopy-Event-Id", event_id)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = if url.scheme() == "https" {
        let name = rustls_name(url)?;
        let tls = tls_connector()
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host} failed: {e}"))?;
        send(TokioIo::new(tls), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    Ok(response)
}

async fn send<T>(
    io: T,
    request: hyper::Request<http_body_util::Full<axum::body::Bytes>>,
) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let outcome = sender
        .send_request(request)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("the request failed: {e}"));
    // The body is not read: only the status counts.
    driver.abort();
    outcome
}

fn rustls_name(
    url: &url::Url,
) -> Result<tokio_rustls::rustls::pki_types::ServerName<'static>, String> {
    use tokio_rustls::rustls::pki_types::ServerName;
    match url.host() {
        Some(url::Host::Domain(d)) => ServerName::try_from(d.to_string())
            .map_err(|e| format!("`{d}` is not a TLS server name: {e}")),
        Some(url::Host::Ipv4(ip)) => Ok(ServerName::IpAddress(IpAddr::V4(ip).into())),
        Some(url::Host::Ipv6(ip)) => Ok(ServerName::IpAddress(IpAddr::V6(ip).into())),
        None => Err("no host".into()),
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    use std::sync::LazyLock;
    use tokio_rustls::rustls;
    static CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    tokio_rustls::TlsConnector::from(CONFIG.clone())
}

// The worker.

/// Fans events out and attempts due deliveries, forever: the background
/// task every host starts.
pub async fn run_webhooks(canopy: Arc<Canopy>) {
    let host = new_id("host");
    let slots = Arc::new(Semaphore::new(DELIVERIES_AT_ONCE));
    let mut every = tokio::time::interval(POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purged_at = tokio::time::Instant::now();
    loop {
        every.tick().await;
        if purged_at.elapsed() >= canopy.settings.purge_every {
            purged_at = tokio::time::Instant::now();
            if let Err(e) = canopy.purge_webhook_log().await {
                tracing::warn!(error = %e, "purging old events and deliveries failed");
            }
        }
        if let Err(e) = canopy.dispatch_events().await {
            tracing::warn!(error = %e, "fanning events out to webhooks failed");
        }
        match canopy.start_deliveries(&host, &slots).await {
            // Some were due, maybe more are: claim again as soon as a slot
            // is free (at most a tick later), not at the next tick.
            Ok(true) => {
                if let Ok(Ok(one)) = tokio::time::timeout(POLL, slots.acquire()).await {
                    drop(one);
                }
                every.reset_immediately();
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
        }
    }
}

fn wall_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Canopy {
    /// Fans out every undispatched event, a batch per transaction.
    pub async fn dispatch_events(&self) -> Result<()> {
        {
            let mut c = self.store.reader().await?;
            if !store::webhooks::any_undispatched(&mut c).await? {
                return Ok(());
            }
        }
        loop {
            let now_us = self.clock.now_us();
            let mut tx: Tx = self.store.begin().await?;
            let events: Vec<Undispatched> =
                store::webhooks::undispatched(&mut tx, self.store.backend, DISPATCH_BATCH).await?;
            for e in &events {
                store::webhooks::fan_out(&mut tx, e, now_us).await?;
            }
            tx.commit().await.map_err(store::db_error)?;
            if (events.len() as i64) < DISPATCH_BATCH {
                return Ok(());
            }
        }
    }

    /// Deletes events and finished deliveries older than [`LOG_RETENTION`]
    /// (by the clock), a bounded batch per pass.
    pub async fn purge_webhook_log(&self) -> Result<()> {
        let before = self.clock.now_us() - LOG_RETENTION.as_micros() as i64;
        let mut tx = self.store.begin().await?;
        let (deliveries, events) = store::webhooks::purge(&mut tx, before, PURGE_BATCH).await?;
        tx.commit().await.map_err(store::db_error)?;
        if deliveries + events > 0 {
            tracing::info!(
                deliveries,
                events,
                "old webhook deliveries and events purged"
            );
        }
        Ok(())
    }

    /// Claims as many due deliveries as there are free slots and attempts
    /// each in its own task; true if it claimed any (more may be due).
    async fn start_deliveries(
        self: &Arc<Self>,
        host: &str,
        slots: &Arc<Semaphore>,
    ) -> Result<bool> {
        let Some(key) = self.settings.data_key.clone() else {
            return Ok(false); // no webhook can exist without one
        };
        let free = slots.available_permits();
        if free == 0 {
            return Ok(true);
        }

        {
            let mut c = self.store.reader().await?;
            if !store::webhooks::any_due(&mut c, self.clock.now_us(), wall_us()).await? {
                return Ok(false);
            }
        }
        let allow_private = {
            let mut c = self.store.reader().await?;
            super::platform_settings::read(&mut c)
                .await?
                .webhooks_allow_private
        };
        let wall = wall_us();
        // Longer than any attempt, so a live attempt keeps its claim.
        let claim = CLAIM.max(self.settings.webhook_attempt_timeout * 2);
        let mut tx = self.store.begin().await?;
        let due = store::webhooks::claim_due(
            &mut tx,
            self.store.backend,
            host,
            (self.clock.now_us(), wall, wall + claim.as_micros() as i64),
            (free as i64, PER_WEBHOOK_AT_ONCE),
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        let claimed = !due.is_empty();
        for d in due {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(Error::internal)?;
            let (canopy, host, key) = (self.clone(), host.to_string(), key.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let outcome = canopy.attempt(&d, &key, allow_private).await;
                if let Err(e) = canopy.record_attempt(&d, &host, outcome).await {
                    tracing::warn!(delivery = %d.id, error = %e, "recording a webhook attempt failed");
                }
            });
        }
        Ok(claimed)
    }

    /// One attempt: the HTTP status, or why there was none.
    async fn attempt(
        &self,
        d: &Due,
        key: &crate::secrets::DataKey,
        allow_private: bool,
    ) -> Result<u16, String> {
        let secret = key
            .open(&d.webhook_id, &d.sealed_secret)
            .map_err(|e| format!("the webhook's secret cannot be opened on this host: {e}"))?;
        let data: Value = serde_json::from_str(&d.event_data).unwrap_or(Value::Null);
        let body = json!({
            "id": d.event_id,
            "type": d.event_type,
            "created_at": crate::clock::from_us(d.event_created_us),
            "account_id": d.event_account_id,
            "data": payload_data(&data, &d.hidden),
        })
        .to_string()
        .into_bytes();
        let url = url::Url::parse(&d.url).map_err(|e| format!("bad URL: {e}"))?;
        let timeout = self.settings.webhook_attempt_timeout;
        tokio::time::timeout(timeout, async {
            let addrs = target_addresses(&url, allow_private).await?;
            let addr = addrs[0];
            let sig = signature(&secret, wall_us() / 1_000_000, &body);
            post(&url, addr, body, &sig, &d.event_id).await
        })
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
    }

    async fn record_attempt(
        &self,
        d: &Due,
        host: &str,
        outcome: Result<u16, String>,
    ) -> Result<()> {
        let now_us = self.clock.now_us();
        let attempts = d.attempts + 1;
        let (http_status, error) = match &outcome {
            Ok(s) if (200..300).contains(s) => (Some(*s as i64), None),
            Ok(s) => (
                Some(*s as i64),
                Some(format!("the receiver answered HTTP {s}")),
            ),
            Err(e) => (None, Some(e.chars().take(ERROR_MAX).collect::<String>())),
        };
        let next_us = now_us
            + backoff(
                attempts,
                self.settings.webhook_backoff_base,
                rand::random::<f64>(),
            )
            .as_micros() as i64;
        let give_up = next_us > d.event_created_us + RETRY_WINDOW.as_micros() as i64;
        let status = match (&error, give_up) {
            (None, _) => "delivered",
            (Some(_), true) => "failed",
            (Some(_), false) => "pending",
        };
        if let Some(e) = &error {
            tracing::info!(delivery = %d.id, webhook = %d.webhook_id, event = %d.event_id, attempts, status, error = %e, "webhook delivery attempt failed");
        }
        let attempt = Attempt {
            status,
            http_status,
            error,
            next_attempt_us: next_us,
            delivered_us: (status == "delivered").then_some(now_us),
        };
        let mut tx = self.store.begin().await?;
        let mine = store::webhooks::record(&mut tx, &d.id, host, &attempt).await?;
        tx.commit().await.map_err(store::db_error)?;
        if !mine {
            tracing::warn!(delivery = %d.id, "a webhook delivery was taken over by another host before its outcome was recorded");
        }
        Ok(())
    }
}
