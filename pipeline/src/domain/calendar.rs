//! The working-day calendar of the State Council's holiday notices: built in for
//! 2018–2026 (`calendar/cn-holidays.toml`, a copy of `shared/cn-holidays.toml`), with
//! years added or replaced at run time by the configuration's `calendar` file (same
//! format), see [`install`].
//!
//! A date is a working day iff it is Monday–Friday and not in the year's `holidays`, or
//! it is one of the year's `workdays` (weekend make-up days). Outside the covered years
//! the strict methods are an error; the `*_estimated` ones answer from weekends alone
//! and say so (`estimated`), which every output marks 估算.
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

/// An answer of the calendar, and whether a date outside the covered years made it an
/// estimate (weekends alone, no holidays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reckoned<T> {
    /// The answer.
    pub value: T,
    /// Whether it is an estimate.
    pub estimated: bool,
}

/// The calendar.
#[derive(Debug, Clone)]
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

    /// The calendar in force: the built-in one, with the years of the configuration's
    /// `calendar` file once [`install`]ed.
    pub fn built_in() -> &'static Calendar {
        if let Some(c) = INSTALLED.get() {
            return c;
        }
        Self::shipped()
    }

    /// The calendar compiled into the binary.
    pub fn shipped() -> &'static Calendar {
        static CAL: OnceLock<Calendar> = OnceLock::new();
        CAL.get_or_init(|| {
            // The file is part of the source tree and tested; an empty calendar (every
            // answer an estimate) would be the fallback, never a panic.
            Calendar::parse(BUILT_IN).unwrap_or(Calendar {
                first: 1,
                last: 0,
                holidays: HashSet::new(),
                workdays: HashSet::new(),
            })
        })
    }

    /// This calendar with the years of `other` added, or replacing its own.
    pub fn with_years_of(&self, other: &Calendar) -> Result<Calendar, String> {
        let replaced = |d: &NaiveDate| (other.first..=other.last).contains(&d.year());
        let mut holidays: HashSet<NaiveDate> = self
            .holidays
            .iter()
            .filter(|d| !replaced(d))
            .copied()
            .collect();
        let mut workdays: HashSet<NaiveDate> = self
            .workdays
            .iter()
            .filter(|d| !replaced(d))
            .copied()
            .collect();
        holidays.extend(&other.holidays);
        workdays.extend(&other.workdays);
        let (first, last) = if self.first > self.last {
            (other.first, other.last)
        } else {
            if other.first > self.last + 1 || other.last < self.first - 1 {
                return Err(format!(
                    "its years {}–{} leave a gap after the built-in {}–{}",
                    other.first, other.last, self.first, self.last
                ));
            }
            (self.first.min(other.first), self.last.max(other.last))
        };
        Ok(Calendar {
            first,
            last,
            holidays,
            workdays,
        })
    }

    /// Whether `d` falls in a covered year.
    pub fn covers(&self, d: NaiveDate) -> bool {
        (self.first..=self.last).contains(&d.year())
    }

    /// Whether `d` is a working day, estimated from weekends alone outside the covered
    /// years.
    pub fn is_working_day_estimated(&self, d: NaiveDate) -> Reckoned<bool> {
        let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        if !self.covers(d) {
            return Reckoned {
                value: weekday,
                estimated: true,
            };
        }
        Reckoned {
            value: (weekday && !self.holidays.contains(&d)) || self.workdays.contains(&d),
            estimated: false,
        }
    }

    /// The `n`-th working day after `d`, estimated where it passes outside the covered
    /// years (`None` only past the end of the representable dates).
    pub fn add_working_days_estimated(&self, d: NaiveDate, n: u32) -> Option<Reckoned<NaiveDate>> {
        let mut day = d;
        let mut left = n;
        let mut estimated = !self.covers(d);
        while left > 0 {
            day = day.succ_opt()?;
            let w = self.is_working_day_estimated(day);
            estimated |= w.estimated;
            if w.value {
                left -= 1;
            }
        }
        Some(Reckoned {
            value: day,
            estimated,
        })
    }

    /// Working days in `(from, to]` (negative when `to` is before `from`), estimated
    /// where the span leaves the covered years.
    pub fn working_days_between_estimated(&self, from: NaiveDate, to: NaiveDate) -> Reckoned<i64> {
        let (a, b, sign) = if to >= from {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut n = 0i64;
        let mut estimated = !self.covers(a) || !self.covers(b);
        let mut day = a;
        while day < b {
            let Some(next) = day.succ_opt() else { break };
            day = next;
            let w = self.is_working_day_estimated(day);
            estimated |= w.estimated;
            n += w.value as i64;
        }
        Reckoned {
            value: sign * n,
            estimated,
        }
    }

    /// The calendar's last covered day.
    pub fn last_covered_day(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.last, 12, 31)
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

    /// Whether `d` is a working day; outside the covered years an error.
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, OutOfRange> {
        self.check(d)?;
        Ok(self.is_working_day_estimated(d).value)
    }

    /// The `n`-th working day after `d` (`d` itself not counted; `n = 0` gives `d`);
    /// an error where an estimate would be needed.
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> Result<NaiveDate, OutOfRange> {
        self.check(d)?;
        match self.add_working_days_estimated(d, n) {
            Some(r) if !r.estimated => Ok(r.value),
            Some(r) => self.check(r.value).map(|_| r.value),
            None => Err(OutOfRange {
                date: d,
                first: self.first,
                last: self.last,
            }),
        }
    }

    /// Working days in `(from, to]`; negative when `to` is before `from`; outside the
    /// covered years an error.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, OutOfRange> {
        self.check(from)?;
        self.check(to)?;
        Ok(self.working_days_between_estimated(from, to).value)
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

static INSTALLED: OnceLock<Calendar> = OnceLock::new();

/// Loads the configuration's `calendar` file (the shipped table's format) over the
/// built-in years. The first installed calendar of a process stays in force; an
/// error names the file.
pub fn install(path: &std::path::Path) -> Result<&'static Calendar, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the calendar: {e}", path.display()))?;
    let extra = Calendar::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let merged = Calendar::shipped()
        .with_years_of(&extra)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(INSTALLED.get_or_init(|| merged))
}

#[cfg(test)]
mod tests;
