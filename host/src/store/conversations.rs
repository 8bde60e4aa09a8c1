//! Conversations and the analytics counters, kept on write: every message
//! is recorded through `messages::record_steps`, which adds [`keep_steps`]
//! to the write that records it (docs/TRAFFIC.md, "Analytics").
//!
//! The statements run one after the other with no branching between them
//! (on SQLite they are one batch): each conditional move of a counter reads
//! a flag that a later statement of the same write sets. The first
//! statement upserts the conversation row; on PostgreSQL its row lock
//! (`ON CONFLICT DO UPDATE` locks the row it meets) serialises the writes of
//! one conversation until commit, so the flags read later in the write are
//! exactly those the previous message of the conversation left. Counter
//! rows are then only incremented, in one key order, by statements that
//! commit together with the message.

use sqlx::Row;

use super::messages::{Direction, Message};
use super::{Arg, Conn, Step, db_error};
use crate::Result;
use crate::domain::traffic::{day_key, month_key};

/// The tree-wide counter rows: `account_id` the tree's parent, a `user_id`
/// starting with this (no user id looks like it). They move with every
/// account's rows, so a tree's report reads a few rows per period, whatever
/// the number of sub-accounts. Each account's messages count in one of
/// [`TREE_ROW_SHARDS`] rows (`~tree.N`, by a stable hash of the account),
/// so on PostgreSQL the messages of different accounts do not queue on one
/// row lock until commit; an older version's single `~tree` row is still
/// added in by reads.
pub const TREE_ROWS: &str = "~tree";
pub const TREE_ROW_SHARDS: u64 = 8;

/// The tree row `account_id`'s messages count in.
pub fn tree_row(account_id: &str) -> String {
    format!(
        "{TREE_ROWS}.{}",
        crate::domain::ledger::fnv1a(account_id.as_bytes()) % TREE_ROW_SHARDS
    )
}

/// Every tree row a report adds up, as an SQL list of literals.
pub fn tree_rows_sql() -> String {
    std::iter::once(TREE_ROWS.to_string())
        .chain((0..TREE_ROW_SHARDS).map(|n| format!("{TREE_ROWS}.{n}")))
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tree of the message's conversation (`$1..$4`).
const TREE: &str = "(SELECT tree_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4)";

/// The conversation a message belongs to, by its natural key `$1..$4`.
pub(super) const CONVERSATION: &str = "(SELECT id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4)";

fn key(m: &Message) -> Vec<Arg> {
    vec![
        Arg::Text(Some(m.account_id.clone())),
        Arg::Text(Some(m.channel.clone())),
        Arg::Text(Some(m.line.clone())),
        Arg::Text(Some(m.remote.clone())),
    ]
}

fn text(s: &str) -> Arg {
    Arg::Text(Some(s.to_string()))
}

/// The first statement of a message's write: its conversation, created
/// `new` with no messages or met (and, on PostgreSQL, locked) as it is.
pub fn upsert_step(m: &Message) -> Step {
    let mut args = key(m);
    args.push(text(&crate::secrets::new_id("conv")));
    args.push(Arg::Int(Some(m.created_at.timestamp_micros())));
    Step::new(
        "INSERT INTO conversations (id, tree_id, account_id, channel, line, remote, state, user_id, messages,
                                    first_message_at, last_message_at)
         VALUES ($5, (SELECT COALESCE(parent_id, id) FROM accounts WHERE id = $1), $1, $2, $3, $4, 'new', NULL, 0, $6, $6)
         ON CONFLICT (account_id, channel, line, remote) DO UPDATE SET messages = conversations.messages",
        args,
    )
}

