//! The ledger tables: ledger accounts, transfers, monthly spend.
//!
//! Floors and limits are CHECK constraints that every update is held to,
//! never a read followed by a write, so no concurrent request on either
//! backend can overdraw: the update that would pass a floor fails and its
//! transaction rolls back. Rows are locked in one global order (monthly
//! counters, then ledger accounts by id) so two transfers never deadlock on
//! PostgreSQL.

use sqlx::Row;

use super::listing;
use super::{Arg, Backend, Conn, Step, check_violation, db_error, run_each, run_steps};
use crate::domain::Amount;
use crate::domain::ledger::{
    LedgerKind, LedgerRef, MonthCounters, MonthlyLimit, Posting, SpendColumn,
};
use crate::domain::money::{BALANCE_MAX_UNITS, STORED_MICROS_MAX};
use crate::ops::Page;
use crate::secrets::new_id;
use crate::{Error, Result};
use sqlx::AssertSqlSafe;

/// A transfer as written.
#[derive(Debug, Clone)]
pub struct Posted {
    pub id: String,
    pub debit_after: Amount,
    pub credit_after: Amount,
}

/// Creates a ledger account on first use; any host may, at any time.
pub async fn ensure(c: &mut Conn, r: &LedgerRef, now_us: i64) -> Result<()> {
    run_each(c, &[ensure_step(r, now_us)])
        .await
        .map(|_| ())
        .map_err(db_error)
}

fn column(c: SpendColumn) -> &'static str {
    match c {
        SpendColumn::Usage => "usage_micros",
        SpendColumn::Allocated => "allocated_micros",
        SpendColumn::Returned => "returned_micros",
    }
}

fn limit_refusal(limit: &MonthlyLimit, posting: &Posting) -> Error {
    let what = if limit.account_id == posting.tree_id {
        "the parent's monthly credit limit"
    } else {
        "the sub-account's monthly usage limit"
    };
    Error::InsufficientFunds(format!(
        "{} {} would pass {what} of {} this month; lower the amount or raise the limit",
        posting.amount.to_api_string(),
        posting.debit.currency,
        limit.limit.map(|l| l.to_api_string()).unwrap_or_default()
    ))
}

fn wallet_name(r: &LedgerRef) -> &'static str {
    match r.kind {
        LedgerKind::Balance => "the parent's balance",
        LedgerKind::Budget => "the sub-account's budget",
        _ => "the source account",
    }
}

fn ensure_step(r: &LedgerRef, now_us: i64) -> Step {
    Step::new(
        "INSERT INTO ledger_accounts (id, kind, owner_id, currency, balance_micros, created_at)
         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (id) DO NOTHING",
        vec![
            Arg::Text(Some(r.id())),
            Arg::Text(Some(r.kind.as_str().into())),
            Arg::Text(r.owner.clone()),
            Arg::Text(Some(r.currency.clone())),
            Arg::Int(Some(now_us)),
        ],
    )
}

/// Applies one posting in the caller's transaction: its monthly counters,
/// both sides of the transfer, the transfer row, then `extra` steps (the
/// message it pays for, an alert). The floors and limits are the schema's
/// CHECK constraints (`never_negative`, `within_monthly_limit`): a posting
/// that would break one fails, becomes a 402, and the caller rolls back.
pub async fn post(
    c: &mut Conn,
    backend: Backend,
    p: &Posting,
    idempotency_key: &str,
    now_us: i64,
    extra: Vec<Step>,
) -> Result<Posted> {
    let (id, steps) = posting_steps(p, idempotency_key, now_us, extra)?;
    posted(id, p, idempotency_key, run_steps(c, backend, &steps).await)
}

