//! The `accounts` table: parents and sub-accounts.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Conn, db_error, listing, unique_violation};
use crate::clock::from_us;
use crate::domain::names::NameKey;
use crate::domain::{
    Account, AccountKind, Amount, BillingType, CreditMode, LowBalanceAlert, Module, Status,
    SuspendedBy, account::TreeSettings,
};
use crate::ops::Page;
use crate::{Error, Result};

/// A sub-account reads its inherited fields (currency, region, prices, the
/// tree's module switches) from its parent's row, so a parent's change is
/// every sub-account's change at once.
const SELECT: &str = "SELECT a.id, a.kind, a.parent_id, a.name, a.email, a.external_id,
    a.company_name, a.status, a.previous_status, a.suspended_by, a.timezone, a.channels,
    a.billing_type, a.monthly_credit_limit_micros, a.credit_mode, a.monthly_usage_limit_micros,
    a.low_balance_threshold_micros, a.low_balance_emails, a.created_at, a.merged_into,
    COALESCE(p.currency, a.currency) AS currency,
    COALESCE(p.region, a.region) AS region,
    COALESCE(p.prices, a.prices) AS prices,
    COALESCE(p.subaccounts_enabled, a.subaccounts_enabled) AS subaccounts_enabled,
    COALESCE(p.subaccount_module, a.subaccount_module) AS subaccount_module,
    COALESCE(p.monthly_usage_limit_enabled, a.monthly_usage_limit_enabled) AS monthly_usage_limit_enabled,
    COALESCE(p.self_topups_enabled, a.self_topups_enabled) AS self_topups_enabled
    FROM accounts a LEFT JOIN accounts p ON p.id = a.parent_id";

/// Everything needed to insert one account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub kind: AccountKind,
    pub parent_id: Option<String>,
    pub name: String,
    pub name_key: String,
    pub email: String,
    pub email_key: String,
    pub external_id: Option<String>,
    pub company_name: String,
    pub status: Status,
    pub timezone: String,
    pub channels: Vec<String>,
    pub billing_type: Option<BillingType>,
    pub currency: Option<String>,
    pub region: Option<String>,
    pub prices: Option<BTreeMap<String, Amount>>,
    pub monthly_credit_limit: Option<Amount>,
    pub credit_mode: Option<CreditMode>,
    pub monthly_usage_limit: Option<Amount>,
    pub low_balance_alert: Option<LowBalanceAlert>,
    pub now_us: i64,
}

pub async fn insert(c: &mut Conn, a: &NewAccount) -> Result<()> {
    let result = sqlx::query(
        "INSERT INTO accounts (id, kind, parent_id, parent_kind, name, name_key, email, email_key,
            external_id, company_name, status, timezone, channels, billing_type, currency, region,
            prices, monthly_credit_limit_micros, credit_mode, monthly_usage_limit_micros,
            low_balance_threshold_micros, low_balance_emails, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            $19, $20, $21, $22, $23, $23)",
    )
    .bind(&a.id)
    .bind(a.kind.as_str())
    .bind(&a.parent_id)
    .bind(a.parent_id.as_ref().map(|_| "parent"))
    .bind(&a.name)
    .bind(&a.name_key)
    .bind(&a.email)
    .bind(&a.email_key)
    .bind(&a.external_id)
    .bind(&a.company_name)
    .bind(a.status.as_str())
    .bind(&a.timezone)
    .bind(json_text(&a.channels))
    .bind(a.billing_type.map(|b| b.as_str()))
    .bind(&a.currency)
    .bind(&a.region)
    .bind(a.prices.as_ref().map(prices_text))
    .bind(micros(a.monthly_credit_limit))
    .bind(a.credit_mode.map(|m| m.as_str()))
    .bind(micros(a.monthly_usage_limit))
    .bind(micros(a.low_balance_alert.as_ref().map(|l| l.threshold)))
    .bind(a.low_balance_alert.as_ref().map(|l| json_text(&l.emails)))
    .bind(a.now_us)
    .execute(&mut *c)
    .await;
    result.map(|_| ()).map_err(uniqueness_conflict)
}

/// Maps the tree's unique indexes to the 409 a caller can act on.
pub fn uniqueness_conflict(e: sqlx::Error) -> Error {
    match unique_violation(&e) {
        Some(index) if index.contains("email_key") => Error::Conflict(
            "an account with this e-mail already exists on the platform; use another address".into(),
        ),
        Some(index) if index.contains("name_key") => Error::Conflict(
            "a sub-account of this parent already has this name (names are compared without case); choose another name".into(),
        ),
        _ => db_error(e),
    }
}

pub async fn get(c: &mut Conn, id: &str) -> Result<Option<Account>> {
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE a.id = $1")))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(from_row).transpose()
}

/// The accounts a request enters through in one query: `home`, `target`
/// and `home`'s parent (each at most once; missing ones are absent).
pub async fn family(c: &mut Conn, home: &str, target: &str) -> Result<Vec<Account>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE a.id IN ($1, $2, (SELECT parent_id FROM accounts WHERE id = $1))"
    )))
    .bind(home)
    .bind(target)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// What a list of parents is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ParentFilter {
    /// `None` lists every status.
    pub status: Option<Status>,
    /// A substring of the name, compared as names are for uniqueness
    /// (the `NameKey` of both, so without case).
    pub name: Option<NameKey>,
}

