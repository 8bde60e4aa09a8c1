//! Traffic periods and rates (docs/TRAFFIC.md, "Analytics"): the UTC day
//! and month keys counters are kept under, the ranges a report may ask for,
//! and the ratios it shows. No I/O.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

str_enum! {
    /// How a report's series is cut.
    Granularity { Day = "day", Month = "month" }
}

/// Longest report by day, in days.
pub const DAYS_MAX: i64 = 366;
/// Longest report by month, in months.
pub const MONTHS_MAX: i64 = 120;

/// The UTC day of `t`, as counters key it: `YYYY-MM-DD`.
pub fn day_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The UTC month of `t`: `YYYY-MM`.
pub fn month_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

/// An inclusive range of periods, checked against the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub granularity: Granularity,
    /// First period's key.
    pub first: String,
    /// Last period's key.
    pub last: String,
    /// Every period's key, in order.
    pub periods: Vec<String>,
}

/// A date of a query: `YYYY-MM-DD`, or for months also `YYYY-MM` (its 1st).
fn parse_date(s: &str, g: Granularity) -> Result<NaiveDate, String> {
    let full = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let month = (g == Granularity::Month)
        .then(|| NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok())
        .flatten();
    full.or(month).ok_or_else(|| match g {
        Granularity::Day => "must be a UTC date YYYY-MM-DD".to_string(),
        Granularity::Month => "must be a UTC date YYYY-MM-DD or a month YYYY-MM".to_string(),
    })
}

/// The periods from `from` to `to` (both included). Errors name the field.
pub fn range(from: &str, to: &str, g: Granularity) -> Result<Range, (&'static str, String)> {
    let start = parse_date(from, g).map_err(|e| ("from", e))?;
    let end = parse_date(to, g).map_err(|e| ("to", e))?;
    if end < start {
        return Err(("to", "must not be before `from`".into()));
    }
    let periods = match g {
        Granularity::Day => {
            let days = (end - start).num_days() + 1;
            if days > DAYS_MAX {
                return Err((
                    "to",
                    format!(
                        "the range is {days} days; a report by day covers at most {DAYS_MAX}: narrow it or use granularity=month"
                    ),
                ));
            }
            start
                .iter_days()
                .take(days as usize)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect::<Vec<_>>()
        }
        Granularity::Month => {
            let first = start.with_day(1).expect("day 1 exists");
            let months = (end.year() as i64 - first.year() as i64) * 12 + end.month() as i64
                - first.month() as i64
                + 1;
            if months > MONTHS_MAX {
                return Err((
                    "to",
                    format!(
                        "the range is {months} months; a report by month covers at most {MONTHS_MAX}: narrow it"
                    ),
                ));
            }
            (0..months as u32)
                .map(|i| (first + Months::new(i)).format("%Y-%m").to_string())
                .collect()
        }
    };
    Ok(Range {
        granularity: g,
        first: periods.first().cloned().expect("at least one period"),
        last: periods.last().cloned().expect("at least one period"),
        periods,
    })
}

/// `part / whole` as a decimal string with 4 places (half-even), "0.0000"
/// when `whole` is 0.
pub fn ratio(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0.0000".into();
    }
    let mut r = (Decimal::from(part) / Decimal::from(whole))
        .round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven);
    r.rescale(4);
    r.to_string()
}

/// The response rate: conversations responded / conversations with an
/// outbound message, 4 places.
pub fn response_rate(responded: i64, outbound: i64) -> String {
    ratio(responded, outbound)
}

/// The share of a monthly usage limit a month's spend used (4 places;
/// more than 1 is possible only if the limit was lowered after spending).
/// `None` without a limit; a limit of 0 is used up ("1.0000") once anything
/// was spent, else "0.0000".
pub fn volume_limit_used(spend_micros: i64, limit_micros: Option<i64>) -> Option<String> {
    let limit = limit_micros?;
    if limit == 0 {
        return Some(if spend_micros > 0 { "1.0000" } else { "0.0000" }.into());
    }
    Some(ratio(spend_micros, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_are_utc_days_and_months() {
        let t = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        assert_eq!(day_key(t), "2026-01-31");
        assert_eq!(month_key(t), "2026-01");
        let t = t + chrono::Duration::seconds(1);
        assert_eq!(day_key(t), "2026-02-01");
        assert_eq!(month_key(t), "2026-02");
    }

    #[test]
    fn day_ranges_cross_months_and_leap_days() {
        let r = range("2028-02-28", "2028-03-01", Granularity::Day).unwrap();
        assert_eq!(r.periods, ["2028-02-28", "2028-02-29", "2028-03-01"]);
        assert_eq!(
            (r.first.as_str(), r.last.as_str()),
            ("2028-02-28", "2028-03-01")
        );
        assert_eq!(
            range("2026-01-01", "2026-12-31", Granularity::Day)
                .unwrap()
                .periods
                .len(),
            365
        );
        assert!(range("2028-01-01", "2028-12-31", Granularity::Day).is_ok());
        let (field, why) = range("2026-01-01", "2027-01-02", Granularity::Day).unwrap_err();
        assert_eq!(field, "to");
        assert!(why.contains("367 days"), "{why}");
        assert_eq!(
            range("2026-02-02", "2026-02-01", Granularity::Day)
                .unwrap_err()
                .0,
            "to"
        );
        assert_eq!(
            range("2026-13-01", "2026-02-01", Granularity::Day)
                .unwrap_err()
                .0,
            "from"
        );
        assert_eq!(
            range("2026-01", "2026-02-01", Granularity::Day)
                .unwrap_err()
                .0,
            "from"
        );
    }

    #[test]
    fn month_ranges_take_months_or_dates() {
        let r = range("2025-11", "2026-02-15", Granularity::Month).unwrap();
        assert_eq!(r.periods, ["2025-11", "2025-12", "2026-01", "2026-02"]);
        assert_eq!(
            range("2016-01", "2025-12", Granularity::Month)
                .unwrap()
                .periods
                .len(),
            120
        );
        assert!(range("2016-01", "2026-01", Granularity::Month).is_err());
    }

    #[test]
    fn rates_have_four_places_and_round_half_even() {
        assert_eq!(response_rate(0, 0), "0.0000");
        assert_eq!(response_rate(3, 0), "0.0000");
        assert_eq!(response_rate(1, 3), "0.3333");
        assert_eq!(response_rate(2, 3), "0.6667");
        assert_eq!(response_rate(3, 3), "1.0000");
        assert_eq!(response_rate(1, 8), "0.1250");
        // 1/32 = 0.03125 -> 0.0312 (half to even); 3/32 = 0.09375 -> 0.0938
        assert_eq!(response_rate(1, 32), "0.0312");
        assert_eq!(response_rate(3, 32), "0.0938");
        assert_eq!(
            volume_limit_used(250_000, Some(1_000_000)).as_deref(),
            Some("0.2500")
        );
        assert_eq!(volume_limit_used(5, None), None);
        assert_eq!(volume_limit_used(0, Some(0)).as_deref(), Some("0.0000"));
        assert_eq!(volume_limit_used(1, Some(0)).as_deref(), Some("1.0000"));
    }
}