/// The statements of a posting (see [`post`]) and the transfer id they write.
pub fn posting_steps(
    p: &Posting,
    idempotency_key: &str,
    now_us: i64,
    extra: Vec<Step>,
) -> Result<(String, Vec<Step>)> {
    let amount = p
        .amount
        .to_micros()
        .map_err(|e| Error::invalid("amount", e.to_string()))?;
    assert!(amount > 0, "a transfer moves a positive amount");
    assert_ne!(
        p.debit.id(),
        p.credit.id(),
        "a transfer moves between two accounts"
    );
    let mut steps = vec![
        ensure_step(&p.debit, now_us),
        ensure_step(&p.credit, now_us),
    ];
    // Rows are locked in one global order: counters by account, then
    // ledger accounts by id.
    let mut limits: Vec<&MonthlyLimit> = p.spend.iter().collect();
    limits.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    for limit in &limits {
        let key = vec![
            Arg::Text(Some(limit.account_id.clone())),
            Arg::Text(Some(p.month.clone())),
        ];
        steps.push(Step::new(
            "INSERT INTO monthly_spend (account_id, month) VALUES ($1, $2) ON CONFLICT (account_id, month) DO NOTHING",
            key.clone(),
        ));
        let col = column(limit.column);
        let cap = limit
            .limit
            .map(|l| l.to_micros().expect("stored limits fit"));
        // A return gives credit back only up to what the month spent
        // (`MonthCounters::restores`), in the same statement, so no
        // interleaving can lift the month past its limit.
        // A return keeps the limit the month is held to (it only lowers
        // what was spent), so the ledger check still sees it.
        let (restored, limit_set) = if limit.column == SpendColumn::Returned {
            (
                ", restored_micros = restored_micros + CASE
                WHEN $3 < usage_micros + allocated_micros - restored_micros THEN $3
                ELSE usage_micros + allocated_micros - restored_micros END",
                "COALESCE($4, limit_micros)",
            )
        } else {
            ("", "$4")
        };
        steps.push(Step::new(
            format!("UPDATE monthly_spend SET {col} = {col} + $3{restored}, limit_micros = {limit_set} WHERE account_id = $1 AND month = $2"),
            [key, vec![Arg::Int(Some(amount)), Arg::Int(cap)]].concat(),
        ));
    }
    // A balance past its bound becomes NULL, which the NOT NULL column
    // refuses: the bound is checked inside the one statement that moves
    // the money, before the addition could overflow (see `bound_of`).
    let debit = Step::new(
        "UPDATE ledger_accounts SET balance_micros =
            CASE WHEN balance_micros >= $3 + $2 THEN balance_micros - $2 END WHERE id = $1",
        vec![
            Arg::Text(Some(p.debit.id())),
            Arg::Int(Some(amount)),
            Arg::Int(Some(-STORED_MICROS_MAX)),
        ],
    );
    let credit = Step::new(
        "UPDATE ledger_accounts SET balance_micros =
            CASE WHEN balance_micros <= $3 - $2 THEN balance_micros + $2 END WHERE id = $1",
        vec![
            Arg::Text(Some(p.credit.id())),
            Arg::Int(Some(amount)),
            Arg::Int(Some(upper_bound(&p.credit))),
        ],
    );
    if p.debit.id() < p.credit.id() {
        steps.extend([debit, credit]);
    } else {
        steps.extend([credit, debit]);
    }
    let id = new_id("txn");
    steps.push(Step::new(
        "INSERT INTO transfers (id, idempotency_key, kind, debit_id, credit_id, amount_micros, currency,
            debit_balance_after, credit_balance_after, subject_id, tree_id, month, reference, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7,
            (SELECT balance_micros FROM ledger_accounts WHERE id = $4),
            (SELECT balance_micros FROM ledger_accounts WHERE id = $5),
            $8, $9, $10, $11, $12)",
        vec![
            Arg::Text(Some(id.clone())),
            Arg::Text(Some(idempotency_key.into())),
            Arg::Text(Some(p.kind.as_str().into())),
            Arg::Text(Some(p.debit.id())),
            Arg::Text(Some(p.credit.id())),
            Arg::Int(Some(amount)),
            Arg::Text(Some(p.debit.currency.clone())),
            Arg::Text(Some(p.subject_id.clone())),
            Arg::Text(Some(p.tree_id.clone())),
            Arg::Text(Some(p.month.clone())),
            Arg::Text(p.reference.clone()),
            Arg::Int(Some(now_us)),
        ],
    ));
    steps.extend(extra);
    steps.push(Step::new(
        "SELECT debit_balance_after, credit_balance_after FROM transfers WHERE id = $1",
        vec![Arg::Text(Some(id.clone()))],
    ));
    Ok((id, steps))
}

