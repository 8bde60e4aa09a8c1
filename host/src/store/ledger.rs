//! The ledger tables: ledger accounts, transfers, monthly spend.
//!
//! Limits are enforced by conditional updates (`... WHERE balance_micros >=
//! $amount`), never by a read followed by a write, so no concurrent request
//! on either backend can overdraw. Rows are locked in one global order
//! (monthly counters, then ledger accounts by id) so two transfers never
//! deadlock on PostgreSQL.

use sqlx::{AssertSqlSafe, Row};

use super::{Conn, db_error};
use crate::domain::Amount;
use crate::domain::ledger::{LedgerKind, LedgerRef, MonthlyLimit, Posting, SpendColumn};
use crate::secrets::new_id;
use crate::{Error, Result};

/// A transfer as written.
#[derive(Debug, Clone)]
pub struct Posted {
    pub id: String,
    pub debit_after: Amount,
    pub credit_after: Amount,
}

/// Creates a ledger account on first use; any host may, at any time.
pub async fn ensure(c: &mut Conn, r: &LedgerRef, now_us: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_accounts (id, kind, owner_id, currency, balance_micros, created_at)
         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(r.id())
    .bind(r.kind.as_str())
    .bind(&r.owner)
    .bind(&r.currency)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
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

async fn count_spend(
    c: &mut Conn,
    limit: &MonthlyLimit,
    posting: &Posting,
    amount: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO monthly_spend (account_id, month) VALUES ($1, $2) ON CONFLICT (account_id, month) DO NOTHING")
        .bind(&limit.account_id)
        .bind(&posting.month)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    let col = column(limit.column);
    let cap = limit
        .limit
        .map(|l| l.to_micros().expect("stored limits fit"))
        .unwrap_or(-1);
    // The column name comes from the enum above, never from input.
    let sql = format!(
        "UPDATE monthly_spend SET {col} = {col} + $3
         WHERE account_id = $1 AND month = $2
           AND ($4 < 0 OR usage_micros + allocated_micros - returned_micros + $3 <= $4)"
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(&limit.account_id)
        .bind(&posting.month)
        .bind(amount)
        .bind(cap)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(limit_refusal(limit, posting))
    }
}

async fn debit(c: &mut Conn, r: &LedgerRef, amount: i64) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE ledger_accounts SET balance_micros = balance_micros - $2
         WHERE id = $1 AND ($3 = 0 OR balance_micros >= $2) RETURNING balance_micros",
    )
    .bind(r.id())
    .bind(amount)
    .bind(i64::from(r.never_negative()))
    .fetch_optional(&mut *c)
    .await
    .map_err(db_error)?;
    row.map(|r| r.try_get::<i64, _>("balance_micros"))
        .transpose()
        .map_err(db_error)
}

async fn credit(c: &mut Conn, r: &LedgerRef, amount: i64) -> Result<i64> {
    sqlx::query("UPDATE ledger_accounts SET balance_micros = balance_micros + $2 WHERE id = $1 RETURNING balance_micros")
        .bind(r.id())
        .bind(amount)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get::<i64, _>("balance_micros"))
        .map_err(db_error)
}

fn wallet_name(r: &LedgerRef) -> &'static str {
    match r.kind {
        LedgerKind::Balance => "the parent's balance",
        LedgerKind::Budget => "the sub-account's budget",
        _ => "the source account",
    }
}

/// Applies one posting: its monthly counters, both sides of the transfer
/// and the transfer row, in the caller's transaction. A limit it would
/// break is a 402 and the caller rolls back.
pub async fn post(c: &mut Conn, p: &Posting, idempotency_key: &str, now_us: i64) -> Result<Posted> {
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
    ensure(c, &p.debit, now_us).await?;
    ensure(c, &p.credit, now_us).await?;

    let mut limits: Vec<&MonthlyLimit> = p.spend.iter().collect();
    limits.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    for limit in limits {
        count_spend(c, limit, p, amount).await?;
    }
    let insufficient = || {
        Error::InsufficientFunds(format!(
            "{} cannot pay {} {}; add funds or lower the amount",
            wallet_name(&p.debit),
            p.amount.to_api_string(),
            p.debit.currency
        ))
    };
    let (debit_after, credit_after) = if p.debit.id() < p.credit.id() {
        let d = debit(c, &p.debit, amount).await?.ok_or_else(insufficient)?;
        (d, credit(c, &p.credit, amount).await?)
    } else {
        let cr = credit(c, &p.credit, amount).await?;
        (
            debit(c, &p.debit, amount).await?.ok_or_else(insufficient)?,
            cr,
        )
    };
    debug_assert!(!p.debit.never_negative() || debit_after >= 0);

    let id = new_id("txn");
    sqlx::query(
        "INSERT INTO transfers (id, idempotency_key, kind, debit_id, credit_id, amount_micros, currency,
            debit_balance_after, credit_balance_after, subject_id, tree_id, month, reference, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&id)
    .bind(idempotency_key)
    .bind(p.kind.as_str())
    .bind(p.debit.id())
    .bind(p.credit.id())
    .bind(amount)
    .bind(&p.debit.currency)
    .bind(debit_after)
    .bind(credit_after)
    .bind(&p.subject_id)
    .bind(&p.tree_id)
    .bind(&p.month)
    .bind(&p.reference)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(|e| match super::unique_violation(&e) {
        Some(_) => Error::IdempotencyConflict(format!("a transfer with key `{idempotency_key}` already exists")),
        None => db_error(e),
    })?;
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

/// A month's counters: (usage, allocated, returned).
pub async fn monthly(
    c: &mut Conn,
    account_id: &str,
    month: &str,
) -> Result<(Amount, Amount, Amount)> {
    let row = sqlx::query("SELECT usage_micros, allocated_micros, returned_micros FROM monthly_spend WHERE account_id = $1 AND month = $2")
        .bind(account_id)
        .bind(month)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Ok((Amount::ZERO, Amount::ZERO, Amount::ZERO));
    };
    let get = |col: &str| {
        row.try_get::<i64, _>(col)
            .map(Amount::from_micros)
            .map_err(db_error)
    };
    Ok((
        get("usage_micros")?,
        get("allocated_micros")?,
        get("returned_micros")?,
    ))
}

/// Whether any ledger account owned by the tree of `parent_id` holds money.
pub async fn tree_holds_money(c: &mut Conn, parent_id: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM ledger_accounts l JOIN accounts a ON a.id = l.owner_id
         WHERE (a.id = $1 OR a.parent_id = $1) AND l.balance_micros <> 0",
    )
    .bind(parent_id)
    .fetch_one(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(row.try_get::<i64, _>("n").map_err(db_error)? > 0)
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
pub async fn statement(
    c: &mut Conn,
    account_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Statement>> {
    let rows = sqlx::query(
        "SELECT t.*, d.owner_id AS debit_owner, k.owner_id AS credit_owner
         FROM transfers t
         JOIN ledger_accounts d ON d.id = t.debit_id
         JOIN ledger_accounts k ON k.id = t.credit_id
         WHERE (t.subject_id = $1 OR d.owner_id = $1 OR k.owner_id = $1) AND t.id > $2
         ORDER BY t.id LIMIT $3",
    )
    .bind(account_id)
    .bind(after)
    .bind(limit)
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
        "SELECT m.account_id, m.month, m.usage_micros, m.allocated_micros, m.returned_micros, a.kind,
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
