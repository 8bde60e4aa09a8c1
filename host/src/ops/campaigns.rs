//! Campaigns (API.md, "Traffic"): one body sent to up to 10,000 recipients
//! at `scheduled_at`, each recipient one charged message, exactly once.
//!
//! A request is checked like a send (channel enabled, price set, every
//! recipient as `to` is checked, the body's length), authorized once
//! (`campaign.create`) and stored with one `campaign_recipients` row per
//! recipient in one transaction (the Idempotency-Key names the campaign).
//! Every host runs [`run_campaigns`]: it claims a due campaign (the clock
//! says `scheduled_at <= now`) with a lease and sends it in chunks of
//! [`CHUNK`] recipients, each chunk one transaction that first holds the
//! account (PostgreSQL `FOR SHARE`) and renews the lease (`status =
//! 'sending'`, holding the campaign's row), then per recipient, inside a
//! savepoint: the charge (the very statements of a send,
//! `messages::charged_message`), the message (`campaign_id` set) and the
//! recipient's outcome `WHERE outcome IS NULL`; then the `sent` counter. A
//! recipient is therefore charged exactly once, whatever host sends it and
//! wherever a process dies; a cancel, a cascade's `queue` or `delete`
//! commits between two chunks and the next chunk sees it.
//!
//! A campaign stops (`stopped`, with `stop_reason`) when a recipient cannot
//! be paid (`insufficient_funds`: the ledger's floor or limit), or when at
//! a chunk's start its account is not active (`account_not_active`: a
//! cascade policy kept it while suspending the account), its channel was
//! disabled (`channel_disabled`), its price removed (`no_price`), its line
//! no longer held (`line_not_held`) or its tree's currency changed
//! (`currency_changed`). What was sent stays sent and charged. A campaign
//! that ends (`completed` or `stopped`) emits `campaign.completed` in the
//! transaction that ends it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::messages::{Unsent, channel_enabled, charged_message, check_body, price_of, recipient};
use super::{Canopy, Page, Paged, Principal};
use crate::domain::Status;
use crate::domain::events::EventType;
use crate::error::FieldError;
use crate::policy::View;
use crate::secrets::new_id;
use crate::store::campaigns::{Among, Campaign, CampaignStatus};
use crate::store::messages::{Direction, Message, Refused};
use crate::store::{self, Tx};
use crate::{Error, Result};

/// Most recipients of one campaign (API.md).
pub const RECIPIENTS_MAX: usize = 10_000;
/// Bad recipients named in one refusal.
const ERRORS_SHOWN: usize = 100;
/// Longest campaign name, in characters.
const NAME_LEN_MAX: usize = 200;
/// How far in the past `scheduled_at` may be (a client's clock skew): such
/// a campaign is sent at once. Further back is refused.
const PAST_TOLERANCE_SECS: i64 = 300;
/// How far ahead a campaign may be scheduled.
const AHEAD_MAX_DAYS: i64 = 366;
/// Recipients per chunk: one transaction, so SQLite's writer and a
/// PostgreSQL account's row are never held long, and a cancel or a
/// cascade waits at most one chunk.
pub const CHUNK: i64 = 100;
/// How often an idle host looks for due campaigns: often enough that a
/// moved test clock is noticed at once (a host is also woken by the
/// campaigns it stores itself).
const POLL: Duration = Duration::from_millis(200);

/// Wakes this process's worker when it stored a campaign.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Why a campaign stopped before its last recipient.
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
pub const ACCOUNT_NOT_ACTIVE: &str = "account_not_active";
const CHANNEL_DISABLED: &str = "channel_disabled";
const NO_PRICE: &str = "no_price";
const LINE_NOT_HELD: &str = "line_not_held";
const CURRENCY_CHANGED: &str = "currency_changed";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    #[schema(example = "Spring sale")]
    pub name: String,
    #[schema(example = "sms")]
    pub channel: String,
    /// A line (E.164) the account holds, `active`; left out, the messages
    /// name no line.
    #[schema(example = "+393471234567")]
    pub from: Option<String>,
    /// 1 to 10,000 recipients, each as a message's `to`, no duplicates.
    pub recipients: Vec<String>,
    pub body: String,
    /// RFC 3339. Up to 5 minutes in the past means now; at most 366 days
    /// ahead.
    #[schema(example = "2026-12-01T09:00:00Z")]
    pub scheduled_at: String,
}