/// The outcome of running a posting's statements: the transfer, or the
/// 402 of the floor or limit the schema held it to.
pub fn posted(
    id: String,
    p: &Posting,
    idempotency_key: &str,
    result: Result<Vec<sqlx::any::AnyRow>, sqlx::Error>,
) -> Result<Posted> {
    let mut limits: Vec<&MonthlyLimit> = p.spend.iter().collect();
    limits.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let rows = result.map_err(|e| {
        let e = match super::idempotency::write_error(e) {
            Ok(e) => e,
            Err(conflict) => return conflict,
        };
        if let Some(check) = check_violation(&e) {
            if check.contains("never_negative") {
                return Error::InsufficientFunds(format!(
                    "{} cannot pay {} {}; add funds or lower the amount",
                    wallet_name(&p.debit),
                    p.amount.to_api_string(),
                    p.debit.currency
                ));
            }
            if check.contains("within_storage_range") {
                return past_bound(p, false);
            }
            if check.contains("within_monthly_limit") {
                // Name the tighter limit that could have refused it.
                let limit = limits
                    .iter()
                    .rev()
                    .find(|l| l.limit.is_some())
                    .or(limits.first());
                return limit
                    .map(|l| limit_refusal(l, p))
                    .unwrap_or_else(|| db_error(e));
            }
        }
        if is_past_bound(&e) {
            return past_bound(p, p.credit.never_negative());
        }
        match super::unique_violation(&e) {
            Some(_) => Error::IdempotencyConflict(format!(
                "a transfer with key `{idempotency_key}` already exists"
            )),
            None => db_error(e),
        }
    })?;
    let row = rows
        .last()
        .ok_or_else(|| Error::internal("the transfer was not written"))?;
    let debit_after: i64 = row.try_get("debit_balance_after").map_err(db_error)?;
    let credit_after: i64 = row.try_get("credit_balance_after").map_err(db_error)?;
    assert!(
        !p.debit.never_negative() || debit_after >= 0,
        "the schema keeps {} at or above zero",
        p.debit.id()
    );
    Ok(Posted {
        id,
        debit_after: Amount::from_micros(debit_after),
        credit_after: Amount::from_micros(credit_after),
    })
}

/// Locks a ledger account's row until the transaction ends and returns its
/// balance as of then, so a following transfer of "all of it" is exact even
/// while other transactions wait to spend from it.
pub async fn lock_balance(c: &mut Conn, r: &LedgerRef, now_us: i64) -> Result<Amount> {
    ensure(c, r, now_us).await?;
    sqlx::query("UPDATE ledger_accounts SET balance_micros = balance_micros WHERE id = $1 RETURNING balance_micros")
        .bind(r.id())
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get::<i64, _>("balance_micros"))
        .map(Amount::from_micros)
        .map_err(db_error)
}

/// A low-balance alert for `account_id`, recorded only if the transfer with
/// `idempotency_key` (a debit of its budget) took the budget from at or
/// above its threshold to below it: one alert per crossing.
pub fn alert_step(account_id: &str, idempotency_key: &str, now_us: i64) -> Step {
    Step::new(
        "INSERT INTO notifications (id, account_id, kind, threshold_micros, budget_micros, emails, created_at)
         SELECT $1, a.id, 'low_balance', a.low_balance_threshold_micros, t.debit_balance_after, a.low_balance_emails, $2
         FROM transfers t JOIN accounts a ON a.id = $3
         WHERE t.idempotency_key = $4 AND a.low_balance_threshold_micros IS NOT NULL
           AND t.debit_balance_after < a.low_balance_threshold_micros
           AND t.debit_balance_after + t.amount_micros >= a.low_balance_threshold_micros",
        vec![
            Arg::Text(Some(new_id("ntf"))),
            Arg::Int(Some(now_us)),
            Arg::Text(Some(account_id.into())),
            Arg::Text(Some(idempotency_key.into())),
        ],
    )
}

