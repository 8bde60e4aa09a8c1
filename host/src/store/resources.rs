//! Lines and SIMs: provisioning, reads, lists and counts.
//!
//! `resources.account_id` is a resource's one holder (the parent itself for
//! the Available pool). Whoever changes it does so with a conditional
//! UPDATE on the value it read, bumps `seq` and writes the matching
//! `resource_history` row in the same transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Arg, Conn, Step, db_error, run_each};
use crate::domain::resources::{ResourceKind, ResourceStatus};
use crate::{Error, Result};

/// Rows per multi-row INSERT: few enough bound parameters per statement.
const INSERT_CHUNK: usize = 400;

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub kind: ResourceKind,
    pub identifier: String,
    pub tree_id: String,
    pub account_id: String,
    pub status: ResourceStatus,
    pub tags: Vec<String>,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    pub assigned_at: DateTime<Utc>,
}

impl Resource {
    /// Whether it is in its parent's Available pool.
    pub fn is_available(&self) -> bool {
        self.account_id == self.tree_id
    }
}

/// Where in a tree a list looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The parent's Available pool.
    Available,
    /// Held by any sub-account.
    Assigned,
}

/// A list's filter; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<ResourceKind>,
    pub status: Option<ResourceStatus>,
    pub place: Option<Place>,
    pub tag: Option<String>,
    /// Start of the identifier: `+` and digits, or digits.
    pub prefix: Option<String>,
    /// Held by this account (the parent's id: the Available pool).
    pub account_id: Option<String>,
}

/// Live resources of one holder, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub line: i64,
    pub sim: i64,
}

fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn corrupt(what: &str) -> Error {
    Error::internal(format!("stored resource has a malformed {what}"))
}

pub(crate) fn from_row(row: &AnyRow) -> Result<Resource> {
    let text = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
    let int = |col: &str| row.try_get::<i64, _>(col).map_err(db_error);
    Ok(Resource {
        id: text("id")?,
        kind: ResourceKind::parse(&text("kind")?).ok_or_else(|| corrupt("kind"))?,
        identifier: text("identifier")?,
        tree_id: text("tree_id")?,
        account_id: text("account_id")?,
        status: ResourceStatus::parse(&text("status")?).ok_or_else(|| corrupt("status"))?,
        tags: serde_json::from_str(&text("tags")?).map_err(|_| corrupt("tags"))?,
        seq: int("seq")?,
        created_at: from_us(int("created_at")?),
        assigned_at: from_us(int("assigned_at")?),
    })
}

pub(crate) const COLUMNS: &str = "r.id, r.kind, r.identifier, r.tree_id, r.account_id, r.status, r.tags, r.seq, r.created_at, r.assigned_at";

/// The identifiers among `identifiers` that some resource already has.
pub async fn taken(c: &mut Conn, identifiers: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in identifiers.chunks(INSERT_CHUNK) {
        let marks = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT identifier FROM resources WHERE identifier IN ({marks})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(&mut *c).await.map_err(db_error)? {
            out.push(row.try_get::<String, _>(0).map_err(db_error)?);
        }
    }
    Ok(out)
}

/// A provisioning batch: new resources of one kind in a parent's Available
/// pool, each with its first history row (`provision`, under `batch_id`).
pub struct Provision<'a> {
    pub batch_id: &'a str,
    pub tree_id: &'a str,
    pub kind: ResourceKind,
    /// `(resource id, identifier)`, identifiers already checked.
    pub items: &'a [(String, String)],
    pub tags: &'a [String],
    pub now_us: i64,
}

