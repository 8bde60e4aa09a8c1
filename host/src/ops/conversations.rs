//! Lines messages go from and come to, inbound messages, and conversation
//! lists (API.md, "Traffic"; docs/TRAFFIC.md).
//!
//! An inbound message is stored in the account holding its line `to` (the
//! parent when the line is in the Available pool):
//! - holder `active`: stored, and charged when the tree's prices have
//!   `{channel}_inbound` (like a send: one write with the transfer);
//! - holder `invited` or `suspended`: stored and counted, never charged
//!   (the carrier has delivered it already; refusing would lose the
//!   customer's message, and a suspended account is not debited);
//! - holder `deleted` (merged included), or the line `disconnected`: 409,
//!   nothing stored (a deleted account's personal data is purged, so none
//!   is added to it).

use serde::Deserialize;

use super::{Canopy, Page, Paged, Principal};
use crate::domain::Status;
use crate::domain::account::Account;
use crate::domain::events::EventType;
use crate::domain::ledger;
use crate::domain::names::e164;
use crate::policy::View;
use crate::secrets::new_id;
use crate::store;
use crate::store::conversations::Conversation;
use crate::store::messages::{Direction, Message};
use crate::{Error, Result};

/// Longest remote address (E.164 and channel handles fit).
const REMOTE_LEN_MAX: usize = 64;
/// Longest channel name.
const CHANNEL_LEN_MAX: usize = 32;
/// The channel whose addresses are telephone numbers (E.164).
const SMS: &str = "sms";

/// What the platform's carrier gateway posts for a message to one of the
/// platform's lines.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundMessage {
    /// The line it came to (E.164).
    #[schema(example = "+393470000001")]
    pub to: String,
    /// Who sent it.
    #[schema(example = "+393471234567")]
    pub from: String,
    #[schema(example = "sms")]
    pub channel: String,
    pub body: String,
}

/// The price key of an inbound message on `channel`.
pub fn inbound_price_key(channel: &str) -> String {
    format!("{channel}_inbound")
}

impl Canopy {
    /// The line an outbound message of `account` goes from: `from` must be
    /// a line the account holds (a parent: its Available pool), `active`.
    /// `None` sends from no line (""). Used by sends and campaigns.
    pub async fn sending_line(&self, account: &Account, from: Option<&str>) -> Result<String> {
        let Some(from) = from else {
            return Ok(String::new());
        };
        let from = from.trim();
        e164(from).map_err(|r| Error::invalid("from", r))?;
        let mut c = self.store.reader().await?;
        let line = store::conversations::line(&mut c, from).await?;
        match line {
            Some(l) if l.account_id == account.id => {
                if l.status == "active" {
                    Ok(from.to_string())
                } else {
                    Err(Error::invalid(
                        "from",
                        format!(
                            "line {from} is {}; send from an active line of this account (GET /v1/accounts/{}/resources?kind=line&status=active)",
                            l.status, account.id
                        ),
                    ))
                }
            }
            _ => Err(Error::invalid(
                "from",
                format!(
                    "{from} is not a line account `{}` holds; send from one of its active lines (GET /v1/accounts/{}/resources?kind=line), or have the parent transfer the line to it",
                    account.id, account.id
                ),
            )),
        }
    }

