//! 双公示 timeliness of one record: was it published upward within 7 working days of
//! its decision? Pure functions over the working-day calendar ([`crate::domain::calendar`]),
//! whose counting rule applies: the decision day is not counted, so a record published
//! on the 7th working day after its decision is on time and one published on the 8th is
//! one working day late.

use crate::domain::calendar::{Calendar, SHUANGGONGSHI_DAYS};
use chrono::NaiveDate;

/// The verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Published by the deadline.
    OnTime {
        /// The deadline (the 7th working day after the decision).
        deadline: NaiveDate,
        /// Working days from decision to publication.
        working_days: i64,
        /// Whether the calendar estimated (a date outside its years: weekends alone).
        estimated: bool,
    },
    /// Published after the deadline.
    Late {
        /// The deadline.
        deadline: NaiveDate,
        /// Working days from decision to publication.
        working_days: i64,
        /// Working days past the deadline.
        days_late: i64,
        /// Whether the calendar estimated.
        estimated: bool,
    },
    /// Cannot be judged; the text says why (in Chinese).
    NotComputable(String),
}

/// Judges a record decided on `decision` (the dataset's decision-date value, `YYYY-MM-DD`)
/// and published upward on `published`.
pub fn assess(cal: &Calendar, decision: &str, published: NaiveDate) -> Verdict {
    let Ok(decided) = NaiveDate::parse_from_str(decision.trim(), "%Y-%m-%d") else {
        return Verdict::NotComputable("缺少决定日期或日期无法识别".into());
    };
    if published < decided {
        return Verdict::NotComputable("决定日期晚于上报日期，请核对决定日期".into());
    }
    // Outside the calendar's years the count is estimated from weekends alone, and
    // the verdict says so.
    let between = cal.working_days_between_estimated(decided, published);
    let Some(deadline) = cal.add_working_days_estimated(decided, SHUANGGONGSHI_DAYS) else {
        return Verdict::NotComputable("决定日期无法识别".into());
    };
    let (working_days, estimated) = (between.value, between.estimated || deadline.estimated);
    let deadline = deadline.value;
    let days_late = working_days - SHUANGGONGSHI_DAYS as i64;
    if days_late > 0 {
        Verdict::Late {
            deadline,
            working_days,
            days_late,
            estimated,
        }
    } else {
        Verdict::OnTime {
            deadline,
            working_days,
            estimated,
        }
    }
}

/// The share of on-time records among those that could be judged (`None` when none could).
pub fn on_time_share(on_time: u64, late: u64) -> Option<f64> {
    let judged = on_time + late;
    (judged > 0).then(|| on_time as f64 / judged as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_seventh_working_day_is_on_time_the_eighth_is_late() {
        let cal = Calendar::built_in();
        // Decided Monday 2024-09-30; 10-01..10-07 are the National Day holidays and
        // Saturday 10-12 a make-up working day: the deadline is Tuesday 2024-10-15.
        assert_eq!(
            assess(cal, "2024-09-30", d("2024-10-15")),
            Verdict::OnTime {
                deadline: d("2024-10-15"),
                working_days: 7,
                estimated: false
            }
        );
        assert_eq!(
            assess(cal, "2024-09-30", d("2024-10-16")),
            Verdict::Late {
                deadline: d("2024-10-15"),
                working_days: 8,
                days_late: 1,
                estimated: false
            }
        );
        // Published the same day: on time, zero working days.
        assert!(matches!(
            assess(cal, "2024-09-30", d("2024-09-30")),
            Verdict::OnTime {
                working_days: 0,
                ..
            }
        ));
    }

    #[test]
    fn a_backlog_is_late_by_its_working_days() {
        let cal = Calendar::built_in();
        // An ordinary week: Monday 2025-03-03 → deadline Wednesday 2025-03-12.
        let v = assess(cal, "2025-03-03", d("2025-03-19"));
        assert_eq!(
            v,
            Verdict::Late {
                deadline: d("2025-03-12"),
                working_days: 12,
                days_late: 5,
                estimated: false
            }
        );
    }

    #[test]
    fn unreadable_dates_are_not_computable_and_outside_the_calendar_estimated() {
        let cal = Calendar::built_in();
        for (decision, published) in [
            ("", "2024-01-10"),
            ("2024年1月3日", "2024-01-10"),
            ("2024-05-10", "2024-05-01"),
        ] {
            let v = assess(cal, decision, d(published));
            assert!(
                matches!(v, Verdict::NotComputable(_)),
                "{decision} → {published}: {v:?}"
            );
        }
        // 2026-12-28 (Monday) + 7 working days, weekends alone in 2027: 2027-01-06.
        assert_eq!(
            assess(cal, "2026-12-28", d("2027-01-06")),
            Verdict::OnTime {
                deadline: d("2027-01-06"),
                working_days: 7,
                estimated: true
            }
        );
        assert!(matches!(
            assess(cal, "2017-12-29", d("2018-01-10")),
            Verdict::OnTime {
                estimated: true,
                ..
            }
        ));
    }

    #[test]
    fn shares_and_china_dates() {
        assert_eq!(on_time_share(3, 1), Some(0.75));
        assert_eq!(on_time_share(0, 0), None);
        // 17:00 UTC is already the next day in China.
        assert_eq!(
            crate::clock::china_date_of("2026-11-27T17:00:00Z"),
            Some(d("2026-11-28"))
        );
        assert_eq!(crate::clock::china_date_of("not a time"), None);
    }
}
