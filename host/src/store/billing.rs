//! Offers, the offer of each place, adjustments and invoices; the reads a
//! bill is computed from (resource history, usage transfers).

use std::collections::HashMap;

use sqlx::Row;

use super::{Conn, db_error, unique_violation};
use crate::domain::billing::{Bill, HistoryRow};
use crate::domain::resources::{ResourceKind, ResourceStatus};
use crate::{Error, Result};

/// A rate plan, as stored.
#[derive(Debug, Clone)]
pub struct Offer {
    pub id: String,
    pub name: String,
    pub kind: ResourceKind,
    pub monthly_fee_micros: i64,
    pub currency: String,
    /// JSON text (`{"sms": N}`).
    pub included: String,
    pub created_at: i64,
}

fn offer_from_row(r: &sqlx::any::AnyRow) -> Result<Offer> {
    let kind: String = r.try_get("kind").map_err(db_error)?;
    Ok(Offer {
        id: r.try_get("id").map_err(db_error)?,
        name: r.try_get("name").map_err(db_error)?,
        kind: ResourceKind::parse(&kind).ok_or_else(|| Error::internal("stored offer kind"))?,
        monthly_fee_micros: r.try_get("monthly_fee_micros").map_err(db_error)?,
        currency: r.try_get("currency").map_err(db_error)?,
        included: r.try_get("included").map_err(db_error)?,
        created_at: r.try_get("created_at").map_err(db_error)?,
    })
}

pub async fn insert_offer(c: &mut Conn, o: &Offer) -> Result<()> {
    sqlx::query(
        "INSERT INTO offers (id, name, kind, monthly_fee_micros, currency, included, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&o.id)
    .bind(&o.name)
    .bind(o.kind.as_str())
    .bind(o.monthly_fee_micros)
    .bind(&o.currency)
    .bind(&o.included)
    .bind(o.created_at)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_offer(c: &mut Conn, id: &str) -> Result<Option<Offer>> {
    let row = sqlx::query("SELECT * FROM offers WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(offer_from_row).transpose()
}

/// One page of offers, newest first.
pub async fn list_offers(c: &mut Conn, page: &crate::ops::Page) -> Result<Vec<Offer>> {
    let q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM offers WHERE 1 = 1{}",
        super::listing::newest_first("", 1)
    )));
    let rows = super::listing::bind(q, page)
        .fetch_all(&mut *c)
        .await
        .map_err(db_error)?;
    rows.iter().map(offer_from_row).collect()
}

/// Sets the offer of a place for a kind (a sub-account's own, or on the
/// parent's id its default).
pub async fn set_account_offer(
    c: &mut Conn,
    account_id: &str,
    kind: ResourceKind,
    offer_id: &str,
    now_us: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO account_offers (account_id, kind, offer_id, assigned_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, kind) DO UPDATE SET offer_id = excluded.offer_id, assigned_at = excluded.assigned_at",
    )
    .bind(account_id)
    .bind(kind.as_str())
    .bind(offer_id)
    .bind(now_us)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The offers of one account by kind.
pub async fn offers_of(c: &mut Conn, account_id: &str) -> Result<HashMap<ResourceKind, Offer>> {
    let rows = sqlx::query(
        "SELECT o.* FROM account_offers ao JOIN offers o ON o.id = ao.offer_id WHERE ao.account_id = $1",
    )
    .bind(account_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| offer_from_row(r).map(|o| (o.kind, o)))
        .collect()
}

/// Every offer set in a tree: `(account_id, kind) -> offer`.
pub async fn offers_of_tree(
    c: &mut Conn,
    parent_id: &str,
) -> Result<HashMap<(String, ResourceKind), Offer>> {
    let rows = sqlx::query(
        "SELECT ao.account_id AS place, o.* FROM account_offers ao
         JOIN offers o ON o.id = ao.offer_id
         JOIN accounts a ON a.id = ao.account_id
         WHERE a.id = $1 OR a.parent_id = $1",
    )
    .bind(parent_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let o = offer_from_row(r)?;
            Ok(((r.try_get("place").map_err(db_error)?, o.kind), o))
        })
        .collect()
}

/// A sub-account as a bill groups it.
#[derive(Debug, Clone)]
pub struct Place {
    pub id: String,
    pub name: String,
    pub merged_into: Option<String>,
    pub status: String,
}

/// Every sub-account of a parent, whatever its status (a deleted or merged
/// one may still have days to bill).
pub async fn places(c: &mut Conn, parent_id: &str) -> Result<Vec<Place>> {
    let rows = sqlx::query(
        "SELECT id, name, merged_into, status FROM accounts WHERE parent_id = $1 ORDER BY id",
    )
    .bind(parent_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(Place {
                id: r.try_get("id").map_err(db_error)?,
                name: r.try_get("name").map_err(db_error)?,
                merged_into: r.try_get("merged_into").map_err(db_error)?,
                status: r.try_get("status").map_err(db_error)?,
            })
        })
        .collect()
}

