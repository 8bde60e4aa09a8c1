//! Recurring charges and bills (API.md "Recurring charges", "Billing").
//! Pure: the store reads a resource's history and the offers of each place,
//! these functions turn them into days and micro-units. No I/O here.
//!
//! A resource is charged for each UTC day of the period that it is `active`
//! or `suspended` for any part of, at `monthly_fee / days_in_month` of the
//! offer of the place it is in at the end of that day (or at the instant it
//! was terminated: the history row of the termination names its holder),
//! rounded half-even to a micro-unit per resource and day.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::resources::{ResourceKind, ResourceStatus};

const DAY_US: i64 = 86_400_000_000;

/// A billing period: one UTC calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    /// `YYYY-MM`, a real month.
    pub fn parse(text: &str) -> Result<Period, String> {
        let refuse =
            || format!("`{text}` is not a period; send a month as YYYY-MM, such as 2026-11");
        let (y, m) = text.split_once('-').ok_or_else(refuse)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(refuse());
        }
        let year: i32 = y.parse().map_err(|_| refuse())?;
        let month: u32 = m.parse().map_err(|_| refuse())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(refuse());
        }
        Ok(Period { year, month })
    }

    /// The period a time falls in.
    pub fn of(t: DateTime<Utc>) -> Period {
        Period {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn of_us(us: i64) -> Period {
        Period::of(crate::clock::from_us(us))
    }

    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a valid month")
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first instant of the period, in microseconds.
    pub fn start_us(self) -> i64 {
        Utc.from_utc_datetime(&self.first_day().and_hms_opt(0, 0, 0).expect("midnight"))
            .timestamp_micros()
    }

    /// The first instant after the period.
    pub fn end_us(self) -> i64 {
        self.next().start_us()
    }

    pub fn days(self) -> u32 {
        ((self.end_us() - self.start_us()) / DAY_US) as u32
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One day's share of a monthly fee, in micro-units, rounded half-even.
pub fn day_fee(monthly_fee_micros: i64, days: u32) -> i64 {
    let days = i64::from(days.max(1));
    let (q, r) = (
        monthly_fee_micros.div_euclid(days),
        monthly_fee_micros.rem_euclid(days),
    );
    match (2 * r).cmp(&days) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// A row of `resource_history`: from `at` on, the resource is in
/// `account_id` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub at_us: i64,
    pub account_id: String,
    pub status: ResourceStatus,
}

/// The days of `period` a resource is charged for, each with the place it
/// is charged to, counting only days that began before `until_us` (the end
/// of the period once closed; now, for the live period, whose last day is
/// then charged to where the resource is now). `history` is in order.
pub fn billed_days(history: &[HistoryRow], period: Period, until_us: i64) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let start = period.start_us();
    for day in 0..period.days() {
        let day_start = start + i64::from(day) * DAY_US;
        if day_start >= until_us {
            break;
        }
        let day_end = (day_start + DAY_US).min(until_us);
        // The state as the day begins, then every change within it.
        let at_start = history.iter().rev().find(|r| r.at_us <= day_start);
        let during = history
            .iter()
            .filter(|r| r.at_us > day_start && r.at_us < day_end);
        let billed = at_start.is_some_and(|r| r.status.is_billed())
            || during.clone().any(|r| r.status.is_billed());
        if !billed {
            continue;
        }
        // Where it is as the day ends (a terminated resource: where it was
        // terminated, which its last row names).
        if let Some(last) = history.iter().rev().find(|r| r.at_us < day_end) {
            out.push((day + 1, last.account_id.clone()));
        }
    }
    out
}

/// A resource's charge in one place for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceCharge {
    pub place: String,
    pub days: u32,
    pub amount_micros: i64,
}

/// A resource's charges for `period`, one per place it was charged in (in
/// the order it first was), each day at the day fee of the monthly fee
/// `fee_of(place)` gives (`None`: no offer, the day costs nothing).
pub fn charges(
    history: &[HistoryRow],
    period: Period,
    until_us: i64,
    fee_of: impl Fn(&str) -> Option<i64>,
) -> Vec<PlaceCharge> {
    let days_in_month = period.days();
    let mut out: Vec<PlaceCharge> = Vec::new();
    for (_, place) in billed_days(history, period, until_us) {
        let fee = fee_of(&place).map_or(0, |f| day_fee(f, days_in_month));
        match out.iter_mut().find(|c| c.place == place) {
            Some(c) => {
                c.days += 1;
                c.amount_micros += fee;
            }
            None => out.push(PlaceCharge {
                place,
                days: 1,
                amount_micros: fee,
            }),
        }
    }
    out
}

/// One group of a bill: a sub-account (with those merged into it) or the
/// Available pool (the parent's own id). Money in micro-units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub account_id: String,
    pub name: String,
    /// Lines and SIMs charged for at least one day in the group.
    pub lines: u64,
    pub sims: u64,
    pub resource_days: u64,
    pub recurring: i64,
    pub usage: i64,
    pub discounts: i64,
    pub credits: i64,
    pub total: i64,
    /// What the close still collects through the ledger: the recurring
    /// charges less the adjustments (usage was paid as it happened).
    pub charge: i64,
    /// At close: the part of `charge` the ledger could not take.
    pub due: i64,
}