/// The balance of a ledger account (zero if it was never used).
pub async fn balance(c: &mut Conn, r: &LedgerRef) -> Result<Amount> {
    let row = sqlx::query("SELECT balance_micros FROM ledger_accounts WHERE id = $1")
        .bind(r.id())
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(Amount::from_micros(
        row.map(|r| r.try_get::<i64, _>("balance_micros"))
            .transpose()
            .map_err(db_error)?
            .unwrap_or(0),
    ))
}

/// The most a ledger account may hold: the maximum balance for a prepaid
/// balance or a budget, the storage range for the rest.
fn upper_bound(account: &LedgerRef) -> i64 {
    if account.never_negative() {
        BALANCE_MAX_UNITS * 1_000_000
    } else {
        STORED_MICROS_MAX
    }
}

/// Whether a posting failed because a balance would pass its bound.
fn is_past_bound(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.kind() == sqlx::error::ErrorKind::NotNullViolation
            && d.message().contains("balance_micros")
    })
}

/// The 422 of a posting that would take a balance past its bound.
fn past_bound(p: &Posting, balance: bool) -> Error {
    let moved = format!("{} {}", p.amount.to_api_string(), p.credit.currency);
    let what = if balance {
        format!(
            "{} past the maximum balance of {} {}",
            wallet_name(&p.credit),
            Amount::balance_max().to_api_string(),
            p.credit.currency
        )
    } else {
        "a ledger account of this tree past the most the ledger holds".to_string()
    };
    Error::invalid(
        "amount",
        format!("{moved} would take {what}; lower the amount"),
    )
}

/// A transfer by its idempotency key: the transfer, its kind, amount and
/// currency (an answer rebuilt from what was committed).
pub async fn by_key(c: &mut Conn, key: &str) -> Result<Option<(Posted, String, Amount, String)>> {
    let row = sqlx::query(
        "SELECT id, kind, amount_micros, currency, debit_balance_after, credit_balance_after
         FROM transfers WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| {
        let micros = |col: &str| {
            r.try_get::<i64, _>(col)
                .map(Amount::from_micros)
                .map_err(db_error)
        };
        Ok((
            Posted {
                id: r.try_get("id").map_err(db_error)?,
                debit_after: micros("debit_balance_after")?,
                credit_after: micros("credit_balance_after")?,
            },
            r.try_get("kind").map_err(db_error)?,
            micros("amount_micros")?,
            r.try_get("currency").map_err(db_error)?,
        ))
    })
    .transpose()
}

/// A month's counters of a postpaid parent or shared-usage sub-account.
pub async fn monthly(c: &mut Conn, account_id: &str, month: &str) -> Result<MonthCounters> {
    let row = sqlx::query(
        "SELECT usage_micros, allocated_micros, returned_micros, restored_micros FROM monthly_spend
         WHERE account_id = $1 AND month = $2",
    )
    .bind(account_id)
    .bind(month)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(MonthCounters::default());
    };
    let get = |col: &str| {
        row.try_get::<i64, _>(col)
            .map(Amount::from_micros)
            .map_err(db_error)
    };
    Ok(MonthCounters {
        usage: get("usage_micros")?,
        allocated: get("allocated_micros")?,
        returned: get("returned_micros")?,
        restored: get("restored_micros")?,
    })
}

/// The budgets of a parent's sub-accounts, by sub-account id.
pub async fn budgets_of_tree(
    c: &mut Conn,
    parent_id: &str,
) -> Result<std::collections::HashMap<String, Amount>> {
    let rows = sqlx::query(
        "SELECT a.id, l.balance_micros FROM accounts a
         JOIN ledger_accounts l ON l.owner_id = a.id AND l.kind = 'budget'
         WHERE a.parent_id = $1",
    )
    .bind(parent_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id").map_err(db_error)?,
                Amount::from_micros(r.try_get("balance_micros").map_err(db_error)?),
            ))
        })
        .collect()
}