/// The statements that write a provisioning batch (run in the caller's
/// transaction; the unique index on `identifier` refuses a taken one).
pub fn provision_steps(p: &Provision<'_>) -> Result<Vec<Step>> {
    let status = p.kind.initial_status().as_str();
    let tags = serde_json::to_string(p.tags).map_err(|e| Error::internal(e.to_string()))?;
    let mut steps = Vec::new();
    for chunk in p.items.chunks(INSERT_CHUNK) {
        // $1 kind, $2 tree (and holder), $3 status, $4 tags, $5 now.
        let mut args = vec![
            Arg::Text(Some(p.kind.as_str().into())),
            Arg::Text(Some(p.tree_id.into())),
            Arg::Text(Some(status.into())),
            Arg::Text(Some(tags.clone())),
            Arg::Int(Some(p.now_us)),
        ];
        let mut rows = Vec::with_capacity(chunk.len());
        // $1 tree (and holder), $2 status, $3 now, $4 batch.
        let mut hargs = vec![
            Arg::Text(Some(p.tree_id.into())),
            Arg::Text(Some(status.into())),
            Arg::Int(Some(p.now_us)),
            Arg::Text(Some(p.batch_id.into())),
        ];
        let mut history = Vec::with_capacity(chunk.len());
        for (id, identifier) in chunk {
            let i = args.len() + 1;
            rows.push(format!("(${i}, $1, ${}, $2, $2, $3, $4, 1, $5, $5)", i + 1));
            args.push(Arg::Text(Some(id.clone())));
            args.push(Arg::Text(Some(identifier.clone())));
            hargs.push(Arg::Text(Some(id.clone())));
            history.push(format!(
                "(${}, 1, 'provision', NULL, $1, NULL, $2, $4, $3)",
                hargs.len()
            ));
        }
        steps.push(Step::new(
            format!(
                "INSERT INTO resources (id, kind, identifier, tree_id, account_id, status, tags, seq, created_at, assigned_at) VALUES {}",
                rows.join(", ")
            ),
            args,
        ));
        steps.push(Step::new(
            format!(
                "INSERT INTO resource_history (resource_id, seq, event, from_account_id, account_id, from_status, status, operation_id, at) VALUES {}",
                history.join(", ")
            ),
            hargs,
        ));
        if !p.tags.is_empty() {
            let mut targs = vec![Arg::Text(Some(p.tree_id.into()))];
            let mut trows = Vec::new();
            for tag in p.tags {
                targs.push(Arg::Text(Some(tag.clone())));
                let t = targs.len();
                for (id, _) in chunk {
                    targs.push(Arg::Text(Some(id.clone())));
                    trows.push(format!("($1, ${t}, ${})", targs.len()));
                }
            }
            steps.push(Step::new(
                format!(
                    "INSERT INTO resource_tags (tree_id, tag, resource_id) VALUES {}",
                    trows.join(", ")
                ),
                targs,
            ));
        }
    }
    Ok(steps)
}

/// PostgreSQL: refreshes the planner's statistics of the resource tables
/// after a large batch, so the next list walks an index in id order
/// instead of sorting what stale estimates called a few rows (autovacuum
/// would get there, but only later). SQLite plans without statistics.
pub async fn refresh_statistics(c: &mut Conn) -> Result<()> {
    sqlx::query("ANALYZE resources, resource_tags")
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// How many resources a provisioning batch created (to answer a retry of
/// a request that committed).
pub async fn batch_size(c: &mut Conn, batch_id: &str) -> Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM resource_history WHERE operation_id = $1 AND seq = 1")
        .bind(batch_id)
        .fetch_one(&mut *c)
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .map_err(db_error)
}

