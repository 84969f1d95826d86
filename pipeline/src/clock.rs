//! The one clock: "now" and "today in China" for every module, so a replay computes
//! expiry, overdue holds, report periods and stored times alike.
//!
//! Real time by default. `XINYONG_TODAY=YYYY-MM-DD` sets today's date in China (the
//! time of day stays the real one; tests and replays of a past or future day), and
//! [`set_today`] does the same inside a process (tests). Times people read are in
//! China time ([`CHINA`], UTC+8, no daylight saving); stored times are UTC.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use std::sync::RwLock;

/// China Standard Time, UTC+8.
pub const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(o) => o,
    None => panic!("UTC+8 is a valid offset"),
};

/// A date set by a test, over the environment's.
static SET_TODAY: RwLock<Option<NaiveDate>> = RwLock::new(None);

/// Sets (or with `None` clears) today's date in China for this process.
pub fn set_today(date: Option<NaiveDate>) {
    *SET_TODAY.write().unwrap_or_else(|e| e.into_inner()) = date;
}

fn today_set() -> Option<NaiveDate> {
    if let Some(d) = *SET_TODAY.read().unwrap_or_else(|e| e.into_inner()) {
        return Some(d);
    }
    std::env::var("XINYONG_TODAY")
        .ok()
        .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
}

/// Now (UTC): the real time, moved by whole days when today's date is set.
pub fn now() -> DateTime<Utc> {
    let real = Utc::now();
    match today_set() {
        Some(d) => {
            let shift = d - real.with_timezone(&CHINA).date_naive();
            real + Duration::days(shift.num_days())
        }
        None => real,
    }
}

/// Now in China time.
pub fn now_in_china() -> DateTime<FixedOffset> {
    now().with_timezone(&CHINA)
}

/// Today's date in China.
pub fn today() -> NaiveDate {
    now_in_china().date_naive()
}

/// The China date of a stored UTC time (RFC 3339), if it parses.
pub fn china_date_of(rfc3339: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&CHINA).date_naive())
}

/// A stored time as people read it everywhere (status, console, reconcile, logs):
/// Beijing time to the second with its offset, `2026-12-02T11:20:33+08:00`. Text that
/// is not RFC 3339 is returned as it is.
pub fn beijing(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| beijing_of(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// A time in Beijing time to the second with its offset.
pub fn beijing_of(t: DateTime<Utc>) -> String {
    t.with_timezone(&CHINA)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_day_moves_now_and_today_together() {
        let d = NaiveDate::from_ymd_opt(2027, 1, 4).unwrap();
        set_today(Some(d));
        assert_eq!(today(), d);
        assert_eq!(now().with_timezone(&CHINA).date_naive(), d);
        assert_eq!(china_date_of(&now().to_rfc3339()), Some(d));
        set_today(None);
        assert_eq!(today(), Utc::now().with_timezone(&CHINA).date_naive());
    }

    #[test]
    fn people_read_beijing_time_with_its_offset() {
        assert_eq!(
            beijing("2026-12-01T16:20:33.123456789Z"),
            "2026-12-02T00:20:33+08:00"
        );
        assert_eq!(beijing("not a time"), "not a time");
    }
}