/// Whether any ledger account owned by the tree of `parent_id` holds money,
/// locking those rows until the transaction ends (PostgreSQL: in id order,
/// the order every posting locks them in, so a posting in flight is waited
/// for and counted, and none can start on them until the caller commits;
/// SQLite: the one writer already serialises).
pub async fn lock_tree_money(c: &mut Conn, backend: Backend, parent_id: &str) -> Result<bool> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT l.balance_micros FROM ledger_accounts l
         WHERE l.owner_id IN (SELECT id FROM accounts WHERE id = $1 OR parent_id = $1)
         ORDER BY l.id{lock}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(parent_id)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    for row in rows {
        if row.try_get::<i64, _>("balance_micros").map_err(db_error)? != 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A transfer as an account's statement shows it.
#[derive(Debug, Clone)]
pub struct Statement {
    pub id: String,
    pub kind: String,
    pub amount: Amount,
    pub currency: String,
    pub debit_id: String,
    pub credit_id: String,
    pub debit_owner: Option<String>,
    pub credit_owner: Option<String>,
    pub debit_after: Amount,
    pub credit_after: Amount,
    pub subject_id: String,
    pub reference: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Transfers touching `account_id`: its own ledger accounts, or made for it.
pub async fn statement(c: &mut Conn, account_id: &str, page: &Page) -> Result<Vec<Statement>> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "SELECT t.*, d.owner_id AS debit_owner, k.owner_id AS credit_owner
         FROM transfers t
         JOIN ledger_accounts d ON d.id = t.debit_id
         JOIN ledger_accounts k ON k.id = t.credit_id
         WHERE (t.subject_id = $1 OR d.owner_id = $1 OR k.owner_id = $1){}",
        listing::newest_first("t.", 2)
    )))
    .bind(account_id);
    let rows = listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let micros = |col: &str| {
                r.try_get::<i64, _>(col)
                    .map(Amount::from_micros)
                    .map_err(db_error)
            };
            Ok(Statement {
                id: r.try_get("id").map_err(db_error)?,
                kind: r.try_get("kind").map_err(db_error)?,
                amount: micros("amount_micros")?,
                currency: r.try_get("currency").map_err(db_error)?,
                debit_id: r.try_get("debit_id").map_err(db_error)?,
                credit_id: r.try_get("credit_id").map_err(db_error)?,
                debit_owner: r.try_get("debit_owner").map_err(db_error)?,
                credit_owner: r.try_get("credit_owner").map_err(db_error)?,
                debit_after: micros("debit_balance_after")?,
                credit_after: micros("credit_balance_after")?,
                subject_id: r.try_get("subject_id").map_err(db_error)?,
                reference: r.try_get("reference").map_err(db_error)?,
                created_at: crate::clock::from_us(r.try_get("created_at").map_err(db_error)?),
            })
        })
        .collect()
}

/// Everything the reconciliation check finds wrong.
#[derive(Debug, Clone, Default)]
pub struct Reconciliation {
    pub accounts: i64,
    /// Sum of all balances per currency (must be zero).
    pub sums: Vec<(String, i64)>,
    pub violations: Vec<String>,
}

