//! Messages, outbound (sent and charged) and inbound (received on a line).

use sqlx::Row;

use super::listing;
use super::{Arg, Conn, Step, db_error};
use crate::Result;
use crate::domain::Amount;
use crate::ops::Page;
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub account_id: String,
    /// The sender of an outbound message; for an inbound one, the user who
    /// last wrote in its conversation, if any.
    pub user_id: Option<String>,
    pub direction: Direction,
    pub channel: String,
    /// The account's line: `from` of an outbound message, `to` of an
    /// inbound one; empty when an outbound message names none.
    pub line: String,
    /// The other party: the recipient of an outbound message, the sender of
    /// an inbound one.
    pub remote: String,
    pub body: String,
    /// `sent` (outbound) or `received` (inbound).
    pub status: String,
    pub price: Amount,
    pub currency: String,
    pub conversation_id: Option<String>,
    pub campaign_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "outbound" => Some(Direction::Outbound),
            "inbound" => Some(Direction::Inbound),
            _ => None,
        }
    }
}

/// Every statement that records a message in the write that charges it (if
/// it is charged): the message itself and, on top of it, what is kept on
/// write (its conversation and the analytics counters). Sends, inbound
/// messages and campaigns all record through here.
///
/// The conversation's upsert comes first (on PostgreSQL it locks the
/// conversation until commit), then the message, then the counters and
/// flags (`conversations::keep_steps`). No statement returns rows, so a
/// charge's own row stays the write's last.
pub fn record_steps(m: &Message, transfer_key: Option<&str>) -> Vec<Step> {
    let mut steps = vec![
        super::conversations::upsert_step(m),
        insert_step(m, transfer_key),
    ];
    steps.extend(super::conversations::keep_steps(m));
    steps
}

/// Writing a message, paid by the transfer with `transfer_key` (if any).
/// Inside this very write (after the charge's own statements), the account
/// must still be active (an inbound message: not deleted) and its tree still in the message's currency:
/// otherwise `account_id` or `currency` is NULL and the whole write fails
/// ([`Refused`]), so a send that began before a suspension or a currency
/// change cannot commit after it. Unless the message names them, its
/// conversation is the one of its account, channel, line and remote, and
/// an inbound message's user is that conversation's last outbound user.
pub fn insert_step(m: &Message, transfer_key: Option<&str>) -> Step {
    Step::new(
        "INSERT INTO messages (id, account_id, user_id, channel, remote, body, status, price_micros, currency, transfer_id, created_at,
                               direction, line, conversation_id, campaign_id)
         VALUES ($1, CASE WHEN (SELECT status FROM accounts WHERE id = $2) = 'active'
                           OR ($12 = 'inbound' AND (SELECT status FROM accounts WHERE id = $2) IN ('invited', 'suspended'))
                      THEN $2 END,
                 COALESCE($3, CASE WHEN $12 = 'inbound' THEN (SELECT user_id FROM conversations
                     WHERE account_id = $2 AND channel = $4 AND line = $13 AND remote = $5) END),
                 $4, $5, $6, $7, $8,
                 CASE WHEN (SELECT COALESCE(p.currency, a.currency) FROM accounts a
                            LEFT JOIN accounts p ON p.id = a.parent_id WHERE a.id = $2) = $9 THEN $9 END,
                 (SELECT id FROM transfers WHERE idempotency_key = $10), $11, $12, $13,
                 COALESCE($14, (SELECT id FROM conversations WHERE account_id = $2 AND channel = $4 AND line = $13 AND remote = $5)),
                 $15)",
        vec![
            Arg::Text(Some(m.id.clone())),
            Arg::Text(Some(m.account_id.clone())),
            Arg::Text(m.user_id.clone()),
            Arg::Text(Some(m.channel.clone())),
            Arg::Text(Some(m.remote.clone())),
            Arg::Text(Some(m.body.clone())),
            Arg::Text(Some(m.status.clone())),
            Arg::Int(Some(m.price.to_micros().expect("prices fit"))),
            Arg::Text(Some(m.currency.clone())),
            Arg::Text(transfer_key.map(str::to_string)),
            Arg::Int(Some(m.created_at.timestamp_micros())),
            Arg::Text(Some(m.direction.as_str().to_string())),
            Arg::Text(Some(m.line.clone())),
            Arg::Text(m.conversation_id.clone()),
            Arg::Text(m.campaign_id.clone()),
        ],
    )
}

/// On PostgreSQL, a statement to run first in a send's write: it holds the
/// account row against a concurrent suspension until the send commits.
/// (SQLite's single writer serialises them already.)
pub fn hold_account_step(account_id: &str) -> Step {
    Step::new(
        "SELECT id FROM accounts WHERE id = $1 FOR SHARE",
        vec![Arg::Text(Some(account_id.to_string()))],
    )
}

/// Why a send's write was refused inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The account was no longer active.
    NotActive,
    /// The tree's currency changed.
    CurrencyChanged,
}

/// Whether a failed send was refused inside its write, and why.
pub fn refused(e: &sqlx::Error) -> Option<Refused> {
    let db = e.as_database_error()?;
    if db.kind() != sqlx::error::ErrorKind::NotNullViolation {
        return None;
    }
    let message = db.message();
    if message.contains("currency") {
        Some(Refused::CurrencyChanged)
    } else if message.contains("account_id") {
        Some(Refused::NotActive)
    } else {
        None
    }
}

/// A page of an account's messages; `user_id` keeps it to one sender's.
pub async fn list(
    c: &mut Conn,
    account_id: &str,
    user_id: Option<&str>,
    direction: Option<Direction>,
    page: &Page,
) -> Result<Vec<Message>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM messages WHERE account_id = $1 AND ($2 = '' OR user_id = $2) AND ($3 = '' OR direction = $3){}",
        listing::newest_first("", 4)
    )))
    .bind(account_id)
    .bind(user_id.unwrap_or(""))
    .bind(direction.map_or("", Direction::as_str));
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// One message of an account.
pub async fn get(c: &mut Conn, account_id: &str, id: &str) -> Result<Option<Message>> {
    let row = sqlx::query("SELECT * FROM messages WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(from_row).transpose()
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Message> {
    Ok(Message {
        id: r.try_get("id").map_err(db_error)?,
        account_id: r.try_get("account_id").map_err(db_error)?,
        user_id: r.try_get("user_id").map_err(db_error)?,
        direction: Direction::parse(&r.try_get::<String, _>("direction").map_err(db_error)?)
            .ok_or_else(|| crate::Error::internal("a message with an unknown direction"))?,
        channel: r.try_get("channel").map_err(db_error)?,
        line: r.try_get("line").map_err(db_error)?,
        remote: r.try_get("remote").map_err(db_error)?,
        conversation_id: r.try_get("conversation_id").map_err(db_error)?,
        campaign_id: r.try_get("campaign_id").map_err(db_error)?,
        body: r.try_get("body").map_err(db_error)?,
        status: r.try_get("status").map_err(db_error)?,
        price: Amount::from_micros(r.try_get("price_micros").map_err(db_error)?),
        currency: r.try_get("currency").map_err(db_error)?,
        created_at: crate::clock::from_us(r.try_get("created_at").map_err(db_error)?),
    })
}
