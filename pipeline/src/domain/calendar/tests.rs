//! The calendar against the holiday file's own rule, around every holiday period and
//! make-up day, and against hand-computed deadlines.

use super::*;
use proptest::prelude::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The holiday file read independently of `Calendar` (a plain TOML walk).
fn raw_sets() -> (HashSet<NaiveDate>, HashSet<NaiveDate>) {
    let v: toml::Value = toml::from_str(BUILT_IN).unwrap();
    let mut h = HashSet::new();
    let mut w = HashSet::new();
    for (_, year) in v.as_table().unwrap() {
        for x in year["holidays"].as_array().unwrap() {
            h.insert(d(x.as_str().unwrap()));
        }
        for x in year["workdays"].as_array().unwrap() {
            w.insert(d(x.as_str().unwrap()));
        }
    }
    (h, w)
}

#[test]
fn every_day_2018_to_2026_follows_the_files_rule() {
    let cal = Calendar::built_in();
    assert_eq!(cal.years(), (2018, 2026));
    let (h, w) = raw_sets();
    let mut day = d("2018-01-01");
    let mut count = 0;
    while day <= d("2026-12-31") {
        let weekend = day.weekday().number_from_monday() >= 6;
        let expected = (!weekend && !h.contains(&day)) || w.contains(&day);
        assert_eq!(cal.is_working_day(day).unwrap(), expected, "{day}");
        count += 1;
        day = day.succ_opt().unwrap();
    }
    assert_eq!(count, 3287);
}

#[test]
fn around_each_holiday_period_and_make_up_day() {
    let cal = Calendar::built_in();
    let (h, w) = raw_sets();
    for day in &w {
        assert!(cal.is_working_day(*day).unwrap(), "make-up day {day}");
        // The working day before a make-up day counts it as the next one.
        let prev = (1..10)
            .map(|k| *day - chrono::Days::new(k))
            .find(|p| cal.is_working_day(*p).unwrap());
        if let Some(p) = prev {
            assert_eq!(cal.add_working_days(p, 1).unwrap(), *day, "after {p}");
        }
    }
    for day in &h {
        assert!(!cal.is_working_day(*day).unwrap(), "holiday {day}");
        // The first working day after a holiday, found by brute force, is the deadline of 1.
        if day.year() < 2026 || day.month() < 12 {
            let next = (1..20)
                .map(|k| *day + chrono::Days::new(k))
                .find(|n| !h.contains(n) && (n.weekday().number_from_monday() < 6 || w.contains(n)))
                .unwrap();
            assert_eq!(cal.add_working_days(*day, 1).unwrap(), next, "after {day}");
            assert_eq!(cal.working_days_between(*day, next).unwrap(), 1);
        }
    }
}

#[test]
fn hand_computed_deadlines() {
    let cal = Calendar::built_in();
    // National Day 2024: Oct 1–7 off, Sat Oct 12 worked.
    assert_eq!(
        cal.add_working_days(d("2024-09-30"), 7).unwrap(),
        d("2024-10-15")
    );
    assert_eq!(
        cal.working_days_between(d("2024-09-30"), d("2024-10-15"))
            .unwrap(),
        7
    );
    assert_eq!(
        cal.days_late(d("2024-09-30"), d("2024-10-16"), 7).unwrap(),
        1
    );
    assert_eq!(
        cal.days_late(d("2024-09-30"), d("2024-10-15"), 7).unwrap(),
        0
    );
    // Spring Festival 2026: Sat Feb 14 worked, Feb 15–23 off.
    assert_eq!(
        cal.add_working_days(d("2026-02-13"), 1).unwrap(),
        d("2026-02-14")
    );
    assert_eq!(
        cal.add_working_days(d("2026-02-14"), 1).unwrap(),
        d("2026-02-24")
    );
    // 2020: the Spring Festival extended to Feb 2 (the Feb 1 make-up day cancelled).
    assert_eq!(
        cal.add_working_days(d("2020-01-23"), 1).unwrap(),
        d("2020-02-03")
    );
    // 2019 Labour Day changed: May 1–4 off, Sun May 5 worked.
    assert_eq!(
        cal.add_working_days(d("2019-04-30"), 1).unwrap(),
        d("2019-05-05")
    );
    // A 20-working-day objection window over the 2025 National Day (Sun Sep 28 and Sat Oct 11 worked, Oct 1–8 off).
    assert_eq!(
        cal.add_working_days(d("2025-09-26"), 20).unwrap(),
        d("2025-10-30")
    );
    assert_eq!(
        cal.add_working_days(d("2024-03-05"), 0).unwrap(),
        d("2024-03-05")
    );
    assert_eq!(
        cal.working_days_between(d("2024-10-15"), d("2024-09-30"))
            .unwrap(),
        -7
    );
}

