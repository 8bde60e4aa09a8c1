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