/// A resource and its history up to some instant.
#[derive(Debug, Clone)]
pub struct Billable {
    pub id: String,
    pub kind: ResourceKind,
    pub identifier: String,
    pub history: Vec<HistoryRow>,
}

/// The tree's resources with their history rows before `before_us`, in
/// order (resources that did not exist yet are left out).
pub async fn billables(c: &mut Conn, parent_id: &str, before_us: i64) -> Result<Vec<Billable>> {
    let rows = sqlx::query(
        "SELECT r.id, r.kind, r.identifier, h.account_id, h.status, h.at FROM resources r
         JOIN resource_history h ON h.resource_id = r.id
         WHERE r.tree_id = $1 AND h.at < $2
         ORDER BY r.id, h.seq",
    )
    .bind(parent_id)
    .bind(before_us)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    let mut out: Vec<Billable> = Vec::new();
    for r in &rows {
        let id: String = r.try_get("id").map_err(db_error)?;
        let status: String = r.try_get("status").map_err(db_error)?;
        let row = HistoryRow {
            at_us: r.try_get("at").map_err(db_error)?,
            account_id: r.try_get("account_id").map_err(db_error)?,
            status: ResourceStatus::parse(&status)
                .ok_or_else(|| Error::internal("stored resource status"))?,
        };
        match out.last_mut() {
            Some(b) if b.id == id => b.history.push(row),
            _ => {
                let kind: String = r.try_get("kind").map_err(db_error)?;
                out.push(Billable {
                    id,
                    kind: ResourceKind::parse(&kind)
                        .ok_or_else(|| Error::internal("stored resource kind"))?,
                    identifier: r.try_get("identifier").map_err(db_error)?,
                    history: vec![row],
                });
            }
        }
    }
    Ok(out)
}

/// Usage charged in a tree in a month, by the account it was for (the
/// recurring charges posted at close are left out: they are the bill's own).
pub async fn usage_by_account(
    c: &mut Conn,
    parent_id: &str,
    month: &str,
) -> Result<HashMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT subject_id, CAST(SUM(amount_micros) AS BIGINT) AS total FROM transfers
         WHERE tree_id = $1 AND month = $2 AND kind = 'usage' AND idempotency_key NOT LIKE 'recurring:%'
         GROUP BY subject_id",
    )
    .bind(parent_id)
    .bind(month)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    totals(&rows, |r| r.try_get("subject_id").map_err(db_error))
}

/// Rows of `total` (micros) by the key `key` reads from each row.
fn totals<K: std::hash::Hash + Eq>(
    rows: &[sqlx::any::AnyRow],
    key: impl Fn(&sqlx::any::AnyRow) -> Result<K>,
) -> Result<HashMap<K, i64>> {
    rows.iter()
        .map(|r| Ok((key(r)?, r.try_get("total").map_err(db_error)?)))
        .collect()
}

/// A credit or discount on a period's bill.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub id: String,
    pub tree_id: String,
    /// `None`: the parent's own (Available) group.
    pub account_id: Option<String>,
    pub kind: String,
    pub amount_micros: i64,
    pub currency: String,
    pub reason: String,
    pub period: String,
    pub created_at: i64,
}

pub async fn insert_adjustment(c: &mut Conn, a: &Adjustment) -> Result<()> {
    sqlx::query(
        "INSERT INTO adjustments (id, tree_id, account_id, kind, amount_micros, currency, reason, period, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(&a.tree_id)
    .bind(&a.account_id)
    .bind(&a.kind)
    .bind(a.amount_micros)
    .bind(&a.currency)
    .bind(&a.reason)
    .bind(&a.period)
    .bind(a.created_at)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_adjustment(c: &mut Conn, id: &str) -> Result<Option<Adjustment>> {
    let row = sqlx::query("SELECT * FROM adjustments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.map(|r| {
        Ok(Adjustment {
            id: r.try_get("id").map_err(db_error)?,
            tree_id: r.try_get("tree_id").map_err(db_error)?,
            account_id: r.try_get("account_id").map_err(db_error)?,
            kind: r.try_get("kind").map_err(db_error)?,
            amount_micros: r.try_get("amount_micros").map_err(db_error)?,
            currency: r.try_get("currency").map_err(db_error)?,
            reason: r.try_get("reason").map_err(db_error)?,
            period: r.try_get("period").map_err(db_error)?,
            created_at: r.try_get("created_at").map_err(db_error)?,
        })
    })
    .transpose()
}

/// A period's adjustments summed by group and kind: `(account_id or the
/// parent's id, kind) -> micros`.
pub async fn adjustments_of(
    c: &mut Conn,
    parent_id: &str,
    period: &str,
) -> Result<HashMap<(String, String), i64>> {
    let rows = sqlx::query(
        "SELECT COALESCE(account_id, tree_id) AS place, kind, CAST(SUM(amount_micros) AS BIGINT) AS total
         FROM adjustments WHERE tree_id = $1 AND period = $2 GROUP BY COALESCE(account_id, tree_id), kind",
    )
    .bind(parent_id)
    .bind(period)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    totals(&rows, |r| {
        Ok((
            r.try_get("place").map_err(db_error)?,
            r.try_get("kind").map_err(db_error)?,
        ))
    })
}

/// A closed period's bill, fixed.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: String,
    pub tree_id: String,
    pub period: String,
    pub bill: Bill,
    pub created_at: i64,
}

