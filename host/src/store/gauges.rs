//! The backlog gauges `/metrics` shows: bounded counts over the indexes the
//! workers themselves scan (outbox, queues), so a scrape costs at most a few
//! index scans of `max` rows each.

use sqlx::Row;

use super::{Store, db_error};

/// (metric name, help, SQL counting its rows up to `$1`)
const GAUGES: [(&str, &str, &str); 7] = [
    (
        "canopy_webhook_deliveries_pending",
        "Webhook deliveries not yet delivered nor given up",
        "SELECT id FROM webhook_deliveries WHERE status = 'pending'",
    ),
    (
        "canopy_events_undispatched",
        "Events in the outbox not yet fanned out to webhooks",
        "SELECT id FROM events WHERE dispatched_at IS NULL",
    ),
    (
        "canopy_notifications_undelivered",
        "E-mail notifications waiting in the outbox",
        "SELECT id FROM notifications WHERE delivered_at IS NULL",
    ),
    (
        "canopy_operations_pending",
        "Bulk operations queued or running",
        "SELECT id FROM operations WHERE status IN ('queued', 'running')",
    ),
    (
        "canopy_campaigns_pending",
        "Campaigns scheduled, queued or sending",
        "SELECT id FROM campaigns WHERE status IN ('scheduled', 'queued', 'sending')",
    ),
    (
        "canopy_ledger_accounts",
        "Ledger accounts",
        "SELECT id FROM ledger_accounts",
    ),
    (
        "canopy_ledger_transfers",
        "Ledger transfers",
        "SELECT id FROM transfers",
    ),
];

/// Each gauge's name, help and value (at most `max`).
pub async fn read(
    store: &Store,
    max: i64,
) -> crate::Result<Vec<(&'static str, &'static str, i64)>> {
    let mut c = store.reader().await?;
    let mut out = Vec::with_capacity(GAUGES.len());
    for (name, help, rows) in GAUGES {
        let sql = format!("SELECT COUNT(*) AS n FROM ({rows} LIMIT $1) AS counted");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(max)
            .fetch_one(&mut *c)
            .await
            .map_err(db_error)?;
        out.push((name, help, row.try_get::<i64, _>("n").map_err(db_error)?));
    }
    Ok(out)
}
