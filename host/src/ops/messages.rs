//! Sending and listing messages, and the notifications an account received.
//! No real message leaves the host: a message is charged and recorded as
//! sent.

use serde::Deserialize;

use super::{Canopy, Page, Paged, Principal};
use crate::domain::ledger::{self, LedgerKind};
use crate::domain::names::e164;
use crate::domain::{Account, Status};
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
        channel_enabled(account, &req.channel)?;
        self.authorize(&actor, "message.send", &["channel", "to", "body", "from"])
            .await?;
        let to = recipient(&req.channel, &req.to).map_err(|r| Error::invalid("to", r))?;
        let to = to.as_str();
        check_body(&req.body)?;
        let line = self.sending_line(account, req.from.as_deref()).await?;
        let price = price_of(account, &req.channel)?;
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
        let (mut steps, charge) =
            charged_message(account, actor.parent.as_ref(), &message, now_us)?;
        if self.store.backend == store::Backend::Postgres {
            steps.insert(0, store::messages::hold_account_step(&account.id));
        }
        // The charge, the message and any alert are one short write,
        // committed with the others that arrive at once.
        let written = self.store.write_steps(steps).await;
        charge.outcome(written).map_err(|e| match e {
            Unsent::Refused(why) => refusal(why),
            Unsent::Error(e) => e,
        })?;
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
        let rows = store::messages::list(&mut c, account_id, own, direction, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |m| super::keyset_cursor(m.created_at, &m.id)),
            view,
        ))
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
        let rows = store::notifications::list(&mut c, account_id, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |n| super::keyset_cursor(n.created_at, &n.id)),
            view,
        ))
    }
}

/// The channel is enabled for the account (403 otherwise).
pub(crate) fn channel_enabled(account: &Account, channel: &str) -> Result<()> {
    if account.channels.iter().any(|c| c == channel) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "channel `{channel}` is not enabled for this account (it has {:?})",
        account.channels
    )))
}

/// A recipient of `channel` as a send takes it (trimmed; E.164 for SMS),
/// or why not.
pub(crate) fn recipient(channel: &str, to: &str) -> std::result::Result<String, String> {
    let to = to.trim();
    if to.is_empty() || to.chars().count() > RECIPIENT_LEN_MAX {
        return Err(format!("must be 1 to {RECIPIENT_LEN_MAX} characters"));
    }
    if channel == SMS {
        e164(to)?;
    }
    Ok(to.to_string())
}

/// A message body's length (422 on `body` otherwise).
pub(crate) fn check_body(body: &str) -> Result<()> {
    if body.is_empty() || body.chars().count() > BODY_LEN_MAX {
        return Err(Error::invalid(
            "body",
            format!("must be 1 to {BODY_LEN_MAX} characters"),
        ));
    }
    // PostgreSQL text cannot hold it; refused on both backends alike.
    if body.contains('\0') {
        return Err(Error::invalid(
            "body",
            "cannot contain the NUL character (U+0000); remove it",
        ));
    }
    Ok(())
}

/// The account's price for a message on `channel` (422 on `channel` when
/// the operator set none).
pub(crate) fn price_of(account: &Account, channel: &str) -> Result<crate::domain::Amount> {
    account.prices.get(channel).copied().ok_or_else(|| {
        Error::invalid(
            "channel",
            format!("no price is set for `{channel}`; ask the platform operator to set one"),
        )
    })
}

/// A message's charge, as [`charged_message`] wrote its statements.
pub(crate) struct Charge(Option<(String, ledger::Posting, String)>);

/// Why a charged message's write did not commit.
pub(crate) enum Unsent {
    /// Refused inside the write: the account stopped being active, or its
    /// tree's currency changed.
    Refused(store::messages::Refused),
    /// Anything else: `InsufficientFunds` (a floor or limit of the ledger),
    /// an idempotency conflict, the database.
    Error(Error),
}

impl Charge {
    /// What the write of [`charged_message`]'s statements came to.
    pub(crate) fn outcome(
        self,
        written: std::result::Result<Vec<sqlx::any::AnyRow>, sqlx::Error>,
    ) -> std::result::Result<(), Unsent> {
        if let Some(why) = written.as_ref().err().and_then(store::messages::refused) {
            return Err(Unsent::Refused(why));
        }
        match self.0 {
            None => written.map(|_| ()).map_err(|e| {
                Unsent::Error(match store::idempotency::write_error(e) {
                    Err(conflict) => conflict,
                    Ok(e) => store::db_error(e),
                })
            }),
            Some((id, posting, key)) => store::ledger::posted(id, &posting, &key, written)
                .map(|_| ())
                .map_err(Unsent::Error),
        }
    }
}

/// The statements of one outbound message and its charge at `message.price`
/// (the same ledger posting every send makes; none at a zero price), the
/// low-budget alert it may cross, in one write: what a send and each
/// campaign recipient commit. The caller may put a statement first (the
/// account's hold on PostgreSQL) and runs them in one transaction.
pub(crate) fn charged_message(
    account: &Account,
    parent: Option<&Account>,
    message: &Message,
    now_us: i64,
) -> Result<(Vec<store::Step>, Charge)> {
    if message.price.decimal().is_zero() {
        return Ok((store::messages::record_steps(message, None), Charge(None)));
    }
    let mut posting = ledger::usage_posting(
        account,
        parent,
        message.price,
        &ledger::month_of(message.created_at),
    );
    posting.reference = Some(message.id.clone());
    let key = format!("usage:{}", message.id);
    let mut extra = store::messages::record_steps(message, Some(&key));
    if posting.debit.kind == LedgerKind::Budget {
        extra.extend(alert_step(account, &key, now_us));
    }
    let (id, steps) = store::ledger::posting_steps(&posting, &key, now_us, extra)?;
    Ok((steps, Charge(Some((id, posting, key)))))
}
