//! The working-day calendar of the State Council's holiday notices (2018–2026, the
//! file `calendar/cn-holidays.toml`, a copy of `shared/cn-holidays.toml`).
//!
//! A date is a working day iff it is Monday–Friday and not in the year's `holidays`, or
//! it is one of the year's `workdays` (weekend make-up days). A date outside the
//! covered years is an error, never a guess.
//!
//! **Counting rule (stated once, here):** the decision day itself is not counted. "Within
//! N working days of D" means on or before [`Calendar::add_working_days`]`(D, N)`, the
//! N-th working day *after* D; [`Calendar::working_days_between`]`(D, E)` counts the
//! working days in `(D, E]`, so a record published on that deadline is exactly N days
//! after its decision, on time. The 双公示 publication limit is 7 working days and the
//! objection window 20 (see [`SHUANGGONGSHI_DAYS`], [`OBJECTION_DAYS`]).

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

/// 双公示: licence and penalty decisions go online within 7 working days.
pub const SHUANGGONGSHI_DAYS: u32 = 7;
/// An objection (异议) is to be settled within 20 working days.
pub const OBJECTION_DAYS: u32 = 20;

const BUILT_IN: &str = include_str!("calendar/cn-holidays.toml");

/// A date the calendar cannot answer for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{date} is outside the holiday calendar ({first}–{last}); add the year's State Council notice to cn-holidays.toml")]
pub struct OutOfRange {
    /// The date asked about.
    pub date: NaiveDate,
    /// First covered year.
    pub first: i32,
    /// Last covered year.
    pub last: i32,
}

#[derive(Debug, Deserialize)]
struct YearFile {
    year: i32,
    holidays: Vec<NaiveDate>,
    workdays: Vec<NaiveDate>,
}

/// The calendar.
#[derive(Debug)]
pub struct Calendar {
    first: i32,
    last: i32,
    holidays: HashSet<NaiveDate>,
    workdays: HashSet<NaiveDate>,
}

impl Calendar {
    /// Parses a holiday file (one table per year with `holidays` and `workdays`).
    pub fn parse(text: &str) -> Result<Calendar, String> {
        let years: BTreeMap<String, YearFile> = toml::from_str(text).map_err(|e| e.to_string())?;
        let (mut holidays, mut workdays) = (HashSet::new(), HashSet::new());
        let mut covered: Vec<i32> = Vec::new();
        for (key, y) in &years {
            if key != &y.year.to_string() {
                return Err(format!("table [{key}] says year = {}", y.year));
            }
            for d in &y.holidays {
                if d.year() != y.year {
                    return Err(format!("[{key}] holidays: {d} is not in {}", y.year));
                }
                holidays.insert(*d);
            }
            for d in &y.workdays {
                if d.year() != y.year || !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                    return Err(format!(
                        "[{key}] workdays: {d} is not a weekend day of {}",
                        y.year
                    ));
                }
                workdays.insert(*d);
            }
            covered.push(y.year);
        }
        covered.sort();
        let (Some(&first), Some(&last)) = (covered.first(), covered.last()) else {
            return Err("no year in the calendar".into());
        };
        if covered.len() as i32 != last - first + 1 {
            return Err(format!("the covered years {first}–{last} have a gap"));
        }
        Ok(Calendar {
            first,
            last,
            holidays,
            workdays,
        })
    }

    /// The built-in calendar.
    pub fn built_in() -> &'static Calendar {
        static CAL: OnceLock<Calendar> = OnceLock::new();
        CAL.get_or_init(|| Calendar::parse(BUILT_IN).expect("the built-in holiday file parses"))
    }

    /// The covered years.
    pub fn years(&self) -> (i32, i32) {
        (self.first, self.last)
    }

    fn check(&self, d: NaiveDate) -> Result<(), OutOfRange> {
        if (self.first..=self.last).contains(&d.year()) {
            Ok(())
        } else {
            Err(OutOfRange {
                date: d,
                first: self.first,
                last: self.last,
            })
        }
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, OutOfRange> {
        self.check(d)?;
        let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        Ok((weekday && !self.holidays.contains(&d)) || self.workdays.contains(&d))
    }

    /// The `n`-th working day after `d` (`d` itself not counted; `n = 0` gives `d`).
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> Result<NaiveDate, OutOfRange> {
        self.check(d)?;
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = day.succ_opt().ok_or(OutOfRange {
                date: d,
                first: self.first,
                last: self.last,
            })?;
            if self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// Working days in `(from, to]`; negative when `to` is before `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, OutOfRange> {
        self.check(from)?;
        self.check(to)?;
        let (a, b, sign) = if to >= from {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut n = 0i64;
        let mut day = a;
        while day < b {
            day = day.succ_opt().expect("inside the covered years");
            if self.is_working_day(day)? {
                n += 1;
            }
        }
        Ok(sign * n)
    }

    /// How many working days late a publication on `published` is for a decision on
    /// `decided` with a limit of `limit` working days (0 when on time).
    pub fn days_late(
        &self,
        decided: NaiveDate,
        published: NaiveDate,
        limit: u32,
    ) -> Result<i64, OutOfRange> {
        Ok((self.working_days_between(decided, published)? - limit as i64).max(0))
    }
}

#[cfg(test)]
mod tests;
