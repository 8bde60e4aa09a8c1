//! Usage, for an account's admin: a parent's usage per sub-account in one
//! month, a sub-account's own by day, from the analytics `ops` the API's
//! `GET /v1/accounts/{id}/analytics` calls (`by=subaccount` for a parent).
//! A bar chart the host renders as SVG (no script), with the same numbers
//! in a table beside it for screen readers and for copying. Spend shows
//! only where `visibility` leaves the `usage` group; otherwise the bars
//! count the messages sent.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{Datelike, NaiveDate};
use maud::{Markup, html};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::auth::Viewer;
use super::form::Problems;
use super::home::here;
use super::layout::{self, Place};
use super::{Page, Params, Query};
use crate::Error;
use crate::domain::Amount;
use crate::http::AppState;
use crate::ops::analytics::{Report, Request, Row};

/// Rows (sub-accounts) per page of a parent's chart.
const ROWS_PER_PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/accounts/{id}/usage", get(usage))
}

/// One bar: what it is, its value for scaling, and the value as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: Decimal,
    /// The exact value as the API writes it (e.g. `0.0150 USD`).
    pub text: String,
}

/// The chart's geometry, in SVG user units (the `viewBox` scales it to the
/// page's width).
const CHART_WIDTH: u32 = 640;
const LABEL_WIDTH: u32 = 200;
const VALUE_WIDTH: u32 = 130;
const ROW_HEIGHT: u32 = 28;
const BAR_HEIGHT: u32 = 18;
/// Longest label drawn in the chart (the table has the whole name).
const LABEL_CHARS: usize = 24;

/// The longest bar's room.
const fn bar_room() -> u32 {
    CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
}

/// A bar's length for `value` when `max` fills `room`: proportional,
/// rounded to the unit; a value above zero is never drawn as nothing, and
/// zero, negatives or a chart of zeroes draw no bar.
pub fn bar_length(value: Decimal, max: Decimal, room: u32) -> u32 {
    if max <= Decimal::ZERO || value <= Decimal::ZERO {
        return 0;
    }
    let scaled = (value.min(max) / max * Decimal::from(room)).round();
    let length = u32::try_from(scaled.mantissa() / 10i128.pow(scaled.scale())).unwrap_or(room);
    length.clamp(1, room)
}