/// The statements after the message's own insert: counters, the
/// conversation's period flags and state. `messages = 0` on the
/// conversation means "created by this write" until the last statement.
pub fn keep_steps(m: &Message) -> Vec<Step> {
    let shard = tree_row(&m.account_id);
    let day = day_key(m.created_at);
    let month = month_key(m.created_at);
    let now = m.created_at.timestamp_micros();
    let outbound = m.direction == Direction::Outbound;
    // Whose per-user counters move: the sender of an outbound message, the
    // conversation's last writer for an inbound one ('' for nobody: then
    // only the account's counters move).
    let (user, user_args): (&str, Vec<Arg>) = if outbound {
        ("$7", vec![text(m.user_id.as_deref().unwrap_or(""))])
    } else {
        (
            "COALESCE((SELECT user_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4), $7)",
            vec![text("")],
        )
    };
    let periods = |extra: Vec<Arg>| {
        let mut a = key(m);
        a.push(text(&day));
        a.push(text(&month));
        a.extend(extra);
        a
    };
    let price = m.price.to_micros().expect("prices fit");
    let mut steps = vec![
        Step::new(
            format!(
                "INSERT INTO traffic_counters (tree_id, account_id, user_id, granularity, period)
                 VALUES ((SELECT tree_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4), $1, '', 'day', $5),
                        ((SELECT tree_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4), $1, '', 'month', $6),
                        ((SELECT tree_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4), $1, {user}, 'day', $5),
                        ((SELECT tree_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4), $1, {user}, 'month', $6),
                        ({TREE}, {TREE}, '{shard}', 'day', $5),
                        ({TREE}, {TREE}, '{shard}', 'month', $6)
                 ON CONFLICT (account_id, user_id, granularity, period) DO NOTHING"
            ),
            periods(user_args.clone()),
        ),
        // Lock order: the tree's rows first, day then month, each alone.
        // Every message of a tree takes them after its conversation and
        // before any account's counter row, so on PostgreSQL two writes
        // never hold counter rows in opposite orders (no deadlock), and
        // the multi-row updates below meet no other writer of the tree.
        lock_tree_row(m, "day", &day),
        lock_tree_row(m, "month", &month),
        Step::new(
            format!(
                "UPDATE traffic_counters SET sent = sent + $8, received = received + $9, spend_micros = spend_micros + $10,
                     conversations_new = conversations_new + CASE WHEN EXISTS (
                         SELECT 1 FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4 AND messages = 0)
                         THEN 1 ELSE 0 END
                 WHERE ((account_id = $1 AND user_id IN ('', {user})) OR (account_id = {TREE} AND user_id = '{shard}'))
                   AND ((granularity = 'day' AND period = $5) OR (granularity = 'month' AND period = $6))"
            ),
            {
                let mut a = periods(user_args.clone());
                a.push(Arg::Int(Some(i64::from(outbound))));
                a.push(Arg::Int(Some(i64::from(!outbound))));
                a.push(Arg::Int(Some(price)));
                a
            },
        ),
    ];
    if outbound {
        steps.extend([
            // The conversation's periods, first set for the user sending now.
            Step::new(
                format!(
                    "INSERT INTO conversation_periods (conversation_id, granularity, period, outbound, responded, user_id)
                     VALUES ({CONVERSATION}, 'day', $5, 0, 0, $7), ({CONVERSATION}, 'month', $6, 0, 0, $7)
                     ON CONFLICT (conversation_id, granularity, period) DO NOTHING"
                ),
                periods(user_args.clone()),
            ),
            // Conversations with an outbound message in the period: once
            // per period, for the account and the period's user.
            Step::new(
                format!(
                    "UPDATE traffic_counters SET conversations_outbound = conversations_outbound + 1
                     WHERE (account_id = $1 OR (account_id = {TREE} AND user_id = '{shard}'))
                       AND ((granularity = 'day' AND period = $5) OR (granularity = 'month' AND period = $6))
                       AND EXISTS (SELECT 1 FROM conversation_periods p
                                   WHERE p.conversation_id = {CONVERSATION} AND p.granularity = traffic_counters.granularity
                                     AND p.period = traffic_counters.period AND p.outbound = 0
                                     AND (traffic_counters.user_id IN ('', '{shard}') OR traffic_counters.user_id = p.user_id))"
                ),
                periods(vec![]),
            ),
            Step::new(
                format!(
                    "UPDATE conversation_periods SET outbound = 1
                     WHERE conversation_id = {CONVERSATION} AND outbound = 0
                       AND ((granularity = 'day' AND period = $5) OR (granularity = 'month' AND period = $6))"
                ),
                periods(vec![]),
            ),
            Step::new(
                "UPDATE conversations SET last_outbound_at = $7, last_outbound_day = $5, last_outbound_month = $6,
                     user_id = CASE WHEN $8 = '' THEN user_id ELSE $8 END,
                     messages = messages + 1, last_message_at = $7
                 WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4",
                periods(vec![
                    Arg::Int(Some(now)),
                    text(m.user_id.as_deref().unwrap_or("")),
                ]),
            ),
        ]);
    } else {
        // An inbound message answers the conversation's latest outbound
        // message: that message's day and month become responded, once each.
        for (g, column) in [
            ("day", "last_outbound_day"),
            ("month", "last_outbound_month"),
        ] {
            steps.push(Step::new(
                format!(
                    "UPDATE traffic_counters SET conversations_responded = conversations_responded + 1
                     WHERE (account_id = $1 OR (account_id = {TREE} AND user_id = '{shard}')) AND granularity = '{g}'
                       AND period = (SELECT {column} FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4)
                       AND user_id IN ('', '{shard}', (SELECT p.user_id FROM conversation_periods p
                                            WHERE p.conversation_id = {CONVERSATION} AND p.granularity = '{g}'
                                              AND p.period = traffic_counters.period))
                       AND EXISTS (SELECT 1 FROM conversation_periods p
                                   WHERE p.conversation_id = {CONVERSATION} AND p.granularity = '{g}'
                                     AND p.period = traffic_counters.period AND p.outbound = 1 AND p.responded = 0)"
                ),
                key(m),
            ));
        }
        steps.extend([
            Step::new(
                format!(
                    "UPDATE conversation_periods SET responded = 1
                     WHERE conversation_id = {CONVERSATION} AND outbound = 1 AND responded = 0
                       AND ((granularity = 'day' AND period = (SELECT last_outbound_day FROM conversations
                                 WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4))
                         OR (granularity = 'month' AND period = (SELECT last_outbound_month FROM conversations
                                 WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4)))"
                ),
                key(m),
            ),
            Step::new(
                "UPDATE conversations SET
                     state = CASE WHEN last_outbound_at IS NULL THEN state ELSE 'responded' END,
                     responded_at = CASE WHEN last_outbound_at IS NULL THEN responded_at ELSE COALESCE(responded_at, $5) END,
                     last_inbound_at = $5, messages = messages + 1, last_message_at = $5
                 WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4",
                {
                    let mut a = key(m);
                    a.push(Arg::Int(Some(now)));
                    a
                },
            ),
        ]);
    }
    steps
}

