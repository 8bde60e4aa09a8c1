//! Lists newest first (as Stripe's are), by a keyset on `(created_at, id)`.
//!
//! A page asks for rows strictly older than its cursor's `(created_at, id)`
//! and, optionally, created strictly after and before two instants. Ties on
//! `created_at` (several rows in one microsecond, or the test clock holding
//! still) are broken by `id`, so a cursor never skips or repeats a row
//! even when rows are added while a client pages.

use crate::ops::Page;

/// The SQL after `WHERE ...` that selects one page of `alias`'s rows:
/// `AND` the keyset and window, the order and the limit, binding
/// `$first..=$first+3` (see [`bind`]). `alias` is a table alias with its
/// dot (`"t."`) or empty.
pub fn newest_first(alias: &str, first: usize) -> String {
    newest_first_by(&format!("{alias}created_at"), &format!("{alias}id"), first)
}

/// [`newest_first`] over other columns: the creation time `at` and the
/// unique tie-breaker `id`.
pub fn newest_first_by(at: &str, id: &str, first: usize) -> String {
    let (p_at, p_id, p_after, p_limit) = (first, first + 1, first + 2, first + 3);
    format!(
        " AND ({at} < ${p_at} OR ({at} = ${p_at} AND {id} < ${p_id}))
          AND {at} > ${p_after}
         ORDER BY {at} DESC, {id} DESC LIMIT ${p_limit}"
    )
}

/// Binds the four parameters [`newest_first`] names, in its order.
pub fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    page: &Page,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(page.before_us)
        .bind(page.before_id.clone())
        .bind(page.after_us)
        .bind(page.fetch_limit())
}
