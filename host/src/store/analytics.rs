//! Analytics reads: sums of `traffic_counters` rows (kept on write by
//! `conversations::keep_steps`), never of messages. Every query walks an
//! index on (account or tree, user, granularity, period).

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Conn, db_error};
use crate::Result;

/// The counters of one period (or one account over a range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: i64,
    pub received: i64,
    pub conversations_new: i64,
    pub conversations_outbound: i64,
    pub conversations_responded: i64,
    pub spend_micros: i64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.received += o.received;
        self.conversations_new += o.conversations_new;
        self.conversations_outbound += o.conversations_outbound;
        self.conversations_responded += o.conversations_responded;
        self.spend_micros += o.spend_micros;
    }
}

/// PostgreSQL sums BIGINTs into NUMERIC: each sum is cast back.
const SUMS: &str =
    "CAST(SUM(c.sent) AS BIGINT) AS sent, CAST(SUM(c.received) AS BIGINT) AS received,
    CAST(SUM(c.conversations_new) AS BIGINT) AS conversations_new,
    CAST(SUM(c.conversations_outbound) AS BIGINT) AS conversations_outbound,
    CAST(SUM(c.conversations_responded) AS BIGINT) AS conversations_responded,
    CAST(SUM(c.spend_micros) AS BIGINT) AS spend_micros";

fn counts(r: &sqlx::any::AnyRow) -> Result<Counts> {
    let n = |col: &str| -> Result<i64> {
        Ok(r.try_get::<Option<i64>, _>(col)
            .map_err(db_error)?
            .unwrap_or(0))
    };
    Ok(Counts {
        sent: n("sent")?,
        received: n("received")?,
        conversations_new: n("conversations_new")?,
        conversations_outbound: n("conversations_outbound")?,
        conversations_responded: n("conversations_responded")?,
        spend_micros: n("spend_micros")?,
    })
}

/// What a report covers: a whole tree, or accounts by id (each with the
/// sub-accounts merged into it).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Tree(&'a str),
    Account(&'a str),
}

/// Per period from `first` to `last` (keys of `granularity`), the counters
/// of `scope` for `user_id` ('' = everyone).
pub async fn series(
    c: &mut Conn,
    scope: Scope<'_>,
    user_id: &str,
    granularity: &str,
    first: &str,
    last: &str,
) -> Result<BTreeMap<String, Counts>> {
    let (filter, id) = match scope {
        // The tree's own rows; one user's are spread over its accounts.
        Scope::Tree(t) if user_id.is_empty() => (
            format!(
                "c.account_id = $1 AND c.user_id IN ({}) AND $2 = ''",
                super::conversations::tree_rows_sql()
            ),
            t,
        ),
        Scope::Tree(t) => ("c.tree_id = $1 AND c.user_id = $2".to_string(), t),
        Scope::Account(a) => (
            "c.account_id IN (SELECT id FROM accounts WHERE id = $1 UNION ALL SELECT id FROM accounts WHERE merged_into = $1)
             AND c.user_id = $2"
                .to_string(),
            a,
        ),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.period AS period, {SUMS} FROM traffic_counters c
         WHERE {filter} AND c.granularity = $3 AND c.period >= $4 AND c.period <= $5
         GROUP BY c.period"
    )))
    .bind(id)
    .bind(user_id)
    .bind(granularity)
    .bind(first)
    .bind(last)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| Ok((r.try_get("period").map_err(db_error)?, counts(r)?)))
        .collect()
}

/// A row of a report by sub-account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub account_id: String,
    pub name: String,
    pub kind: String,
    pub monthly_usage_limit_micros: Option<i64>,
}

/// A page of a parent's sub-accounts that are not merged into another
/// (merged ones count under their target), in id order.
pub async fn subaccounts_page(
    c: &mut Conn,
    parent_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<AccountRow>> {
    let rows = sqlx::query(
        "SELECT id, name, kind, monthly_usage_limit_micros FROM accounts
         WHERE parent_id = $1 AND id > $2 AND merged_into IS NULL ORDER BY id LIMIT $3",
    )
    .bind(parent_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(AccountRow {
                account_id: r.try_get("id").map_err(db_error)?,
                name: r.try_get("name").map_err(db_error)?,
                kind: r.try_get("kind").map_err(db_error)?,
                monthly_usage_limit_micros: r
                    .try_get("monthly_usage_limit_micros")
                    .map_err(db_error)?,
            })
        })
        .collect()
}

/// Per account of `ids`, its counters (and those of the accounts merged
/// into it) over the periods `first..=last`.
pub async fn by_account(
    c: &mut Conn,
    ids: &[String],
    user_id: &str,
    granularity: &str,
    first: &str,
    last: &str,
) -> Result<BTreeMap<String, Counts>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let list = |offset: usize, n: usize| {
        (0..n)
            .map(|i| format!("${}", i + offset + 1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Sub-accounts merged into these (an index lookup each).
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, merged_into FROM accounts WHERE merged_into IN ({})",
        list(0, ids.len())
    )))
    .persistent(false);
    for id in ids {
        q = q.bind(id.clone());
    }
    let mut target: BTreeMap<String, String> = ids.iter().map(|i| (i.clone(), i.clone())).collect();
    for r in q.fetch_all(&mut *c).await.map_err(db_error)? {
        target.insert(
            r.try_get("id").map_err(db_error)?,
            r.try_get("merged_into").map_err(db_error)?,
        );
    }
    // Each account's counters: a seek on the primary key per account.
    let accounts: Vec<&String> = target.keys().collect();
    let sql = format!(
        "SELECT c.account_id AS account_id, {SUMS} FROM traffic_counters c
         WHERE c.account_id IN ({}) AND c.user_id = $1 AND c.granularity = $2 AND c.period >= $3 AND c.period <= $4
         GROUP BY c.account_id",
        list(4, accounts.len())
    );
    // Not prepared once and reused: PostgreSQL would switch to a generic
    // plan that tests every row against the whole list (a second for a
    // page of 1,000); planned per call, it seeks each account by key.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(user_id)
        .bind(granularity)
        .bind(first)
        .bind(last);
    for id in &accounts {
        q = q.bind((*id).clone());
    }
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for r in q.fetch_all(&mut *c).await.map_err(db_error)? {
        let account: String = r.try_get("account_id").map_err(db_error)?;
        let into = target.get(&account).cloned().unwrap_or(account);
        out.entry(into).or_default().add(&counts(&r)?);
    }
    Ok(out)
}
