//! Analytics (docs/TRAFFIC.md, "Analytics"): sums of the counters kept on
//! write, per period or per sub-account. `visibility` runs once per
//! request: `usage` hidden drops spend and volume, `rows: own` reads the
//! viewer's own counters.

use super::{Canopy, Page, Principal};
use crate::domain::Amount;
use crate::domain::traffic::{self, Granularity, Range};
use crate::store;
use crate::store::analytics::{AccountRow, Counts, Scope};
use crate::{Error, Result};

/// Sub-accounts per page of a report by sub-account, by default.
pub const BY_SUBACCOUNT_PAGE_DEFAULT: i64 = 100;

/// What a report asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub from: String,
    pub to: String,
    pub granularity: Option<String>,
    /// `subaccount`: one row per sub-account (parents only).
    pub by: Option<String>,
}

/// One row: a period (`start`) or an account (`account`).
#[derive(Debug, Clone)]
pub struct Row {
    pub start: Option<String>,
    pub account: Option<AccountRow>,
    pub counts: Counts,
    /// `None` when `usage` is hidden.
    pub spend: Option<Amount>,
    pub volume_limit_used: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub granularity: Granularity,
    pub range: Range,
    pub currency: String,
    pub rows: Vec<Row>,
    pub totals: Row,
    pub usage_shown: bool,
    pub next_after: Option<String>,
}

impl Canopy {
    pub async fn analytics(
        &self,
        principal: &Principal,
        account_id: &str,
        req: Request,
        page: &Page,
    ) -> Result<Report> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "analytics.read", &[]).await?;
        let granularity = match req.granularity.as_deref() {
            None => Granularity::Day,
            Some(g) => Granularity::parse(g)
                .ok_or_else(|| Error::invalid("granularity", "must be `day` or `month`"))?,
        };
        let range = traffic::range(&req.from, &req.to, granularity)
            .map_err(|(field, why)| Error::invalid(field, why))?;
        let by_subaccount = match req.by.as_deref() {
            None => false,
            Some("subaccount") => {
                if !actor.target.is_parent() {
                    return Err(Error::invalid(
                        "by",
                        "`subaccount` applies to a parent account; ask for this account's own series without `by`",
                    ));
                }
                true
            }
            Some(_) => return Err(Error::invalid("by", "must be `subaccount`")),
        };
        let view = self.view(&actor, "analytics.read", "analytics").await?;
        let usage_shown = !view.hides("usage");
        let user = if view.own_rows_only {
            actor.user_id.as_str()
        } else {
            ""
        };
        let g = granularity.as_str();
        let target = &actor.target;
        let mut c = self.store.reader().await?;
        let one_month = granularity == Granularity::Month && range.periods.len() == 1;
        let row = |start: Option<String>,
                   account: Option<AccountRow>,
                   counts: Counts,
                   limit: Option<i64>,
                   monthly: bool| Row {
            start,
            account,
            counts,
            spend: usage_shown.then(|| Amount::from_micros(counts.spend_micros)),
            volume_limit_used: (usage_shown && monthly)
                .then(|| traffic::volume_limit_used(counts.spend_micros, limit))
                .flatten(),
        };
        let mut totals = Counts::default();
        let (rows, next_after) = if by_subaccount {
            let mut accounts = Vec::new();
            if page.after.is_empty() {
                accounts.push(AccountRow {
                    account_id: target.id.clone(),
                    name: target.name.clone(),
                    kind: "parent".into(),
                    monthly_usage_limit_micros: None,
                });
            }
            let subs = store::analytics::subaccounts_page(
                &mut c,
                &target.id,
                &page.after,
                page.fetch_limit(),
            )
            .await?;
            let more = subs.len() as i64 > page.limit;
            accounts.extend(subs.into_iter().take(page.limit as usize));
            let ids: Vec<String> = accounts.iter().map(|a| a.account_id.clone()).collect();
            let sums =
                store::analytics::by_account(&mut c, &ids, user, g, &range.first, &range.last)
                    .await?;
            let next = more.then(|| ids.last().cloned()).flatten();
            let rows = accounts
                .into_iter()
                .map(|a| {
                    let counts = sums.get(&a.account_id).copied().unwrap_or_default();
                    totals.add(&counts);
                    let limit = a.monthly_usage_limit_micros;
                    row(None, Some(a), counts, limit, one_month)
                })
                .collect();
            (rows, next)
        } else {
            let scope = if target.is_parent() {
                Scope::Tree(&target.id)
            } else {
                Scope::Account(&target.id)
            };
            let sums =
                store::analytics::series(&mut c, scope, user, g, &range.first, &range.last).await?;
            let limit = (!target.is_parent())
                .then(|| target.monthly_usage_limit.and_then(|l| l.to_micros().ok()))
                .flatten();
            let rows = range
                .periods
                .iter()
                .map(|p| {
                    let counts = sums.get(p).copied().unwrap_or_default();
                    totals.add(&counts);
                    row(
                        Some(p.clone()),
                        None,
                        counts,
                        limit,
                        granularity == Granularity::Month,
                    )
                })
                .collect();
            (rows, None)
        };
        let totals = row(None, None, totals, None, false);
        Ok(Report {
            granularity,
            range,
            currency: target.currency.clone(),
            rows,
            totals,
            usage_shown,
            next_after,
        })
    }
}
