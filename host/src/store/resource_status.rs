//! SIM statuses changed by a cascade plan (`resources: "suspend"` and
//! `"resume"`, docs/POLICIES.md "cascade"), set-based: a few statements per
//! 500 sub-accounts, however many SIMs they hold.
//!
//! Each change writes the SIM's next `resource_history` row (event `status`)
//! in the caller's transaction, with a marker in `operation_id`:
//! `cascade:<event>:<account id>` (see [`marker`]). That marker is how a
//! reactivation knows which SIMs the suspension's cascade suspended: a SIM
//! resumes only if its latest history row is still that suspension (so one
//! suspended by hand before, or moved, suspended, resumed or terminated
//! since, is left alone).
//!
//! Statement order: the conditional `UPDATE` first (on PostgreSQL it locks
//! the rows it changes, so no concurrent operation changes them before this
//! transaction ends), then the `INSERT ... SELECT` of the history rows of
//! exactly those rows: the SIMs whose current `seq` has no history row yet.
//! Every other writer writes a resource's change and its history row in one
//! transaction, so only the rows updated here lack one.

use sqlx::AssertSqlSafe;

use super::{Conn, db_error};
use crate::Result;

/// Most sub-account ids in one `IN (...)` list: far below both backends'
/// limits on bound parameters.
const IDS_PER_STATEMENT: usize = 500;

/// The `operation_id` of the history rows a cascade writes: the event and
/// the account whose status change it follows (the parent on `parent.*`
/// events, the sub-account on `subaccount.*` ones). Never an operation's
/// id (`op_...`).
pub fn marker(event: &str, account_id: &str) -> String {
    format!("cascade:{event}:{account_id}")
}

/// `$first, $first+1, ...` for `n` ids.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Suspends every `active` SIM held by one of `holders`, writing a history
/// row marked `operation_id` for each. Returns how many changed.
pub async fn suspend_sims(
    c: &mut Conn,
    holders: &[&str],
    operation_id: &str,
    now_us: i64,
) -> Result<u64> {
    let change = Change {
        from: "active",
        to: "suspended",
        suspended_by: None,
    };
    change_sims(c, holders, change, operation_id, now_us).await
}

/// Resumes the `suspended` SIMs held by one of `holders` whose latest
/// history row is a suspension marked `suspended_by` (see [`marker`]),
/// writing a history row marked `operation_id` for each. Returns how many
/// changed.
pub async fn resume_sims(
    c: &mut Conn,
    holders: &[&str],
    suspended_by: &str,
    operation_id: &str,
    now_us: i64,
) -> Result<u64> {
    let change = Change {
        from: "suspended",
        to: "active",
        suspended_by: Some(suspended_by),
    };
    change_sims(c, holders, change, operation_id, now_us).await
}

/// A status change of SIMs: from, to, and (to resume) the marker of the
/// suspension whose SIMs alone change.
struct Change<'a> {
    from: &'static str,
    to: &'static str,
    suspended_by: Option<&'a str>,
}

async fn change_sims(
    c: &mut Conn,
    holders: &[&str],
    change: Change<'_>,
    operation_id: &str,
    now_us: i64,
) -> Result<u64> {
    // `resources.seq` in the subquery is the row's value before the update.
    let (marked, first_id) = match change.suspended_by {
        Some(_) => (
            " AND EXISTS (SELECT 1 FROM resource_history h
                          WHERE h.resource_id = resources.id AND h.seq = resources.seq
                            AND h.event = 'status' AND h.status = 'suspended'
                            AND h.account_id = resources.account_id
                            AND h.operation_id = $3)",
            4,
        ),
        None => ("", 3),
    };
    let mut changed = 0;
    for chunk in holders.chunks(IDS_PER_STATEMENT) {
        let update = format!(
            "UPDATE resources SET status = $2, seq = seq + 1
             WHERE kind = 'sim' AND status = $1 AND account_id IN ({}){marked}",
            placeholders(first_id, chunk.len())
        );
        // Only placeholders and fixed text are formatted into the statements.
        let mut query = sqlx::query(AssertSqlSafe(update))
            .bind(change.from)
            .bind(change.to);
        if let Some(marker) = change.suspended_by {
            query = query.bind(marker);
        }
        for id in chunk {
            query = query.bind(*id);
        }
        let updated = query
            .execute(&mut *c)
            .await
            .map_err(db_error)?
            .rows_affected();
        if updated == 0 {
            continue;
        }
        let written =
            write_history(c, chunk, (change.from, change.to), operation_id, now_us).await?;
        if written != updated {
            return Err(crate::Error::internal(format!(
                "changed {updated} SIMs from {} to {} but wrote {written} history rows",
                change.from, change.to
            )));
        }
        changed += updated;
    }
    Ok(changed)
}

/// The history rows of the SIMs of `holders` just changed from `from` to
/// `to` in this transaction: those in `to` whose current `seq` has no row.
async fn write_history(
    c: &mut Conn,
    holders: &[&str],
    (from, to): (&str, &str),
    operation_id: &str,
    now_us: i64,
) -> Result<u64> {
    let insert = format!(
        "INSERT INTO resource_history
             (resource_id, seq, event, from_account_id, account_id, from_status, status,
              operation_id, at)
         SELECT r.id, r.seq, 'status', r.account_id, r.account_id, $1, r.status, $2, $3
           FROM resources r
          WHERE r.kind = 'sim' AND r.status = $4 AND r.account_id IN ({})
            AND NOT EXISTS (SELECT 1 FROM resource_history h
                            WHERE h.resource_id = r.id AND h.seq = r.seq)",
        placeholders(5, holders.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(insert))
        .bind(from)
        .bind(operation_id)
        .bind(now_us)
        .bind(to);
    for id in holders {
        query = query.bind(*id);
    }
    Ok(query
        .execute(&mut *c)
        .await
        .map_err(db_error)?
        .rows_affected())
}