/// Locks the tree's counter row of one period (it exists: inserted just
/// before in the same write).
fn lock_tree_row(m: &Message, granularity: &str, period: &str) -> Step {
    let shard = tree_row(&m.account_id);
    let mut args = key(m);
    args.push(text(period));
    Step::new(
        format!(
            "UPDATE traffic_counters SET sent = sent
             WHERE account_id = {TREE} AND user_id = '{shard}' AND granularity = '{granularity}' AND period = $5"
        ),
        args,
    )
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub account_id: String,
    pub channel: String,
    pub line: String,
    pub remote: String,
    pub state: String,
    pub user_id: Option<String>,
    pub messages: i64,
    pub first_message_at: chrono::DateTime<chrono::Utc>,
    pub last_message_at: chrono::DateTime<chrono::Utc>,
    pub last_outbound_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_inbound_at: Option<chrono::DateTime<chrono::Utc>>,
    pub responded_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of an account's conversations, the newest started first (its
/// `created_at` is its first message's time); `state` and `user_id`
/// narrow it (each an index walk).
pub async fn list(
    c: &mut Conn,
    account_id: &str,
    state: Option<&str>,
    user_id: Option<&str>,
    page: &crate::ops::Page,
) -> Result<Vec<Conversation>> {
    let q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM conversations
         WHERE account_id = $1 AND ($2 = '' OR state = $2) AND ($3 = '' OR user_id = $3){}",
        super::listing::newest_first_by("first_message_at", "id", 4)
    )))
    .bind(account_id)
    .bind(state.unwrap_or(""))
    .bind(user_id.unwrap_or(""));
    let rows = super::listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// The last outbound user of the conversation of an account's line with a