fn invoice_from_row(r: &sqlx::any::AnyRow) -> Result<Invoice> {
    let document: String = r.try_get("document").map_err(db_error)?;
    Ok(Invoice {
        id: r.try_get("id").map_err(db_error)?,
        tree_id: r.try_get("tree_id").map_err(db_error)?,
        period: r.try_get("period").map_err(db_error)?,
        bill: serde_json::from_str(&document).map_err(Error::internal)?,
        created_at: r.try_get("created_at").map_err(db_error)?,
    })
}

/// Claims a period for its invoice: `false` if another host (or an earlier
/// pass) already closed it. The row is rewritten with the final document
/// by [`finish_invoice`] in the same transaction.
pub async fn claim_invoice(
    c: &mut Conn,
    id: &str,
    tree_id: &str,
    period: &str,
    currency: &str,
    now_us: i64,
) -> Result<bool> {
    let result = sqlx::query(
        "INSERT INTO invoices (id, tree_id, period, currency, total_micros, due_micros, document, created_at)
         VALUES ($1, $2, $3, $4, 0, 0, '{}', $5)",
    )
    .bind(id)
    .bind(tree_id)
    .bind(period)
    .bind(currency)
    .bind(now_us)
    .execute(&mut *c)
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if unique_violation(&e).is_some() => Ok(false),
        Err(e) => Err(db_error(e)),
    }
}

pub async fn finish_invoice(c: &mut Conn, id: &str, bill: &Bill) -> Result<()> {
    sqlx::query(
        "UPDATE invoices SET total_micros = $2, due_micros = $3, document = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(bill.total)
    .bind(bill.due)
    .bind(serde_json::to_string(bill).map_err(Error::internal)?)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_invoice(c: &mut Conn, tree_id: &str, id: &str) -> Result<Option<Invoice>> {
    let row = sqlx::query("SELECT * FROM invoices WHERE id = $1 AND tree_id = $2")
        .bind(id)
        .bind(tree_id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(invoice_from_row).transpose()
}

pub async fn invoice_of_period(
    c: &mut Conn,
    tree_id: &str,
    period: &str,
) -> Result<Option<Invoice>> {
    let row = sqlx::query("SELECT * FROM invoices WHERE tree_id = $1 AND period = $2")
        .bind(tree_id)
        .bind(period)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?;
    row.as_ref().map(invoice_from_row).transpose()
}

/// A tree's invoices, newest period first, before period `before` (empty:
/// from the newest).
pub async fn list_invoices(
    c: &mut Conn,
    tree_id: &str,
    page: &crate::ops::Page,
) -> Result<Vec<Invoice>> {
    let rows = sqlx::query(
        "SELECT * FROM invoices WHERE tree_id = $1 AND ($2 = '' OR period < $2)
           AND created_at > $4 AND created_at < $5
         ORDER BY period DESC LIMIT $3",
    )
    .bind(tree_id)
    .bind(&page.after)
    .bind(page.fetch_limit())
    .bind(page.after_us)
    .bind(page.before_us)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter().map(invoice_from_row).collect()
}

/// The newest closed period of a tree.
pub async fn last_closed(c: &mut Conn, tree_id: &str) -> Result<Option<String>> {
    sqlx::query("SELECT MAX(period) AS p FROM invoices WHERE tree_id = $1")
        .bind(tree_id)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get::<Option<String>, _>("p"))
        .map_err(db_error)
}

/// When a tree's billing starts: the earliest of its parent's creation and
/// its first resource event.
pub async fn first_activity(c: &mut Conn, parent_id: &str) -> Result<Option<i64>> {
    sqlx::query(
        "SELECT MIN(t) AS first FROM (
            SELECT created_at AS t FROM accounts WHERE id = $1
            UNION ALL
            SELECT MIN(h.at) AS t FROM resource_history h JOIN resources r ON r.id = h.resource_id WHERE r.tree_id = $1
         ) x",
    )
    .bind(parent_id)
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<Option<i64>, _>("first"))
    .map_err(db_error)
}

/// Every parent that is not deleted, for the close pass.
pub async fn parents_to_bill(c: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM accounts WHERE kind = 'parent' AND status <> 'deleted' ORDER BY id",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| r.try_get("id").map_err(db_error))
        .collect()
}