/// Recomputes every balance and monthly counter from the transfers.
/// (`SUM` is cast back to BIGINT: PostgreSQL widens it to NUMERIC.)
pub async fn reconcile(c: &mut Conn) -> Result<Reconciliation> {
    let mut out = Reconciliation::default();
    let rows = sqlx::query(
        "SELECT l.id, l.kind, l.balance_micros,
            COALESCE((SELECT CAST(SUM(amount_micros) AS BIGINT) FROM transfers t WHERE t.credit_id = l.id), 0)
          - COALESCE((SELECT CAST(SUM(amount_micros) AS BIGINT) FROM transfers t WHERE t.debit_id = l.id), 0) AS recomputed
         FROM ledger_accounts l ORDER BY l.id",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    for r in &rows {
        let id: String = r.try_get("id").map_err(db_error)?;
        let kind: String = r.try_get("kind").map_err(db_error)?;
        let stored: i64 = r.try_get("balance_micros").map_err(db_error)?;
        let recomputed: i64 = r.try_get("recomputed").map_err(db_error)?;
        if stored != recomputed {
            out.violations.push(format!(
                "{id}: stored balance {stored} micros, transfers give {recomputed}"
            ));
        }
        if (kind == "balance" || kind == "budget") && stored < 0 {
            out.violations
                .push(format!("{id}: {kind} is below zero ({stored} micros)"));
        }
    }
    out.accounts = rows.len() as i64;
    let sums = sqlx::query("SELECT currency, CAST(SUM(balance_micros) AS BIGINT) AS total FROM ledger_accounts GROUP BY currency ORDER BY currency")
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    for r in &sums {
        let currency: String = r.try_get("currency").map_err(db_error)?;
        let total: i64 = r.try_get("total").map_err(db_error)?;
        if total != 0 {
            out.violations.push(format!(
                "{currency}: ledger accounts sum to {total} micros, not zero"
            ));
        }
        out.sums.push((currency, total));
    }
    let deleted = sqlx::query(
        "SELECT l.id FROM ledger_accounts l JOIN accounts a ON a.id = l.owner_id
         WHERE a.status = 'deleted' AND l.kind IN ('balance', 'budget') AND l.balance_micros <> 0",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    for r in &deleted {
        let id: String = r.try_get("id").map_err(db_error)?;
        out.violations
            .push(format!("{id}: a deleted account still holds money"));
    }
    // Monthly counters against the transfers of each month.
    let counters = sqlx::query(
        "SELECT m.account_id, m.month, m.usage_micros, m.allocated_micros, m.returned_micros,
            m.restored_micros, m.limit_micros, a.kind,
            COALESCE((SELECT CAST(SUM(t.amount_micros) AS BIGINT) FROM transfers t JOIN ledger_accounts d ON d.id = t.debit_id
                WHERE t.kind = 'usage' AND t.month = m.month AND d.kind = 'credit'
                  AND ((a.kind = 'parent' AND t.tree_id = m.account_id) OR t.subject_id = m.account_id)), 0) AS usage_t,
            COALESCE((SELECT CAST(SUM(t.amount_micros) AS BIGINT) FROM transfers t JOIN ledger_accounts d ON d.id = t.debit_id
                WHERE t.kind = 'allocation' AND t.month = m.month AND d.kind = 'credit' AND t.tree_id = m.account_id), 0) AS allocated_t,
            COALESCE((SELECT CAST(SUM(t.amount_micros) AS BIGINT) FROM transfers t JOIN ledger_accounts k ON k.id = t.credit_id
                WHERE t.kind = 'return' AND t.month = m.month AND k.kind = 'credit' AND t.tree_id = m.account_id), 0) AS returned_t
         FROM monthly_spend m JOIN accounts a ON a.id = m.account_id",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    for r in &counters {
        let get = |col: &str| r.try_get::<i64, _>(col).map_err(db_error);
        let account: String = r.try_get("account_id").map_err(db_error)?;
        let month: String = r.try_get("month").map_err(db_error)?;
        let is_parent = r.try_get::<String, _>("kind").map_err(db_error)? == "parent";
        let pairs = [("usage", get("usage_micros")?, get("usage_t")?)];
        let parent_pairs = [
            ("allocated", get("allocated_micros")?, get("allocated_t")?),
            ("returned", get("returned_micros")?, get("returned_t")?),
        ];
        // The stored rule of the postpaid month, re-checked.
        let (usage, allocated, restored) = (
            get("usage_micros")?,
            get("allocated_micros")?,
            get("restored_micros")?,
        );
        let net = usage + allocated - restored;
        if restored > get("returned_micros")? || net < 0 {
            out.violations.push(format!(
                "{account} {month}: returns restored {restored} micros, more than was returned or spent"
            ));
        }
        if let Some(limit) = r
            .try_get::<Option<i64>, _>("limit_micros")
            .map_err(db_error)?
            && net > limit
        {
            out.violations.push(format!(
                "{account} {month}: spent {net} micros past its limit of {limit}"
            ));
        }
        for (name, counted, from_transfers) in pairs.iter().chain(if is_parent {
            parent_pairs.iter()
        } else {
            [].iter()
        }) {
            if counted != from_transfers {
                out.violations.push(format!("{account} {month}: {name} counted {counted} micros, transfers give {from_transfers}"));
            }
        }
    }
    Ok(out)
}