#[test]
fn outside_the_covered_years_is_an_error() {
    let cal = Calendar::built_in();
    assert!(cal.is_working_day(d("2027-01-04")).is_err());
    assert!(cal.is_working_day(d("2017-12-29")).is_err());
    let e = cal.add_working_days(d("2026-12-28"), 10).unwrap_err();
    assert!(
        e.to_string().contains("outside the holiday calendar"),
        "{e}"
    );
    assert!(cal
        .working_days_between(d("2026-12-01"), d("2027-01-10"))
        .is_err());
}

#[test]
fn broken_files_are_refused() {
    assert!(
        Calendar::parse("[2024]\nyear = 2024\nholidays = []\nworkdays = [\"2024-03-05\"]\n")
            .unwrap_err()
            .contains("not a weekend")
    );
    assert!(Calendar::parse("[2024]\nyear = 2024\nholidays = []\nworkdays = []\n[2026]\nyear = 2026\nholidays = []\nworkdays = []\n").unwrap_err().contains("gap"));
}

proptest! {
    #[test]
    fn deadlines_and_counts_agree(offset in 0u64..3200, n in 0u32..40) {
        let cal = Calendar::built_in();
        let start = d("2018-01-01") + chrono::Days::new(offset);
        if let Ok(end) = cal.add_working_days(start, n) {
            prop_assert_eq!(cal.working_days_between(start, end).unwrap(), n as i64);
            if n > 0 {
                prop_assert!(cal.is_working_day(end).unwrap());
            }
        }
    }
}

#[test]
fn a_runtime_table_adds_and_replaces_years_and_estimates_outside() {
    let extra = Calendar::parse(
        "[2027]\nyear = 2027\nholidays = [\"2027-01-01\"]\nworkdays = []\n[2026]\nyear = 2026\nholidays = []\nworkdays = []\n",
    )
    .unwrap();
    let cal = Calendar::shipped().with_years_of(&extra).unwrap();
    assert_eq!(cal.years(), (2018, 2027));
    // 2026 replaced: its National Day is an ordinary Thursday now; 2025 kept.
    assert_eq!(cal.is_working_day(d("2026-10-01")), Ok(true));
    assert_eq!(cal.is_working_day(d("2025-10-01")), Ok(false));
    assert_eq!(cal.is_working_day(d("2027-01-01")), Ok(false));
    // A gap is refused.
    let far = Calendar::parse("[2030]\nyear = 2030\nholidays = []\nworkdays = []\n").unwrap();
    assert!(Calendar::shipped().with_years_of(&far).is_err());
    // Outside: weekends alone, marked.
    let r = Calendar::shipped()
        .add_working_days_estimated(d("2026-12-28"), 7)
        .unwrap();
    assert_eq!((r.value, r.estimated), (d("2027-01-06"), true));
    let r = Calendar::shipped()
        .add_working_days_estimated(d("2024-09-30"), 7)
        .unwrap();
    assert_eq!((r.value, r.estimated), (d("2024-10-15"), false));
    let n = Calendar::shipped().working_days_between_estimated(d("2026-12-31"), d("2027-01-04"));
    // Friday 2027-01-01 is taken as a working day: no holidays are known.
    assert_eq!((n.value, n.estimated), (2, true));
}
