//! Sending and listing messages, and the notifications an account received.
//! No real message leaves the host: a message is charged and recorded as
//! sent.

use serde::Deserialize;

use super::{Canopy, Page, Paged, Principal};
use crate::domain::Status;
use crate::domain::ledger::{self, LedgerKind};
use crate::domain::names::e164;
use crate::ops::money::alert_step;
use crate::policy::View;
use crate::secrets::new_id;
use crate::store;
use crate::store::messages::Message;
use crate::store::notifications::Notification;
use crate::{Error, Result};

/// Longest recipient address (E.164 and channel handles fit).
const RECIPIENT_LEN_MAX: usize = 64;
/// The channel whose recipients are telephone numbers (E.164).
const SMS: &str = "sms";
/// Longest message body, in characters (ten concatenated SMS segments).
const BODY_LEN_MAX: usize = 1600;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    #[schema(example = "sms")]
    pub channel: String,
    #[schema(example = "+393471234567")]
    pub to: String,
    pub body: String,
    /// The line it goes from: one the account holds, `active` (optional).
    #[schema(example = "+393470000001")]
    #[serde(default)]
    pub from: Option<String>,
}

impl Canopy {
    pub async fn send_message(
        &self,
        principal: &Principal,
        account_id: &str,
        req: NewMessage,
    ) -> Result<(Message, View)> {
        let actor = self.enter(principal, account_id).await?;
        if let Some(id) = store::idempotency::committed_resource() {
            // An earlier request with this key sent it, and its answer was
            // lost: answer from what was committed, never send again.
            let view = self.view(&actor, "message.send", "messages").await?;
            let mut c = self.store.reader().await?;
            let message = store::messages::get(&mut c, account_id, &id)
                .await?
                .ok_or_else(|| Error::internal("the committed message vanished"))?;
            return Ok((message, view));
        }
        let account = &actor.target;
        if account.status != Status::Active {
            return Err(Error::AccountSuspended(format!(
                "account `{}` is {}; only an active account sends",
                account.id, account.status
            )));
        }
        if !account.channels.contains(&req.channel) {
            return Err(Error::Forbidden(format!(
                "channel `{}` is not enabled for this account (it has {:?})",
                req.channel, account.channels
            )));
        }
        self.authorize(&actor, "message.send", &["channel", "to", "body", "from"])
            .await?;
        let to = req.to.trim();
        if to.is_empty() || to.chars().count() > RECIPIENT_LEN_MAX {
            return Err(Error::invalid(
                "to",
                format!("must be 1 to {RECIPIENT_LEN_MAX} characters"),
            ));
        }
        if req.channel == SMS {
            e164(to).map_err(|r| Error::invalid("to", r))?;
        }
        if req.body.is_empty() || req.body.chars().count() > BODY_LEN_MAX {
            return Err(Error::invalid(
                "body",
                format!("must be 1 to {BODY_LEN_MAX} characters"),
            ));
        }
        let line = self.sending_line(account, req.from.as_deref()).await?;
        let price = *account.prices.get(&req.channel).ok_or_else(|| {
            Error::invalid(
                "channel",
                format!(
                    "no price is set for `{}`; ask the platform operator to set one",
                    req.channel
                ),
            )
        })?;
        let view = self.view(&actor, "message.send", "messages").await?;
        let now = self.clock.now();
        let now_us = now.timestamp_micros();
        let message = Message {
            id: new_id("msg"),
            account_id: account.id.clone(),
            user_id: Some(actor.user_id.clone()),
            direction: store::messages::Direction::Outbound,
            channel: req.channel.clone(),
            line,
            remote: to.to_string(),
            conversation_id: None,
            campaign_id: None,
            body: req.body,
            status: "sent".into(),
            price,
            currency: account.currency.clone(),
            created_at: now,
        };
        let mut posting = ledger::usage_posting(
            account,
            actor.parent.as_ref(),
            price,
            &ledger::month_of(now),
        );
        posting.reference = Some(message.id.clone());
        store::idempotency::note_resource(&message.id);
        let refusal = |why: store::messages::Refused| {
            match why {
            store::messages::Refused::NotActive => Error::AccountSuspended(format!(
                "account `{}` was suspended while the message was being sent; it was neither sent nor charged",
                account.id
            )),
            store::messages::Refused::CurrencyChanged => Error::Conflict(
                "the account's currency changed while the message was being sent; it was neither sent nor charged, send it again".into(),
            ),
        }
        };
        crate::crashpoint::pause(crate::crashpoint::BEFORE_SEND_WRITE).await;
        let hold = (self.store.backend == store::Backend::Postgres)
            .then(|| store::messages::hold_account_step(&account.id));
        if price.decimal().is_zero() {
            let steps = hold
                .into_iter()
                .chain(store::messages::record_steps(&message, None))
                .collect();
            self.store.write_steps(steps).await.map_err(
                |e| match store::idempotency::write_error(e) {
                    Err(conflict) => conflict,
                    Ok(e) => {
                        store::messages::refused(&e).map_or_else(|| store::db_error(e), refusal)
                    }
                },
            )?;
        } else {
            // The charge, the message and any alert are one short write,
            // committed with the others that arrive at once.
            let key = format!("usage:{}", message.id);
            let mut extra = store::messages::record_steps(&message, Some(&key));
            if posting.debit.kind == LedgerKind::Budget {
                extra.extend(alert_step(account, &key, now_us));
            }
            let (id, mut steps) = store::ledger::posting_steps(&posting, &key, now_us, extra)?;
            if let Some(hold) = hold {
                steps.insert(0, hold);
            }
            let written = self.store.write_steps(steps).await;
            if let Some(why) = written.as_ref().err().and_then(store::messages::refused) {
                return Err(refusal(why));
            }
            store::ledger::posted(id, &posting, &key, written)?;
        }
        Ok((message, view))
    }

    pub async fn list_messages(
        &self,
        principal: &Principal,
        account_id: &str,
        direction: Option<store::messages::Direction>,
        page: &Page,
    ) -> Result<(Paged<Message>, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "message.list", &[]).await?;
        let view = self.view(&actor, "message.list", "messages").await?;
        // `rows: own` is a filter in the query, not a check per row.
        let own = view.own_rows_only.then_some(actor.user_id.as_str());
        let mut c = self.store.reader().await?;
        let rows = store::messages::list(
            &mut c,
            account_id,
            own,
            direction,
            &page.after,
            page.fetch_limit(),
        )
        .await?;
        Ok((Paged::from_fetch(rows, page, |m| m.id.clone()), view))
    }

    pub async fn list_notifications(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<(Paged<Notification>, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "notification.list", &[]).await?;
        let view = self
            .view(&actor, "notification.list", "notifications")
            .await?;
        let mut c = self.store.reader().await?;
        let rows =
            store::notifications::list(&mut c, account_id, &page.after, page.fetch_limit()).await?;
        Ok((Paged::from_fetch(rows, page, |n| n.id.clone()), view))
    }
}