/// remote number, if it exists.
pub async fn user_of(
    c: &mut Conn,
    account_id: &str,
    channel: &str,
    line: &str,
    remote: &str,
) -> Result<Option<Option<String>>> {
    let row = sqlx::query(
        "SELECT user_id FROM conversations WHERE account_id = $1 AND channel = $2 AND line = $3 AND remote = $4",
    )
    .bind(account_id)
    .bind(channel)
    .bind(line)
    .bind(remote)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| r.try_get::<Option<String>, _>(0).map_err(db_error))
        .transpose()
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Conversation> {
    let at = |col: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(r.try_get::<Option<i64>, _>(col)
            .map_err(db_error)?
            .map(crate::clock::from_us))
    };
    Ok(Conversation {
        id: r.try_get("id").map_err(db_error)?,
        account_id: r.try_get("account_id").map_err(db_error)?,
        channel: r.try_get("channel").map_err(db_error)?,
        line: r.try_get("line").map_err(db_error)?,
        remote: r.try_get("remote").map_err(db_error)?,
        state: r.try_get("state").map_err(db_error)?,
        user_id: r.try_get("user_id").map_err(db_error)?,
        messages: r.try_get("messages").map_err(db_error)?,
        first_message_at: crate::clock::from_us(r.try_get("first_message_at").map_err(db_error)?),
        last_message_at: crate::clock::from_us(r.try_get("last_message_at").map_err(db_error)?),
        last_outbound_at: at("last_outbound_at")?,
        last_inbound_at: at("last_inbound_at")?,
        responded_at: at("responded_at")?,
    })
}

/// A line as a message sees it: who holds it and whether it is active.
#[derive(Debug, Clone)]
pub struct Line {
    pub tree_id: String,
    pub account_id: String,
    pub status: String,
}

/// The line with E.164 `identifier`, if one is provisioned.
pub async fn line(c: &mut Conn, identifier: &str) -> Result<Option<Line>> {
    let row = sqlx::query(
        "SELECT tree_id, account_id, status FROM resources WHERE identifier = $1 AND kind = 'line'",
    )
    .bind(identifier)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| {
        Ok(Line {
            tree_id: r.try_get("tree_id").map_err(db_error)?,
            account_id: r.try_get("account_id").map_err(db_error)?,
            status: r.try_get("status").map_err(db_error)?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_always_counts_in_the_same_tree_row_and_reports_add_up_all_of_them() {
        let row = tree_row("acct_one");
        assert_eq!(row, tree_row("acct_one"), "stable");
        assert!(row.starts_with("~tree."));
        let rows: std::collections::BTreeSet<String> =
            (0..200).map(|i| tree_row(&format!("acct_{i}"))).collect();
        assert_eq!(
            rows.len() as u64,
            TREE_ROW_SHARDS,
            "accounts spread over every row"
        );
        let listed = tree_rows_sql();
        assert!(
            listed.starts_with("'~tree', "),
            "an older single row still counts"
        );
        for r in rows {
            assert!(listed.contains(&format!("'{r}'")), "{r} is read");
        }
    }
}