    /// `POST /v1/operator/inbound`: stores a message that came to a line.
    pub async fn receive_inbound(&self, req: InboundMessage) -> Result<Message> {
        let to = req.to.trim().to_string();
        e164(&to).map_err(|r| Error::invalid("to", r))?;
        let channel = req.channel.trim().to_string();
        if channel.is_empty()
            || channel.len() > CHANNEL_LEN_MAX
            || !channel
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::invalid(
                "channel",
                format!("must be 1 to {CHANNEL_LEN_MAX} lower-case letters, digits or `_`"),
            ));
        }
        let from = req.from.trim().to_string();
        if from.is_empty() || from.chars().count() > REMOTE_LEN_MAX {
            return Err(Error::invalid(
                "from",
                format!("must be 1 to {REMOTE_LEN_MAX} characters"),
            ));
        }
        if channel == SMS {
            e164(&from).map_err(|r| Error::invalid("from", r))?;
        }
        super::messages::check_body(&req.body)?;
        let mut c = self.store.reader().await?;
        let line = store::conversations::line(&mut c, &to)
            .await?
            .ok_or_else(|| Error::not_found("line", &to))?;
        let holder = store::accounts::get(&mut c, &line.account_id)
            .await?
            .ok_or_else(|| Error::internal("a line's holder vanished"))?;
        let parent = match &holder.parent_id {
            Some(p) => store::accounts::get(&mut c, p).await?,
            None => None,
        };
        drop(c);
        self.authorize_operator("message.inbound", Some(&holder))
            .await?;
        if let Some(id) = store::idempotency::committed_resource() {
            // Stored by an earlier request with this key: never twice.
            let mut c = self.store.reader().await?;
            return store::messages::get(&mut c, &holder.id, &id)
                .await?
                .ok_or_else(|| Error::internal("the committed message vanished"));
        }
        if line.status != "active" {
            return Err(Error::Conflict(format!(
                "line {to} is {}; it receives no messages",
                line.status
            )));
        }
        if holder.status == Status::Deleted {
            return Err(Error::Conflict(format!(
                "line {to} is held by account `{}`, which is deleted; nothing was stored",
                holder.id
            )));
        }
        let now = self.clock.now();
        let now_us = now.timestamp_micros();
        let price = holder
            .prices
            .get(&inbound_price_key(&channel))
            .copied()
            .filter(|p| holder.status == Status::Active && !p.decimal().is_zero());
        let message = Message {
            id: new_id("msg"),
            account_id: holder.id.clone(),
            user_id: None,
            direction: Direction::Inbound,
            channel: channel.clone(),
            line: to.clone(),
            remote: from.clone(),
            body: req.body,
            status: "received".into(),
            price: price.unwrap_or(crate::domain::Amount::from_micros(0)),
            currency: holder.currency.clone(),
            conversation_id: None,
            campaign_id: None,
            created_at: now,
        };
        let event = serde_json::json!({
            "id": message.id,
            "account_id": holder.id,
            "direction": "inbound",
            "channel": channel,
            "from": from,
            "to": to,
            "body": message.body,
            "created_at": now,
        });
        let (_, event_step) = store::events::emit_step(
            &line.tree_id,
            &holder.id,
            EventType::MessageInbound,
            &event,
            now_us,
        );
        store::idempotency::note_resource(&message.id);
        let refusal = |why: store::messages::Refused| {
            match why {
            store::messages::Refused::NotActive => Error::Conflict(format!(
                "account `{}` was deleted while the message arrived; nothing was stored",
                holder.id
            )),
            store::messages::Refused::CurrencyChanged => Error::Conflict(
                "the tree's currency changed while the message arrived; nothing was stored, post it again".into(),
            ),
        }
        };
        let key = format!("usage:{}", message.id);
        let mut steps = store::messages::record_steps(&message, price.map(|_| key.as_str()));
        steps.push(event_step);
        match price {
            None => {
                self.store.write_steps(steps).await.map_err(|e| {
                    match store::idempotency::write_error(e) {
                        Err(conflict) => conflict,
                        Ok(e) => {
                            store::messages::refused(&e).map_or_else(|| store::db_error(e), refusal)
                        }
                    }
                })?;
            }
            Some(price) => {
                // Charged like a send: the transfer, the message, its
                // conversation and counters and the event are one write.
                let mut posting =
                    ledger::usage_posting(&holder, parent.as_ref(), price, &ledger::month_of(now));
                posting.reference = Some(message.id.clone());
                let (id, mut all) = store::ledger::posting_steps(&posting, &key, now_us, steps)?;
                if self.store.backend == store::Backend::Postgres {
                    all.insert(0, store::messages::hold_account_step(&holder.id));
                }
                let written = self.store.write_steps(all).await;
                if let Some(why) = written.as_ref().err().and_then(store::messages::refused) {
                    return Err(refusal(why));
                }
                store::ledger::posted(id, &posting, &key, written)?;
            }
        }
        let mut c = self.store.reader().await?;
        store::messages::get(&mut c, &holder.id, &message.id)
            .await?
            .ok_or_else(|| Error::internal("the stored message vanished"))
    }

    /// `GET /v1/accounts/{id}/conversations`: newest id last; basic users
    /// see the conversations whose last outbound message is theirs.
    pub async fn list_conversations(
        &self,
        principal: &Principal,
        account_id: &str,
        state: Option<&str>,
        page: &Page,
    ) -> Result<(Paged<Conversation>, View)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "conversation.list", &[]).await?;
        if let Some(s) = state
            && s != "new"
            && s != "responded"
        {
            return Err(Error::invalid("state", "must be `new` or `responded`"));
        }
        let view = self
            .view(&actor, "conversation.list", "conversations")
            .await?;
        let own = view.own_rows_only.then_some(actor.user_id.as_str());
        let mut c = self.store.reader().await?;
        let rows = store::conversations::list(&mut c, account_id, state, own, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |r| {
                super::keyset_cursor(r.first_message_at, &r.id)
            }),
            view,
        ))
    }
}
