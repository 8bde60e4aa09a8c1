//! The event outbox: an event is written in the transaction of the change
//! it reports (so a change and its event commit or vanish together), then
//! fanned out to the webhooks that subscribe to it.

use super::{Arg, Conn, Step, db_error};
use crate::Result;
use crate::domain::events::EventType;

/// The statement that records an event (`evt_...`, returned) about
/// `account_id` in `tree_id`, in the caller's write. `data` is the event's
/// object as the account's own admins would see it; what a webhook's
/// payload carries is narrowed by `visibility` at delivery.
pub fn emit_step(
    tree_id: &str,
    account_id: &str,
    kind: EventType,
    data: &serde_json::Value,
    now_us: i64,
) -> (String, Step) {
    let id = crate::secrets::new_id("evt");
    let step = Step::new(
        "INSERT INTO events (id, tree_id, account_id, type, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Arg::Text(Some(id.clone())),
            Arg::Text(Some(tree_id.to_string())),
            Arg::Text(Some(account_id.to_string())),
            Arg::Text(Some(kind.as_str().to_string())),
            Arg::Text(Some(data.to_string())),
            Arg::Int(Some(now_us)),
        ],
    );
    (id, step)
}

/// Records an event in the caller's transaction; returns its id.
pub async fn emit(
    c: &mut Conn,
    tree_id: &str,
    account_id: &str,
    kind: EventType,
    data: &serde_json::Value,
    now_us: i64,
) -> Result<String> {
    let (id, step) = emit_step(tree_id, account_id, kind, data, now_us);
    super::run_each(c, std::slice::from_ref(&step))
        .await
        .map_err(db_error)?;
    Ok(id)
}

/// Records, in the caller's transaction, the event of a status change
/// (`account.suspended`, `account.unsuspended`, `account.deleted`) for
/// each of `ids`: set-based, one statement per few hundred accounts. The
/// data is `{"status", "previous_status"}`. A change that is none of
/// those (an invitation accepted) records nothing.
pub async fn status_changed(
    c: &mut Conn,
    ids: &[&str],
    change: super::accounts::StatusChange,
    now_us: i64,
) -> Result<()> {
    let Some(kind) = crate::domain::webhooks::status_event(change.from, change.to) else {
        return Ok(());
    };
    let data = serde_json::json!({
        "status": change.to.as_str(),
        "previous_status": change.from.as_str(),
    })
    .to_string();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 5)).collect();
        // Only placeholders are formatted into the statement.
        let sql = format!(
            "INSERT INTO events (id, tree_id, account_id, type, data, created_at)
             SELECT $1 || '_' || a.id, COALESCE(a.parent_id, a.id), a.id, $2, $3, $4
             FROM accounts a WHERE a.id IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(crate::secrets::new_id("evt"))
            .bind(kind.as_str())
            .bind(&data)
            .bind(now_us);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *c).await.map_err(db_error)?;
    }
    Ok(())
}

/// The `budget.low` event of a budget debit, recorded beside its
/// low-balance notification and on the same condition (the transfer with
/// `idempotency_key` took the budget from at or above the threshold to
/// below it). Data: `{"budget_micros", "threshold_micros", "currency"}`.
pub fn budget_low_step(account_id: &str, idempotency_key: &str, now_us: i64) -> Step {
    Step::new(
        "INSERT INTO events (id, tree_id, account_id, type, data, created_at)
         SELECT $1, COALESCE(a.parent_id, a.id), a.id, 'budget.low',
                '{\"budget_micros\":' || t.debit_balance_after
                || ',\"threshold_micros\":' || a.low_balance_threshold_micros
                || ',\"currency\":\"' || COALESCE(a.currency, p.currency, '') || '\"}', $2
         FROM transfers t JOIN accounts a ON a.id = $3 LEFT JOIN accounts p ON p.id = a.parent_id
         WHERE t.idempotency_key = $4 AND a.low_balance_threshold_micros IS NOT NULL
           AND t.debit_balance_after < a.low_balance_threshold_micros
           AND t.debit_balance_after + t.amount_micros >= a.low_balance_threshold_micros",
        vec![
            Arg::Text(Some(crate::secrets::new_id("evt"))),
            Arg::Int(Some(now_us)),
            Arg::Text(Some(account_id.to_string())),
            Arg::Text(Some(idempotency_key.to_string())),
        ],
    )
}