/// `scheduled_at` parsed and held to its window around `now`.
fn scheduled_at(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| {
            Error::invalid(
                "scheduled_at",
                "must be an RFC 3339 time with its offset, e.g. 2026-12-01T09:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    if at < now - chrono::Duration::seconds(PAST_TOLERANCE_SECS) {
        return Err(Error::invalid(
            "scheduled_at",
            format!(
                "is more than {} minutes in the past; give a future time, or now to send at once",
                PAST_TOLERANCE_SECS / 60
            ),
        ));
    }
    if at > now + chrono::Duration::days(AHEAD_MAX_DAYS) {
        return Err(Error::invalid(
            "scheduled_at",
            format!("is more than {AHEAD_MAX_DAYS} days ahead; schedule it later"),
        ));
    }
    Ok(at)
}

/// The recipients, each checked as a send's `to` and once only; every bad
/// one is named (`recipients[i]`, the first 100).
fn recipients(channel: &str, raw: &[String]) -> Result<Vec<String>> {
    if raw.is_empty() || raw.len() > RECIPIENTS_MAX {
        return Err(Error::invalid(
            "recipients",
            format!(
                "must list 1 to {RECIPIENTS_MAX} recipients (it has {}); split a larger audience into several campaigns",
                raw.len()
            ),
        ));
    }
    let mut seen = std::collections::HashMap::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut bad = 0usize;
    for (i, r) in raw.iter().enumerate() {
        let reason = match recipient(channel, r) {
            Ok(to) => match seen.insert(to.clone(), i) {
                Some(first) => Some(format!(
                    "repeats recipients[{first}]; each recipient gets one message, list it once"
                )),
                None => {
                    out.push(to);
                    None
                }
            },
            Err(why) => Some(why),
        };
        if let Some(reason) = reason {
            bad += 1;
            if errors.len() < ERRORS_SHOWN {
                errors.push(FieldError::new(format!("recipients[{i}]"), reason));
            }
        }
    }
    if bad > 0 {
        return Err(Error::Validation {
            detail: format!(
                "{bad} of {} recipients are refused{}; fix or remove them and send the campaign again",
                raw.len(),
                if bad > ERRORS_SHOWN {
                    format!(" (the first {ERRORS_SHOWN} are named)")
                } else {
                    String::new()
                }
            ),
            errors,
            policy: None,
        });
    }
    Ok(out)
}

impl Canopy {
    /// `POST /v1/accounts/{id}/campaigns`.
    pub async fn create_campaign(
        &self,
        principal: &Principal,
        account_id: &str,
        req: NewCampaign,
    ) -> Result<(Campaign, View)> {
        let actor = self.enter(principal, account_id).await?;
        let account = &actor.target;
        if account.status != Status::Active {
            return Err(Error::AccountSuspended(format!(
                "account `{}` is {}; only an active account schedules campaigns",
                account.id, account.status
            )));
        }
        channel_enabled(account, &req.channel)?;
        self.authorize(
            &actor,
            "campaign.create",
            &[
                "name",
                "channel",
                "from",
                "recipients",
                "body",
                "scheduled_at",
            ],
        )
        .await?;
        let view = self.view(&actor, "campaign.create", "campaigns").await?;
        if let Some(id) = store::idempotency::committed_resource() {
            // An earlier request with this key stored it: never a second.
            let mut c = self.store.reader().await?;
            let campaign = store::campaigns::get(&mut c, &id)
                .await?
                .ok_or_else(|| Error::internal("a committed campaign vanished"))?;
            return Ok((campaign, view));
        }
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > NAME_LEN_MAX {
            return Err(Error::invalid(
                "name",
                format!("must be 1 to {NAME_LEN_MAX} characters"),
            ));
        }
        check_body(&req.body)?;
        let now = self.clock.now();
        let at = scheduled_at(&req.scheduled_at, now)?;
        let to = recipients(&req.channel, &req.recipients)?;
        price_of(account, &req.channel)?;
        // The same lines a send may go from.
        let line = self.sending_line(account, req.from.as_deref()).await?;
        let campaign = Campaign {
            id: new_id("cmp"),
            tree_id: account.tree_root_id().to_string(),
            account_id: account.id.clone(),
            created_by: actor.user_id.clone(),
            name: name.to_string(),
            channel: req.channel,
            line,
            body: req.body,
            scheduled_at: at,
            status: CampaignStatus::Scheduled,
            stop_reason: None,
            total: to.len() as i64,
            sent: 0,
            failed: 0,
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        let mut tx = self.store.begin().await?;
        store::campaigns::insert(&mut tx, &campaign, &to).await?;
        store::idempotency::note_resource_in(&mut tx, &campaign.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        WAKE.notify_waiters();
        tracing::info!(campaign = %campaign.id, account = %campaign.account_id, total = campaign.total, "campaign scheduled");
        Ok((campaign, view))
    }

    /// `GET /v1/accounts/{id}/campaigns`, newest first.
    pub async fn list_campaigns(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<(Paged<Campaign>, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "campaign.list", &[]).await?;
        let view = self.view(&actor, "campaign.list", "campaigns").await?;
        let mut c = self.store.reader().await?;
        let rows = store::campaigns::list(&mut c, Among::Account(&actor.target.id), page).await?;
        Ok((
            Paged::from_fetch(rows, page, |k| super::keyset_cursor(k.created_at, &k.id)),
            view,
        ))
    }

    /// `GET /v1/accounts/{id}/campaigns/{campaign_id}`: its progress.
    pub async fn get_campaign(
        &self,
        principal: &Principal,
        account_id: &str,
        campaign_id: &str,
    ) -> Result<(Campaign, View)> {
        self.campaign_in(principal, account_id, campaign_id, "campaign.list")
            .await
            .map(|(_, campaign, view)| (campaign, view))
    }

    /// A campaign of the account in the path, after `action` was
    /// authorized (404 for one of another account, whatever its tree).
    async fn campaign_in(
        &self,
        principal: &Principal,
        account_id: &str,
        campaign_id: &str,
        action: &str,
    ) -> Result<(super::Actor, Campaign, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, action, &[]).await?;
        let view = self.view(&actor, action, "campaigns").await?;
        let mut c = self.store.reader().await?;
        let campaign = store::campaigns::get(&mut c, campaign_id)
            .await?
            .filter(|k| k.account_id == actor.target.id)
            .ok_or_else(|| Error::not_found("campaign", campaign_id))?;
        Ok((actor, campaign, view))
    }

    /// `POST /v1/accounts/{id}/campaigns/{campaign_id}/cancel`: nothing
    /// more is sent (a chunk in flight commits first); what was sent stays.
    pub async fn cancel_campaign(
        &self,
        principal: &Principal,
        account_id: &str,
        campaign_id: &str,
    ) -> Result<(Campaign, View)> {
        let (_, found, view) = self
            .campaign_in(principal, account_id, campaign_id, "campaign.cancel")
            .await?;
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        let canceled = store::campaigns::cancel(&mut tx, &found.id, now_us).await?;
        let campaign = store::campaigns::get(&mut tx, &found.id)
            .await?
            .ok_or_else(|| Error::internal("a campaign vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        // Canceling a canceled campaign again (a retried request) is done.
        if !canceled && campaign.status != CampaignStatus::Canceled {
            return Err(Error::Conflict(format!(
                "campaign `{}` is {}; only a scheduled, queued or sending campaign can be canceled",
                campaign.id,
                campaign.status.as_str()
            )));
        }
        Ok((campaign, view))
    }

    /// `GET /v1/operator/accounts/{id}/campaigns`: a parent's whole tree,
    /// or one sub-account's, also while the tree is suspended.
    pub async fn operator_list_campaigns(
        &self,
        account_id: &str,
        page: &Page,
    ) -> Result<Paged<Campaign>> {
        let mut c = self.store.reader().await?;
        let account = store::accounts::get(&mut c, account_id)
            .await?
            .ok_or_else(|| Error::not_found("account", account_id))?;
        drop(c);
        self.authorize_operator("campaign.list", Some(&account))
            .await?;
        let among = if account.is_parent() {
            Among::Tree(&account.id)
        } else {
            Among::Account(&account.id)
        };
        let mut c = self.store.reader().await?;
        let rows = store::campaigns::list(&mut c, among, page).await?;
        Ok(Paged::from_fetch(rows, page, |k| {
            super::keyset_cursor(k.created_at, &k.id)
        }))
    }
}

/// Wall-clock microseconds, for leases (never the movable test clock: two
/// hosts must agree on when a lease ends).
fn wall_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// What one chunk found.
enum Chunk {
    /// Recipients remain.
    More,
    /// The campaign ended (completed or stopped).
    Done,
    /// It is no longer this host's to send: canceled, queued or deleted by
    /// a cascade, or taken over by another host after the lease expired.
    Lost,
}

/// Sends due campaigns forever: the background task every host starts.
pub async fn run_campaigns(canopy: Arc<Canopy>) {
    let host = new_id("host");
    super::operations::work_forever("sending a campaign", &WAKE, POLL, || {
        canopy.send_due_campaign(&host)
    })
    .await
}

/// The event a campaign's end emits: the campaign as its account's admins
/// see it.
fn completed_event(
    k: &Campaign,
    stop_reason: Option<&str>,
    sent: i64,
    now_us: i64,
) -> serde_json::Value {
    serde_json::json!({
        "id": k.id,
        "account_id": k.account_id,
        "name": k.name,
        "channel": k.channel,
        "status": if stop_reason.is_some() { "stopped" } else { "completed" },
        "stop_reason": stop_reason,
        "total": k.total,
        "sent": sent,
        "failed": k.failed,
        "scheduled_at": k.scheduled_at,
        "finished_at": crate::clock::from_us(now_us),
    })
}

impl Canopy {
    fn campaign_lease_until(&self) -> i64 {
        wall_us() + self.settings.operation_lease.as_micros() as i64
    }

    /// Claims one due campaign and sends it to its end (or until it stops
    /// being this host's); false if none was due.
    pub async fn send_due_campaign(&self, host: &str) -> Result<bool> {
        let now = (self.clock.now_us(), wall_us());
        {
            let mut c = self.store.reader().await?;
            if !store::campaigns::any_due(&mut c, now.0, now.1).await? {
                return Ok(false);
            }
        }
        let mut tx = self.store.begin().await?;
        let claimed = store::campaigns::claim(
            &mut tx,
            self.store.backend,
            host,
            now,
            self.campaign_lease_until(),
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        let Some(campaign) = claimed else {
            return Ok(true);
        };
        tracing::info!(campaign = %campaign.id, total = campaign.total, sent = campaign.sent, "campaign claimed");
        loop {
            let chunk = match self.send_chunk(&campaign, host).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Nothing of the failed chunk committed; let any host
                    // (this one too) go on from the same recipients.
                    let mut tx = self.store.begin().await?;
                    store::campaigns::release(&mut tx, &campaign.id, host).await?;
                    tx.commit().await.map_err(store::db_error)?;
                    return Err(e);
                }
            };
            match chunk {
                Chunk::More => {
                    crate::crashpoint::hit(crate::crashpoint::BETWEEN_CAMPAIGN_CHUNKS);
                    tokio::task::yield_now().await;
                }
                Chunk::Done => {
                    tracing::info!(campaign = %campaign.id, "campaign ended");
                    return Ok(true);
                }
                Chunk::Lost => {
                    tracing::info!(campaign = %campaign.id, "campaign no longer this host's to send");
                    return Ok(true);
                }
            }
        }
    }

    /// Ends a campaign in the chunk's transaction, with its event.
    async fn end_campaign(
        tx: &mut Tx,
        k: &Campaign,
        host: &str,
        stop_reason: Option<&str>,
        now_us: i64,
    ) -> Result<()> {
        if !store::campaigns::finish(tx, &k.id, host, stop_reason, now_us).await? {
            return Err(Error::internal(format!(
                "campaign {} was not this host's to finish",
                k.id
            )));
        }
        let sent = store::campaigns::get(tx, &k.id)
            .await?
            .map_or(k.sent, |now| now.sent);
        store::events::emit(
            tx,
            &k.tree_id,
            &k.account_id,
            EventType::CampaignCompleted,
            &completed_event(k, stop_reason, sent, now_us),
            now_us,
        )
        .await?;
        tracing::info!(campaign = %k.id, sent, stop_reason, "campaign finished");
        Ok(())
    }

    /// One chunk in one transaction: hold the account, renew the lease
    /// (holding the campaign's row), send up to [`CHUNK`] recipients, count
    /// them, and end the campaign when none remain or one cannot be paid.
    async fn send_chunk(&self, k: &Campaign, host: &str) -> Result<Chunk> {
        let backend = self.store.backend;
        let mut tx = self.store.begin().await?;
        store::campaigns::account_status_held(&mut tx, backend, &k.account_id).await?;
        if !store::campaigns::renew(&mut tx, &k.id, host, self.campaign_lease_until()).await? {
            return Ok(Chunk::Lost);
        }
        let now = self.clock.now();
        let now_us = now.timestamp_micros();
        let account = store::accounts::get(&mut tx, &k.account_id)
            .await?
            .ok_or_else(|| Error::internal("a campaign's account vanished"))?;
        let parent = match &account.parent_id {
            Some(p) => store::accounts::get(&mut tx, p).await?,
            None => None,
        };
        let price = account.prices.get(&k.channel).copied();
        let stop = if account.status != Status::Active {
            Some(ACCOUNT_NOT_ACTIVE)
        } else if !account.channels.contains(&k.channel) {
            Some(CHANNEL_DISABLED)
        } else if price.is_none() {
            Some(NO_PRICE)
        } else if !k.line.is_empty()
            && !store::campaigns::holds_active_line(&mut tx, &k.account_id, &k.line).await?
        {
            Some(LINE_NOT_HELD)
        } else {
            None
        };
        if let Some(reason) = stop {
            Self::end_campaign(&mut tx, k, host, Some(reason), now_us).await?;
            tx.commit().await.map_err(store::db_error)?;
            return Ok(Chunk::Done);
        }
        let price = price.expect("checked above");
        let pending = store::campaigns::pending(&mut tx, &k.id, CHUNK).await?;
        let mut sent = 0i64;
        let mut stop = None;
        for (seq, to) in &pending {
            let message = Message {
                id: new_id("msg"),
                account_id: account.id.clone(),
                user_id: Some(k.created_by.clone()),
                direction: Direction::Outbound,
                channel: k.channel.clone(),
                line: k.line.clone(),
                remote: to.clone(),
                body: k.body.clone(),
                status: "sent".into(),
                price,
                currency: account.currency.clone(),
                conversation_id: None,
                campaign_id: Some(k.id.clone()),
                created_at: now,
            };
            let (steps, charge) = charged_message(&account, parent.as_ref(), &message, now_us)?;
            savepoint(&mut tx, "SAVEPOINT recipient").await?;
            let written = store::run_steps(&mut tx, backend, &steps).await;
            match charge.outcome(written) {
                Ok(()) => {}
                Err(unsent) => {
                    savepoint(&mut tx, "ROLLBACK TO SAVEPOINT recipient").await?;
                    stop = Some(match unsent {
                        Unsent::Error(Error::InsufficientFunds(why)) => {
                            tracing::info!(campaign = %k.id, seq, %why, "campaign cannot pay its next recipient");
                            INSUFFICIENT_FUNDS
                        }
                        Unsent::Refused(Refused::NotActive) => ACCOUNT_NOT_ACTIVE,
                        Unsent::Refused(Refused::CurrencyChanged) => CURRENCY_CHANGED,
                        Unsent::Error(e) => return Err(e),
                    });
                    break;
                }
            }
            if !store::campaigns::mark_sent(&mut tx, &k.id, *seq, &message.id).await? {
                // Sent elsewhere already: this chunk must not send it again.
                return Err(Error::internal(format!(
                    "recipient {seq} of campaign {} already had an outcome",
                    k.id
                )));
            }
            savepoint(&mut tx, "RELEASE SAVEPOINT recipient").await?;
            sent += 1;
        }
        store::campaigns::count_sent(&mut tx, &k.id, sent).await?;
        let done = stop.is_some() || (pending.len() as i64) < CHUNK;
        if done {
            Self::end_campaign(&mut tx, k, host, stop, now_us).await?;
        }
        tx.commit().await.map_err(store::db_error)?;
        Ok(if done { Chunk::Done } else { Chunk::More })
    }
}

async fn savepoint(tx: &mut Tx, sql: &'static str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map_err(store::db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_at_takes_rfc_3339_within_its_window() {
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        let at = scheduled_at("2026-12-01T09:00:00+01:00", now).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-01T08:00:00+00:00");
        // A little in the past is now (clock skew); more is refused.
        assert!(scheduled_at("2026-11-30T11:56:00Z", now).is_ok());
        for bad in [
            "2026-11-30T11:50:00Z",
            "2026-12-01",
            "tomorrow",
            "2028-01-01T00:00:00Z",
        ] {
            let Err(Error::Validation { errors, .. }) = scheduled_at(bad, now) else {
                panic!("{bad} accepted")
            };
            assert_eq!(errors[0].field, "scheduled_at");
        }
    }

    #[test]
    fn every_bad_recipient_is_named_up_to_a_hundred() {
        let list: Vec<String> = ["+14155550100", "555", "+14155550100", "+14155550101"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let Err(Error::Validation { errors, detail, .. }) = recipients("sms", &list) else {
            panic!("accepted")
        };
        assert_eq!(errors.len(), 2, "{detail}");
        assert_eq!(errors[0].field, "recipients[1]");
        assert_eq!(errors[1].field, "recipients[2]");
        assert!(
            errors[1].reason.contains("recipients[0]"),
            "{}",
            errors[1].reason
        );
        let many: Vec<String> = (0..500).map(|i| format!("bad{i}")).collect();
        let Err(Error::Validation { errors, detail, .. }) = recipients("sms", &many) else {
            panic!("accepted")
        };
        assert_eq!(errors.len(), ERRORS_SHOWN);
        assert!(detail.starts_with("500 of 500"), "{detail}");
        assert!(recipients("sms", &[]).is_err());
        let too_many: Vec<String> = (0..=RECIPIENTS_MAX)
            .map(|i| format!("+1415{i:07}"))
            .collect();
        assert!(recipients("sms", &too_many).is_err());
        assert_eq!(
            recipients("whatsapp", &["  alice ".into()]).unwrap(),
            ["alice"]
        );
    }
}