/// One resource of a tree.
pub async fn get(c: &mut Conn, tree_id: &str, id: &str) -> Result<Option<Resource>> {
    let sql = format!("SELECT {COLUMNS} FROM resources r WHERE r.id = $1 AND r.tree_id = $2");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(tree_id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// One page of a tree's resources that pass `filter`, newest first.
pub async fn list(
    c: &mut Conn,
    tree_id: &str,
    filter: &Filter,
    page: &crate::ops::Page,
) -> Result<Vec<Resource>> {
    let mut args: Vec<Arg> = vec![Arg::Text(Some(tree_id.into()))];
    let mut arg = |v: String| {
        args.push(Arg::Text(Some(v)));
        format!("${}", args.len())
    };
    // A tag filter walks the tag index in resource order; anything else the
    // tree's (or the holder's) id index.
    let (from, id_col) = match &filter.tag {
        Some(tag) => {
            let t = arg(tag.clone());
            (
                format!(
                    "resource_tags t JOIN resources r ON r.id = t.resource_id WHERE t.tree_id = $1 AND t.tag = {t}"
                ),
                "t.resource_id",
            )
        }
        None => ("resources r WHERE r.tree_id = $1".to_string(), "r.id"),
    };
    let mut sql = format!("SELECT {COLUMNS} FROM {from}");
    if let Some(a) = &filter.account_id {
        sql += &format!(" AND r.account_id = {}", arg(a.clone()));
    }
    match filter.place {
        Some(Place::Available) => sql += " AND r.account_id = r.tree_id",
        Some(Place::Assigned) => sql += " AND r.account_id <> r.tree_id",
        None => {}
    }
    if let Some(k) = filter.kind {
        sql += &format!(" AND r.kind = {}", arg(k.as_str().into()));
    }
    if let Some(s) = filter.status {
        sql += &format!(" AND r.status = {}", arg(s.as_str().into()));
    }
    if let Some(p) = &filter.prefix {
        // Prefixes are `+` and digits (checked above), so no LIKE wildcard
        // can reach the pattern.
        sql += &format!(" AND r.identifier LIKE {}", arg(format!("{p}%")));
    }
    let first = args.len() + 1;
    sql += &super::listing::newest_first_by("r.created_at", id_col, first);
    args.push(Arg::Int(Some(page.before_us)));
    args.push(Arg::Text(Some(page.before_id.clone())));
    args.push(Arg::Int(Some(page.after_us)));
    args.push(Arg::Int(Some(page.fetch_limit())));
    let rows = run_each(c, &[Step::new(sql, args)])
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// Live resources per holder in a tree, with each holder's name
/// (`summary`).
pub async fn counts_by_holder(
    c: &mut Conn,
    tree_id: &str,
) -> Result<BTreeMap<String, (String, Counts)>> {
    let rows = sqlx::query(
        "SELECT r.account_id, a.name, r.kind, COUNT(*) AS n FROM resources r
         JOIN accounts a ON a.id = r.account_id
         WHERE r.tree_id = $1 AND r.status NOT IN ('disconnected', 'terminated')
         GROUP BY r.account_id, a.name, r.kind",
    )
    .bind(tree_id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_error)?;
    let counts = collect_counts(&rows)?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let account: String = row.try_get("account_id").map_err(db_error)?;
        let name: String = row.try_get("name").map_err(db_error)?;
        let n = counts.get(&account).copied().unwrap_or_default();
        out.insert(account, (name, n));
    }
    Ok(out)
}

/// SIMs `account_id` holds in `status` (a cascade's `"suspend"` changes
/// the `active` ones).
pub async fn count_sims(c: &mut Conn, account_id: &str, status: ResourceStatus) -> Result<i64> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM resources WHERE account_id = $1 AND kind = 'sim' AND status = $2",
    )
    .bind(account_id)
    .bind(status.as_str())
    .fetch_one(&mut *c)
    .await
    .and_then(|r| r.try_get::<i64, _>("n"))
    .map_err(db_error)
}

/// Live resources of each of `account_ids` (those with none are absent).
pub async fn counts_of(c: &mut Conn, account_ids: &[String]) -> Result<BTreeMap<String, Counts>> {
    let mut out = BTreeMap::new();
    for chunk in account_ids.chunks(INSERT_CHUNK) {
        let marks = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT account_id, kind, COUNT(*) AS n FROM resources
             WHERE account_id IN ({marks}) AND status NOT IN ('disconnected', 'terminated')
             GROUP BY account_id, kind"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.clone());
        }
        let rows = q.fetch_all(&mut *c).await.map_err(db_error)?;
        out.extend(collect_counts(&rows)?);
    }
    Ok(out)
}

fn collect_counts(rows: &[AnyRow]) -> Result<BTreeMap<String, Counts>> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for row in rows {
        let account: String = row.try_get("account_id").map_err(db_error)?;
        let kind: String = row.try_get("kind").map_err(db_error)?;
        let n: i64 = row.try_get("n").map_err(db_error)?;
        let counts = out.entry(account).or_default();
        match ResourceKind::parse(&kind) {
            Some(ResourceKind::Line) => counts.line += n,
            Some(ResourceKind::Sim) => counts.sim += n,
            None => return Err(corrupt("kind")),
        }
    }
    Ok(out)
}