/// One page of parents, newest first.
pub async fn list_parents(
    c: &mut Conn,
    filter: &ParentFilter,
    page: &Page,
) -> Result<Vec<Account>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE a.kind = 'parent'
           AND ($1 = '' OR a.status = $1)
           AND ($2 = '' OR a.name_key LIKE $2 ESCAPE '!'){}",
        listing::newest_first("a.", 3)
    )))
    .bind(filter.status.map(|s| s.as_str()).unwrap_or(""))
    .bind(
        filter
            .name
            .as_ref()
            .map_or(String::new(), |k| format!("%{}%", like_escaped(k.as_str()))),
    );
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// What a sub-account list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct SubaccountFilter {
    /// `None` lists every status but `deleted`.
    pub status: Option<Status>,
    /// A substring of the name, compared as names are for uniqueness
    /// (the `NameKey` of both, so without case).
    pub name: Option<NameKey>,
    /// The external id, exactly.
    pub external_id: Option<String>,
}

/// One page of a parent's sub-accounts, newest first.
pub async fn list_subaccounts(
    c: &mut Conn,
    parent_id: &str,
    filter: &SubaccountFilter,
    page: &Page,
) -> Result<Vec<Account>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE a.parent_id = $1
           AND (($2 = '' AND a.status <> 'deleted') OR a.status = $2)
           AND ($3 = '' OR a.name_key LIKE $3 ESCAPE '!')
           AND ($4 = '' OR a.external_id = $4){}",
        listing::newest_first("a.", 5)
    )))
    .bind(parent_id)
    .bind(filter.status.map(|s| s.as_str()).unwrap_or(""))
    .bind(
        filter
            .name
            .as_ref()
            .map_or(String::new(), |k| format!("%{}%", like_escaped(k.as_str()))),
    )
    .bind(filter.external_id.clone().unwrap_or_default());
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// `text` as a literal inside a `LIKE ... ESCAPE '!'` pattern.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(ch);
    }
    out
}

/// Every sub-account of a parent that is not deleted, in id order (for
/// cascades and parent-wide changes; a tree is bounded by `SUBACCOUNTS_MAX`).
pub async fn all_subaccounts(c: &mut Conn, parent_id: &str) -> Result<Vec<Account>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE a.parent_id = $1 AND a.status <> 'deleted' ORDER BY a.id"
    )))
    .bind(parent_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

pub async fn count_subaccounts(c: &mut Conn, parent_id: &str) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE parent_id = $1 AND status <> 'deleted'")
        .bind(parent_id)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .map_err(db_error)
}

/// A column value in a partial update.
#[derive(Debug, Clone)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