impl Group {
    pub fn new(account_id: &str, name: &str) -> Group {
        Group {
            account_id: account_id.into(),
            name: name.into(),
            ..Group::default()
        }
    }

    /// Adds one resource's charge in this group.
    pub fn add(&mut self, kind: ResourceKind, charge: &PlaceCharge) {
        match kind {
            ResourceKind::Line => self.lines += 1,
            ResourceKind::Sim => self.sims += 1,
        }
        self.resource_days += u64::from(charge.days);
        self.recurring += charge.amount_micros;
    }

    /// Fixes `total` and `charge` from the parts: credits and discounts
    /// lower the total, never below zero; they lower the recurring charge
    /// still to collect first, and what exceeds it is not paid out.
    pub fn settle(&mut self) {
        let adjustments = self.discounts.saturating_add(self.credits);
        self.total = self
            .recurring
            .saturating_add(self.usage)
            .saturating_sub(adjustments)
            .max(0);
        self.charge = self.recurring.saturating_sub(adjustments).max(0);
    }
}

/// A resource's line on an invoice: its days and amount in one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub resource_id: String,
    pub kind: String,
    pub identifier: String,
    pub account_id: String,
    pub days: u32,
    pub amount: i64,
}

/// A period's bill for one tree: live for the current period, fixed into
/// an invoice at close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub period: String,
    pub currency: String,
    pub groups: Vec<Group>,
    pub items: Vec<Item>,
    pub total: i64,
    /// At close: what the ledger took, and what it could not (`due`).
    pub charged: i64,
    pub due: i64,
}

impl Bill {
    /// Settles every group and sums them.
    pub fn settle(&mut self) {
        for g in &mut self.groups {
            g.settle();
        }
        self.total = self.groups.iter().map(|g| g.total).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<DateTime<Utc>>().unwrap().timestamp_micros()
    }

    fn row(when: &str, place: &str, status: ResourceStatus) -> HistoryRow {
        HistoryRow {
            at_us: at(when),
            account_id: place.into(),
            status,
        }
    }