fn shortened(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_string()
    } else {
        let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// A horizontal bar chart of `bars` as inline SVG, named by `title` and
/// described by `description`; nothing drawn for no bars.
pub fn chart(title: &str, description: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(Decimal::ZERO);
    let height = ROW_HEIGHT * bars.len() as u32 + 8;
    html! {
        @if bars.is_empty() {
            p.muted { "Nothing to chart: no account had traffic in this period." }
        } @else {
            figure.usage-chart {
                svg.chart xmlns="http://www.w3.org/2000/svg" role="img"
                    viewBox=(format!("0 0 {CHART_WIDTH} {height}"))
                    width="100%" preserveAspectRatio="xMinYMin meet"
                    aria-labelledby="chart-title chart-desc" {
                    title #chart-title { (title) }
                    desc #chart-desc { (description) }
                    @for (i, bar) in bars.iter().enumerate() {
                        @let y = ROW_HEIGHT * i as u32 + 4;
                        @let length = bar_length(bar.value, max, bar_room());
                        g.bar-row {
                            text.bar-label x=(LABEL_WIDTH - 8) y=(y + BAR_HEIGHT - 4) text-anchor="end" { (shortened(&bar.label)) }
                            rect.bar x=(LABEL_WIDTH) y=(y) width=(length) height=(BAR_HEIGHT) rx="2" {
                                title { (bar.label) ": " (bar.text) }
                            }
                            text.bar-value x=(LABEL_WIDTH + length + 6) y=(y + BAR_HEIGHT - 4) { (bar.text) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Default, Deserialize)]
struct UsageQuery {
    /// `YYYY-MM`; default this month.
    #[serde(default)]
    month: String,
    /// With a parent's rows: the position of the next page.
    #[serde(default)]
    after: String,
}

/// The first day of `month` (`YYYY-MM`).
fn first_day(month: &str) -> Result<NaiveDate, Error> {
    let refused = || Error::invalid("month", "must be a month written YYYY-MM, e.g. 2026-03");
    if month.len() != 7 {
        return Err(refused());
    }
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| refused())
}

fn last_day(first: NaiveDate) -> NaiveDate {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).unwrap_or(first)
}

/// The row's label: its account's name, or its day.
fn row_label(r: &Row) -> String {
    match (&r.account, &r.start) {
        (Some(a), _) if a.kind == "parent" => format!("{} (own)", a.name),
        (Some(a), _) => a.name.clone(),
        (None, Some(start)) => start.clone(),
        (None, None) => String::new(),
    }
}

/// The bars of a report: spend where the viewer may see it, otherwise
/// messages sent; rows with nothing are left out of the chart.
fn bars(report: &Report) -> Vec<Bar> {
    report
        .rows
        .iter()
        .filter_map(|r| {
            let (value, text) = match (report.usage_shown, r.spend) {
                (true, Some(spend)) => (
                    spend.decimal(),
                    format!("{} {}", spend.to_api_string(), report.currency),
                ),
                _ => (
                    Decimal::from(r.counts.sent),
                    format!("{} sent", r.counts.sent),
                ),
            };
            (value > Decimal::ZERO || r.counts.sent > 0).then(|| Bar {
                label: row_label(r),
                value,
                text,
            })
        })
        .collect()
}

fn spend_text(a: Option<Amount>) -> String {
    a.map_or_else(|| "—".into(), |a| a.to_api_string())
}

async fn usage(
    State(s): State<AppState>,
    viewer: Viewer,
    Params(id): Params<String>,
    Query(q): Query<UsageQuery>,
) -> Page {
    let here = here(&s, &viewer, &id).await?;
    let now = s.canopy.clock.now().date_naive();
    let month = if q.month.is_empty() {
        now.format("%Y-%m").to_string()
    } else {
        q.month.clone()
    };
    let parent = here.account.is_parent();
    let (report, problems) = match first_day(&month) {
        Ok(first) => {
            let request = if parent {
                Request {
                    from: month.clone(),
                    to: month.clone(),
                    granularity: Some("month".into()),
                    by: Some("subaccount".into()),
                }
            } else {
                Request {
                    from: first.format("%Y-%m-%d").to_string(),
                    to: last_day(first).format("%Y-%m-%d").to_string(),
                    granularity: Some("day".into()),
                    by: None,
                }
            };
            let page =
                crate::ops::Page::newest_first(q.after.clone(), ROWS_PER_PAGE, None, None)
                    .ok_or_else(|| Error::invalid("after", "is not a position this page gave"))?;
            match s
                .canopy
                .analytics(&viewer.principal, &id, request, &page)
                .await
            {
                Ok(r) => (Some(r), Problems::default()),
                Err(e) => (None, Problems::of(e)?),
            }
        }
        Err(e) => (None, Problems::of(e)?),
    };
    let bad_month = problems
        .on("month")
        .or_else(|| problems.on("from"))
        .or_else(|| problems.on("to"));
    let next = report
        .as_ref()
        .and_then(|r| r.next_after.clone())
        .map(|after| {
            let mut url = form_urlencoded::Serializer::new(String::new());
            url.append_pair("month", &month);
            url.append_pair("after", &after);
            format!("/console/accounts/{id}/usage?{}", url.finish())
        });
    let body = html! {
        form.inline-form method="get" action=(format!("/console/accounts/{id}/usage")) {
            div.field {
                label for="f-month" { "Month" }
                span.hint #f-month-hint { "Written YYYY-MM." }
                input #f-month name="month" type="month" value=(month)
                    aria-invalid=[bad_month.map(|_| "true")]
                    aria-describedby=(if bad_month.is_some() { "f-month-hint f-month-error" } else { "f-month-hint" });
                @if let Some(reason) = bad_month { span.field-error #f-month-error { (reason) } }
            }
            button type="submit" { "Show this month" }
        }
        @if bad_month.is_none() { (problems.summary()) }
        @if let Some(r) = &report {
            @let shown = r.usage_shown;
            @let what = if parent { "per sub-account" } else { "per day" };
            @let measure = if shown { format!("spend in {}", r.currency) } else { "messages sent".to_string() };
            section aria-labelledby="chart" {
                h2 #chart { "Usage " (what) ", " (month) }
                (chart(
                    &format!("Usage {what} in {month}: {measure}"),
                    &format!("Horizontal bars, one per {}, longer for more {measure}; the table below gives the same numbers.",
                        if parent { "account with traffic" } else { "day with traffic" }),
                    &bars(r),
                ))
            }
            section aria-labelledby="numbers" {
                h2 #numbers { "The numbers" }
                // Focusable, so a keyboard scrolls it where it is wider than a phone.
                div.table-wrap tabindex="0" role="region" aria-label="Usage table" {
                    table #usage-table {
                        caption.visually-hidden { "Usage " (what) " in " (month) }
                        thead { tr {
                            th scope="col" { @if parent { "Account" } @else { "Day" } }
                            th scope="col" class="num" { "Sent" }
                            th scope="col" class="num" { "Received" }
                            @if shown { th scope="col" class="num" { "Spend (" (r.currency) ")" } }
                            @if shown && parent { th scope="col" class="num" { "Share of usage limit" } }
                        } }
                        tbody {
                            @for row in &r.rows {
                                tr {
                                    th scope="row" { (row_label(row)) }
                                    td.num { (row.counts.sent) }
                                    td.num { (row.counts.received) }
                                    @if shown { td.num { (spend_text(row.spend)) } }
                                    @if shown && parent { td.num { (row.volume_limit_used.as_deref().unwrap_or("—")) } }
                                }
                            }
                        }
                        tfoot { tr {
                            th scope="row" { "Total" @if next.is_some() || !q.after.is_empty() { " (this page)" } }
                            td.num { (r.totals.counts.sent) }
                            td.num { (r.totals.counts.received) }
                            @if shown { td.num { (spend_text(r.totals.spend)) } }
                            @if shown && parent { td {} }
                        } }
                    }
                }
                @if let Some(url) = &next { p { a href=(url) rel="next" { "More sub-accounts" } } }
            }
        }
    };
    Ok(layout::respond(
        problems.status(),
        layout::page(Some(&viewer), Place::Account(&here, "usage"), "Usage", body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn bar(label: &str, value: &str) -> Bar {
        Bar {
            label: label.into(),
            value: d(value),
            text: format!("{value} USD"),
        }
    }

    #[test]
    fn bars_scale_to_the_largest() {
        assert_eq!(bar_length(d("10"), d("10"), 300), 300);
        assert_eq!(bar_length(d("5"), d("10"), 300), 150);
        assert_eq!(bar_length(d("0.0150"), d("0.0450"), 300), 100);
        // Tiny but not nothing: one unit.
        assert_eq!(bar_length(d("0.0001"), d("1000"), 300), 1);
        // Zero, negative, and a chart of zeroes: no bar.
        assert_eq!(bar_length(d("0"), d("10"), 300), 0);
        assert_eq!(bar_length(d("-1"), d("10"), 300), 0);
        assert_eq!(bar_length(d("0"), d("0"), 300), 0);
        // Never past the room.
        assert_eq!(bar_length(d("20"), d("10"), 300), 300);
    }

    #[test]
    fn an_empty_chart_says_so_and_draws_nothing() {
        let html = chart("Usage", "none", &[]).into_string();
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("Nothing to chart"), "{html}");
    }

    #[test]
    fn the_chart_is_named_and_labels_bars_with_exact_decimals() {
        let html = chart(
            "Usage per sub-account",
            "Bars",
            &[
                bar("Alpha", "0.0150"),
                bar("A rather long sub-account name", "0.0450"),
            ],
        )
        .into_string();
        assert!(html.contains(r#"role="img""#), "{html}");
        assert!(html.contains(r#"aria-labelledby="chart-title chart-desc""#));
        assert!(html.contains("<title id=\"chart-title\">Usage per sub-account</title>"));
        // Exact decimal text, as the API writes it (no float rounding).
        assert!(html.contains(">0.0150 USD</text>"), "{html}");
        assert!(html.contains(">0.0450 USD</text>"), "{html}");
        // The largest fills the room; the other is a third of it.
        assert!(
            html.contains(&format!(r#"width="{}""#, bar_room())),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"width="{}""#, bar_room() / 3)),
            "{html}"
        );
        // A long name is shortened in the chart, whole in the bar's title.
        assert!(html.contains("A rather long sub-accou…"), "{html}");
        assert!(html.contains("<title>A rather long sub-account name: 0.0450 USD</title>"));
        // No inline style: the CSP forbids it.
        assert!(!html.contains("style="), "{html}");
    }

    #[test]
    fn months_are_read_strictly() {
        assert_eq!(
            first_day("2026-02").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
        assert_eq!(
            last_day(first_day("2024-02").unwrap()),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(
            last_day(first_day("2026-12").unwrap()),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        for bad in ["2026-13", "2026-2", "march", "", "2026-02-01"] {
            assert!(first_day(bad).is_err(), "{bad}");
        }
    }
}