/// Sets only the given columns, so that two changes to different fields of
/// one account never overwrite each other.
pub async fn update(
    c: &mut Conn,
    id: &str,
    changes: &[(&'static str, Value)],
    now_us: i64,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(i, (col, _))| format!("{col} = ${}", i + 3))
        .collect();
    let sql = format!(
        "UPDATE accounts SET updated_at = $2, {} WHERE id = $1",
        sets.join(", ")
    );
    // Column names come from the caller's code, never from input.
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(now_us);
    for (_, value) in changes {
        query = match value {
            Value::Text(v) => query.bind(v.clone()),
            Value::Int(v) => query.bind(*v),
        };
    }
    query.execute(&mut *c).await.map_err(uniqueness_conflict)?;
    Ok(())
}

/// Locks an account's row until the transaction ends; false if there is
/// no such account. A count limit or a check of the tree's money is read
/// after this lock, in the same transaction, so two requests cannot both
/// pass it: on PostgreSQL the second waits for the first to commit; on
/// SQLite the one writer connection already runs them one at a time, and
/// the statement is harmless.
pub async fn lock(c: &mut Conn, id: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE accounts SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Locks an account's row until the transaction ends, if it is not
/// deleted; false if it is. Money is credited to an account only under this
/// lock, so none can arrive after its deletion returned what it held.
pub async fn lock_live(c: &mut Conn, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET updated_at = updated_at WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// The status of one account after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusChange {
    pub from: Status,
    pub to: Status,
    pub previous_status: Option<Status>,
    pub suspended_by: Option<SuspendedBy>,
}

/// Applies a status change only if the account is still in `from`; false
/// if someone else changed it first.
pub async fn change_status(
    c: &mut Conn,
    id: &str,
    change: StatusChange,
    now_us: i64,
) -> Result<bool> {
    let deleted_at = (change.to == Status::Deleted).then_some(now_us);
    let done = sqlx::query(
        "UPDATE accounts SET status = $3, previous_status = $4, suspended_by = $5,
             deleted_at = $6, updated_at = $7
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(change.from.as_str())
    .bind(change.to.as_str())
    .bind(change.previous_status.map(|s| s.as_str()))
    .bind(change.suspended_by.map(|s| s.as_str()))
    .bind(deleted_at)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Most ids in one `IN (...)` list: far below both backends' limits on
/// bound parameters.
const IDS_PER_STATEMENT: usize = 500;

/// Applies one status change to many accounts, set-based (a statement per
/// [`IDS_PER_STATEMENT`] ids), each only if it is still in `change.from`.
/// Returns how many changed: fewer than `ids` if someone changed one first.
pub async fn change_statuses(
    c: &mut Conn,
    ids: &[&str],
    change: StatusChange,
    now_us: i64,
) -> Result<u64> {
    let deleted_at = (change.to == Status::Deleted).then_some(now_us);
    let mut changed = 0;
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 7)).collect();
        let sql = format!(
            "UPDATE accounts SET status = $2, previous_status = $3, suspended_by = $4,
                 deleted_at = $5, updated_at = $6
             WHERE status = $1 AND id IN ({})",
            list.join(", ")
        );
        // Only placeholders are formatted into the statement.
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(change.from.as_str())
            .bind(change.to.as_str())
            .bind(change.previous_status.map(|s| s.as_str()))
            .bind(change.suspended_by.map(|s| s.as_str()))
            .bind(deleted_at)
            .bind(now_us);
        for id in chunk {
            query = query.bind(*id);
        }
        changed += query
            .execute(&mut *c)
            .await
            .map_err(db_error)?
            .rows_affected();
    }
    Ok(changed)
}

pub fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

pub fn prices_text(prices: &BTreeMap<String, Amount>) -> String {
    let map: BTreeMap<&String, String> = prices
        .iter()
        .map(|(k, v)| (k, v.decimal().to_string()))
        .collect();
    json_text(&map)
}

pub fn micros(amount: Option<Amount>) -> Option<i64> {
    amount.map(|a| {
        a.to_micros()
            .expect("amounts are range-checked when parsed")
    })
}

fn corrupt(what: &str) -> Error {
    Error::internal(format!("stored account has a malformed {what}"))
}

fn from_row(row: &AnyRow) -> Result<Account> {
    let text = |col: &str| row.try_get::<Option<String>, _>(col).map_err(db_error);
    let int = |col: &str| row.try_get::<Option<i64>, _>(col).map_err(db_error);
    let req = |col: &str| text(col).and_then(|v| v.ok_or_else(|| corrupt(col)));
    let amount = |col: &str| int(col).map(|v| v.map(Amount::from_micros));

    let prices: BTreeMap<String, String> =
        serde_json::from_str(&text("prices")?.unwrap_or_else(|| "{}".into()))
            .map_err(|_| corrupt("prices"))?;
    let prices = prices
        .into_iter()
        .map(|(k, v)| {
            let d = v.parse().map_err(|_| corrupt("price"))?;
            Ok((k, Amount::new(d).map_err(|_| corrupt("price"))?))
        })
        .collect::<Result<_>>()?;
    let low_balance_alert = match int("low_balance_threshold_micros")? {
        Some(t) => Some(LowBalanceAlert {
            threshold: Amount::from_micros(t),
            emails: serde_json::from_str(
                &text("low_balance_emails")?.unwrap_or_else(|| "[]".into()),
            )
            .map_err(|_| corrupt("alert e-mails"))?,
        }),
        None => None,
    };
    Ok(Account {
        id: req("id")?,
        kind: AccountKind::parse(&req("kind")?).ok_or_else(|| corrupt("kind"))?,
        parent_id: text("parent_id")?,
        name: req("name")?,
        email: req("email")?,
        external_id: text("external_id")?,
        company_name: req("company_name")?,
        status: Status::parse(&req("status")?).ok_or_else(|| corrupt("status"))?,
        previous_status: text("previous_status")?.as_deref().and_then(Status::parse),
        suspended_by: text("suspended_by")?
            .as_deref()
            .and_then(SuspendedBy::parse),
        timezone: req("timezone")?,
        region: text("region")?,
        currency: req("currency")?,
        channels: serde_json::from_str(&req("channels")?).map_err(|_| corrupt("channels"))?,
        prices,
        tree: TreeSettings {
            subaccounts_enabled: int("subaccounts_enabled")?.unwrap_or(0) != 0,
            module: text("subaccount_module")?
                .as_deref()
                .and_then(Module::parse),
            monthly_usage_limit_enabled: int("monthly_usage_limit_enabled")?.unwrap_or(0) != 0,
            self_topups_enabled: int("self_topups_enabled")?.unwrap_or(0) != 0,
        },
        billing_type: text("billing_type")?
            .as_deref()
            .and_then(BillingType::parse),
        monthly_credit_limit: amount("monthly_credit_limit_micros")?,
        credit_mode: text("credit_mode")?.as_deref().and_then(CreditMode::parse),
        monthly_usage_limit: amount("monthly_usage_limit_micros")?,
        low_balance_alert,
        created_at: from_us(int("created_at")?.unwrap_or(0)),
        merged_into: text("merged_into")?,
    })
}