    #[test]
    fn periods_parse_and_count_their_days() {
        let p = Period::parse("2026-11").unwrap();
        assert_eq!((p.days(), p.to_string()), (30, "2026-11".to_string()));
        assert_eq!(Period::parse("2026-12").unwrap().days(), 31);
        assert_eq!(Period::parse("2028-02").unwrap().days(), 29);
        assert_eq!(p.next(), Period::parse("2026-12").unwrap());
        assert_eq!(
            Period::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(p.start_us(), at("2026-11-01T00:00:00Z"));
        assert_eq!(p.end_us(), at("2026-12-01T00:00:00Z"));
        for bad in [
            "2026-13", "2026-1", "26-11", "2026-00", "x", "2026-1a", "2026/11",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Period::of_us(at("2026-11-30T23:59:59Z")), p);
    }

    #[test]
    fn a_day_fee_is_rounded_half_even() {
        // 10.00 / 30 = 0.3333333 -> 0.333333
        assert_eq!(day_fee(10_000_000, 30), 333_333);
        // 20.00 / 30 = 0.6666666 -> 0.666667
        assert_eq!(day_fee(20_000_000, 30), 666_667);
        // Exactly half a micro-unit: to the even neighbour.
        assert_eq!(day_fee(45, 30), 2); // 1.5 -> 2
        assert_eq!(day_fee(75, 30), 2); // 2.5 -> 2
        assert_eq!(day_fee(105, 30), 4); // 3.5 -> 4
        assert_eq!(day_fee(0, 31), 0);
    }

    /// A line provisioned before the month into the Available pool (default
    /// line offer 6.00), moved on day 10 (at 15:00) of a 30-day month into
    /// a sub-account whose own offer is 10.00.
    #[test]
    fn a_line_that_moved_on_day_10_of_a_30_day_month() {
        let history = [
            row(
                "2026-10-20T08:00:00Z",
                "acct_parent",
                ResourceStatus::Active,
            ),
            row("2026-11-10T15:00:00Z", "acct_sub", ResourceStatus::Active),
        ];
        let p = Period::parse("2026-11").unwrap();
        let fee = |place: &str| match place {
            "acct_parent" => Some(6_000_000),
            "acct_sub" => Some(10_000_000),
            _ => None,
        };
        let c = charges(&history, p, p.end_us(), fee);
        // Days 1-9 end in Available: 9 x (6.00 / 30 = 0.200000) = 1.800000.
        // Days 10-30 end in the sub-account: 21 x round(10.00 / 30 =
        // 0.3333333) = 21 x 0.333333 = 6.999993.
        assert_eq!(
            c,
            vec![
                PlaceCharge {
                    place: "acct_parent".into(),
                    days: 9,
                    amount_micros: 1_800_000
                },
                PlaceCharge {
                    place: "acct_sub".into(),
                    days: 21,
                    amount_micros: 6_999_993
                },
            ]
        );
    }

    /// A SIM provisioned into inventory on day 3 of a 31-day month, moved
    /// to a sub-account (offer 5.00) on day 15, activated on day 20 at
    /// 23:30: charged from day 20 to day 31, 12 days.
    #[test]
    fn a_sim_activated_on_day_20_of_a_31_day_month() {
        let history = [
            row(
                "2026-12-03T10:00:00Z",
                "acct_parent",
                ResourceStatus::Inventory,
            ),
            row(
                "2026-12-15T10:00:00Z",
                "acct_sub",
                ResourceStatus::Inventory,
            ),
            row("2026-12-20T23:30:00Z", "acct_sub", ResourceStatus::Active),
        ];
        let p = Period::parse("2026-12").unwrap();
        let c = charges(&history, p, p.end_us(), |place| {
            (place == "acct_sub").then_some(5_000_000)
        });
        // 5.00 / 31 = 0.16129032 -> 0.161290; 12 days = 1.935480.
        assert_eq!(
            c,
            vec![PlaceCharge {
                place: "acct_sub".into(),
                days: 12,
                amount_micros: 1_935_480
            }]
        );
    }

    #[test]
    fn a_terminated_sim_is_charged_to_where_it_was_terminated_and_no_further() {
        let history = [
            row("2026-11-01T00:00:00Z", "acct_a", ResourceStatus::Active),
            row("2026-11-05T12:00:00Z", "acct_a", ResourceStatus::Suspended),
            row("2026-11-07T01:00:00Z", "acct_a", ResourceStatus::Terminated),
        ];
        let p = Period::parse("2026-11").unwrap();
        let days = billed_days(&history, p, p.end_us());
        // Days 1-7: active, suspended, and terminated one hour into day 7.
        assert_eq!(
            days.iter().map(|d| d.0).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>()
        );
        assert!(days.iter().all(|d| d.1 == "acct_a"));
        // No offer: the days count, they cost nothing.
        let c = charges(&history, p, p.end_us(), |_| None);
        assert_eq!((c[0].days, c[0].amount_micros), (7, 0));
    }

    #[test]
    fn the_live_period_counts_only_days_begun_so_far() {
        let history = [row(
            "2026-10-01T00:00:00Z",
            "acct_a",
            ResourceStatus::Active,
        )];
        let p = Period::parse("2026-11").unwrap();
        let now = at("2026-11-04T09:00:00Z");
        let days = billed_days(&history, p, now + 1);
        assert_eq!(days.len(), 4);
        // A resource provisioned later than now is not charged yet.
        let later = [row(
            "2026-11-20T00:00:00Z",
            "acct_a",
            ResourceStatus::Active,
        )];
        assert!(billed_days(&later, p, now + 1).is_empty());
    }

    #[test]
    fn groups_never_go_below_zero_and_adjustments_lower_the_charge_first() {
        let mut g = Group::new("acct_a", "A");
        g.recurring = 10_000_000;
        g.usage = 3_000_000;
        g.discounts = 2_000_000;
        g.credits = 1_000_000;
        g.settle();
        assert_eq!((g.total, g.charge), (10_000_000, 7_000_000));
        g.credits = 20_000_000;
        g.settle();
        assert_eq!((g.total, g.charge), (0, 0));
    }
}
