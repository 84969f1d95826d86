//! Value transforms a mapping file may name: each takes the text of one cell and
//! returns the normalised text, or the reason it cannot. Pure functions, no I/O.

use crate::domain::ids::{halfwidth_char, normalise_code};
use crate::domain::reasons::Reason;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;
use std::borrow::Cow;

/// A transform named in a mapping file's `transforms = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Trim white space at both ends, as Rust's `str::trim` does (U+3000 and U+00A0 included).
    Trim,
    /// Full-width forms (U+FF01–U+FF5E) to ASCII, U+3000 to a space.
    Halfwidth,
    /// Upper-case ASCII letters.
    Upper,
    /// Drop every white-space character, inside too (for codes).
    RemoveSpaces,
    /// A code as clerks type it: halfwidth, no spaces, upper case.
    Code,
    /// A date in any of the forms departments export (2024-03-05, 2024/3/5, 20240305,
    /// 2024年3月5日, 2024.3.5, with or without a time) to `YYYY-MM-DD`.
    Date,
    /// Like `date`, also accepting an Excel serial day number (e.g. 45356).
    DateExcel,
    /// An amount in 元 (thousands separators, a trailing 元, full-width digits allowed)
    /// to 万元 with exactly six decimals, computed in exact decimal arithmetic.
    YuanToWanyuan,
    /// An amount already in 万元, normalised to six decimals.
    Wanyuan,
    /// A resident identity number as clerks type it (like `code`); the old 15-digit form
    /// is converted to 18 characters. Other document numbers pass through normalised.
    IdNumber,
}

/// Why a transform refused a value; the reason code goes to the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    /// Why: a bad date or a bad amount.
    pub reason: Reason,
}

impl Transform {
    /// Applies the transform to one value. Empty values stay empty; a value the
    /// transform leaves as it is stays borrowed (most cells: no allocation).
    pub fn apply(self, v: Cow<'_, str>) -> Result<Cow<'_, str>, TransformError> {
        if v.is_empty() {
            return Ok(v);
        }
        Ok(match self {
            Transform::Trim => match v {
                Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
                Cow::Owned(s) if trim(&s).len() == s.len() => Cow::Owned(s),
                Cow::Owned(s) => Cow::Owned(trim(&s).to_string()),
            },
            Transform::Halfwidth if v.is_ascii() => v,
            Transform::Halfwidth => Cow::Owned(v.chars().map(halfwidth_char).collect()),
            Transform::Upper if !v.bytes().any(|b| b.is_ascii_lowercase()) => v,
            Transform::Upper => Cow::Owned(v.to_ascii_uppercase()),
            Transform::RemoveSpaces => {
                Cow::Owned(v.chars().filter(|c| !c.is_whitespace()).collect())
            }
            Transform::Code => Cow::Owned(normalise_code(&v)),
            // Already `YYYY-MM-DD` naming a real day: the text is its own normal form.
            Transform::Date | Transform::DateExcel if parse_iso_date(&v).is_some() => v,
            Transform::Date => {
                Cow::Owned(iso_date(parse_date(&v, false).ok_or(TransformError {
                    reason: Reason::BadDate,
                })?))
            }
            Transform::DateExcel => {
                Cow::Owned(iso_date(parse_date(&v, true).ok_or(TransformError {
                    reason: Reason::BadDate,
                })?))
            }
            Transform::YuanToWanyuan => {
                Cow::Owned(scaled_decimal(&v, 4).ok_or(TransformError {
                    reason: Reason::BadAmount,
                })?)
            }
            Transform::IdNumber => {
                let code = normalise_code(&v);
                Cow::Owned(
                    if code.len() == 15 && code.bytes().all(|b| b.is_ascii_digit()) {
                        crate::domain::ids::ric_15_to_18(&code).unwrap_or(code)
                    } else {
                        code
                    },
                )
            }
            Transform::Wanyuan => Cow::Owned(scaled_decimal(&v, 0).ok_or(TransformError {
                reason: Reason::BadAmount,
            })?),
        })
    }
}

/// `str::trim`, with a fast answer for the common cell that starts and ends with a
/// visible ASCII character or a character from U+4000 up (CJK; UTF-8 lead byte 0xE4 or
/// more), none of which is white space.
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let plain = |lead: u8| lead.is_ascii_graphic() || lead >= 0xE4;
    let last_lead = b.iter().rposition(|c| !(0x80..0xC0).contains(c));
    match (b.first(), last_lead) {
        (Some(first), Some(last)) if plain(*first) && plain(b[last]) => s,
        _ => s.trim(),
    }
}

/// `YYYY-MM-DD` (chrono's strftime and `format!` are a measurable cost at a million rows).
pub fn iso_date(d: NaiveDate) -> String {
    let mut out = String::with_capacity(10);
    push_iso_date(&mut out, d);
    out
}

fn push_digits(out: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 4];
    let mut n = n;
    for b in buf[..width].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[..width]).expect("ASCII digits"));
}

fn push_iso_date(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    if !(0..=9999).contains(&d.year()) {
        out.push_str(&d.format("%Y-%m-%d").to_string());
        return;
    }
    push_digits(out, d.year() as u32, 4);
    out.push('-');
    push_digits(out, d.month(), 2);
    out.push('-');
    push_digits(out, d.day(), 2);
}

/// `YYYY-MM-DD HH:MM:SS`, in place of `out`'s text (a buffer kept by the caller: the
/// snapshot's columns take an update time a row).
pub fn iso_datetime_into(out: &mut String, t: NaiveDateTime) {
    use chrono::Timelike;
    out.clear();
    push_iso_date(out, t.date());
    out.push(' ');
    push_digits(out, t.hour(), 2);
    out.push(':');
    push_digits(out, t.minute(), 2);
    out.push(':');
    push_digits(out, t.second(), 2);
}

/// A date exactly in the form `YYYY-MM-DD` naming a real day.
pub fn parse_iso_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ascii_number(&b[r]);
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// The number a few ASCII digits write (`None` when any byte is not one).
fn ascii_number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// Parses the date forms departments export; `None` unless it names a real date.
/// A time part after a space or `T` is ignored.
pub fn parse_date(raw: &str, excel_serial: bool) -> Option<NaiveDate> {
    let raw = raw.trim();
    parse_iso_date(raw).or_else(|| parse_date_general(raw, excel_serial))
}

/// [`parse_date`] of every form (`raw` trimmed).
fn parse_date_general(raw: &str, excel_serial: bool) -> Option<NaiveDate> {
    // Full-width digits and separators become ASCII; most dates are ASCII already.
    let widened: String;
    let s = if raw.is_ascii() {
        raw
    } else {
        widened = raw.chars().map(halfwidth_char).collect();
        widened.trim()
    };
    let (date_part, after) = s.split_once([' ', 'T']).unwrap_or((s, ""));
    // What follows a date must be a time (`2024-03-05 下午` is not a date).
    if !time_follows(after) {
        return None;
    }
    if let Some(rest) = date_part.strip_suffix('日') {
        let (y, rest) = rest.split_once('年')?;
        let (m, d) = rest.split_once('月')?;
        return ymd(y, m, d);
    }
    for sep in ['-', '/', '.'] {
        let mut parts = date_part.split(sep);
        if let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            return ymd(y, m, d);
        }
    }
    if date_part.len() == 8 && date_part.bytes().all(|b| b.is_ascii_digit()) {
        return ymd(&date_part[..4], &date_part[4..6], &date_part[6..]);
    }
    if excel_serial {
        // Excel's day 1 is 1900-01-01 with the 1900 leap-year bug, hence 1899-12-30.
        let serial: f64 = date_part.parse().ok()?;
        if (1.0..2_958_466.0).contains(&serial) {
            return NaiveDate::from_ymd_opt(1899, 12, 30)?
                .checked_add_days(chrono::Days::new(serial.trunc() as u64));
        }
    }
    None
}

/// Whether the text after a date is nothing or a time of day (with an optional `Z` or
/// UTC offset).
fn time_follows(after: &str) -> bool {
    let t = after.trim();
    if t.is_empty() {
        return true;
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let t = match t.rfind(['+', '-']) {
        Some(i) if i > 0 => &t[..i],
        _ => t,
    };
    parse_time(t.trim()).is_some()
}

/// Parses an update timestamp (date, or date and time); `None` when it is not one.
pub fn parse_datetime(raw: &str) -> Option<NaiveDateTime> {
    let s = raw.trim();
    parse_iso_datetime(s).or_else(|| parse_datetime_general(s))
}

/// [`parse_datetime`] of every form (`s` trimmed).
fn parse_datetime_general(s: &str) -> Option<NaiveDateTime> {
    let date = parse_date_general(s, false)?;
    let time_part = s
        .split_once([' ', 'T'])
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    if time_part.is_empty() {
        return Some(date.and_time(NaiveTime::MIN));
    }
    Some(date.and_time(parse_time(time_part)?))
}

/// `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS` (a space or `T` between), naming a real
/// time: the form most update times take, read without the general parser (a fifth of
/// a row's mapping went to it). `None` for anything else, which the general parser
/// reads as before.
fn parse_iso_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    let date = parse_iso_date(s.get(..10)?)?;
    match b.len() {
        10 => Some(date.and_time(NaiveTime::MIN)),
        19 if matches!(b[10], b' ' | b'T') && b[13] == b':' && b[16] == b':' => {
            let two = |at: usize| ascii_number(&b[at..at + 2]);
            Some(date.and_time(NaiveTime::from_hms_opt(two(11)?, two(14)?, two(17)?)?))
        }
        _ => None,
    }
}

/// `H:M`, `H:M:S` or `H:M:S.fff` (parsed by hand: chrono's format parser is a
/// measurable cost at a million rows).
fn parse_time(s: &str) -> Option<NaiveTime> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut parts = hms.split(':');
    let mut num = |required: bool| -> Option<u32> {
        match parts.next() {
            Some(p) if (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok()
            }
            None if !required => Some(0),
            _ => None,
        }
    };
    let (h, m, sec) = (num(true)?, num(true)?, num(false)?);
    if parts.next().is_some() {
        return None;
    }
    NaiveTime::from_hms_opt(h, m, sec)
}

/// Parses a decimal amount and divides it by 10^`shift`, printing exactly six decimals
/// (rounding half away from zero beyond them). Thousands separators, spaces, full-width
/// digits and a trailing 元/万元 are accepted.
pub fn scaled_decimal(raw: &str, shift: u32) -> Option<String> {
    // Plain ASCII amounts (nearly all) are read as they are, without a cleaned copy.
    let cleaned: String;
    let mut s: &str = if raw
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        raw
    } else {
        cleaned = raw
            .chars()
            .map(halfwidth_char)
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect();
        &cleaned
    };
    for suffix in ["万元", "元"] {
        if let Some(x) = s.strip_suffix(suffix) {
            s = x;
            break;
        }
    }
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 24
        || frac.len() > 12
    {
        return None;
    }
    // value = mantissa / 10^scale, exact (at most 36 digits: an i128 holds 38).
    let mantissa: i128 = int
        .bytes()
        .chain(frac.bytes())
        .fold(0, |m, b| m * 10 + i128::from(b - b'0'));
    let scale = frac.len() as u32 + shift;
    // Rescale to 6 decimals.
    let scaled = if scale <= 6 {
        mantissa * 10i128.pow(6 - scale)
    } else {
        let div = 10i128.pow(scale - 6);
        (mantissa + div / 2) / div
    };
    let mut out = String::with_capacity(24);
    if neg && scaled != 0 {
        out.push('-');
    }
    out.push_str(itoa::Buffer::new().format(scaled.unsigned_abs() / 1_000_000));
    out.push('.');
    let frac = (scaled.unsigned_abs() % 1_000_000) as u32;
    for p in [100_000, 10_000, 1_000, 100, 10, 1] {
        out.push(char::from(b'0' + (frac / p % 10) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<String> {
        parse_date(s, false).map(|d| d.to_string())
    }

    #[test]
    fn date_forms() {
        for s in [
            "2024-03-05",
            "2024/3/5",
            "20240305",
            "2024年3月5日",
            "2024.03.05",
            "2024-03-05 10:00:00",
            "２０２４-03-05",
        ] {
            assert_eq!(d(s).as_deref(), Some("2024-03-05"), "{s}");
        }
        for s in [
            "2024-02-30",
            "2023/2/29",
            "20241305",
            "2024年13月1日",
            "24-3-5",
            "无",
            "45356",
        ] {
            assert_eq!(d(s), None, "{s}");
        }
        assert_eq!(parse_date("45356", true).unwrap().to_string(), "2024-03-05");
        assert_eq!(
            parse_date("2024-03-05", true).unwrap().to_string(),
            "2024-03-05"
        );
    }

    #[test]
    fn amounts_in_exact_decimal() {
        assert_eq!(scaled_decimal("1,500.00", 4).as_deref(), Some("0.150000"));
        assert_eq!(scaled_decimal("2000元", 4).as_deref(), Some("0.200000"));
        assert_eq!(
            scaled_decimal("１２,３４５.６７", 4).as_deref(),
            Some("1.234567")
        );
        assert_eq!(scaled_decimal("0.05", 4).as_deref(), Some("0.000005"));
        assert_eq!(scaled_decimal("0.049", 4).as_deref(), Some("0.000005"));
        assert_eq!(scaled_decimal("0.04", 4).as_deref(), Some("0.000004"));
        assert_eq!(
            scaled_decimal("100000000", 4).as_deref(),
            Some("10000.000000")
        );
        assert_eq!(scaled_decimal("0", 4).as_deref(), Some("0.000000"));
        assert_eq!(scaled_decimal("3.5万元", 0).as_deref(), Some("3.500000"));
        assert_eq!(scaled_decimal("约五千", 4), None);
        assert_eq!(scaled_decimal("1.2.3", 4), None);
        assert_eq!(scaled_decimal(".", 4), None);
        assert_eq!(scaled_decimal("-0.0000001", 4).as_deref(), Some("0.000000"));
        assert_eq!(scaled_decimal("-12.5", 0).as_deref(), Some("-12.500000"));
        assert_eq!(
            scaled_decimal("123456789012345678901234", 0).as_deref(),
            Some("123456789012345678901234.000000")
        );
    }

    /// What `scaled_decimal` printed before its fast path, for the property below.
    fn scaled_decimal_by_format(raw: &str, shift: u32) -> Option<String> {
        let mut s: String = raw
            .chars()
            .map(halfwidth_char)
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect();
        for suffix in ["万元", "元"] {
            if let Some(x) = s.strip_suffix(suffix) {
                s = x.to_string();
                break;
            }
        }
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest.to_string()),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits.as_str(), ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || int.len() > 24
            || frac.len() > 12
        {
            return None;
        }
        let mantissa: i128 = format!("{int}{frac}").parse().unwrap_or(0);
        let scale = frac.len() as u32 + shift;
        let scaled = if scale <= 6 {
            mantissa * 10i128.pow(6 - scale)
        } else {
            let div = 10i128.pow(scale - 6);
            (mantissa + div / 2) / div
        };
        let sign = if neg && scaled != 0 { "-" } else { "" };
        Some(format!(
            "{sign}{}.{:06}",
            scaled / 1_000_000,
            scaled % 1_000_000
        ))
    }

    proptest::proptest! {
        #[test]
        fn scaled_decimal_prints_what_format_printed(
            raw in "-?[0-9０-９,]{0,26}(\\.[0-9]{0,13})?(元|万元)?",
            shift in 0u32..5,
        ) {
            proptest::prop_assert_eq!(scaled_decimal(&raw, shift), scaled_decimal_by_format(&raw, shift));
        }
    }

    #[test]
    fn old_identity_numbers_become_18_characters() {
        assert_eq!(
            Transform::IdNumber.apply("340524800101001".into()).unwrap(),
            "34052419800101001X"
        );
        assert_eq!(
            Transform::IdNumber
                .apply(" 34052419800101001x".into())
                .unwrap(),
            "34052419800101001X"
        );
        assert_eq!(
            Transform::IdNumber.apply("G12345678".into()).unwrap(),
            "G12345678"
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("08:09:10"), NaiveTime::from_hms_opt(8, 9, 10));
        assert_eq!(parse_time("8:09"), NaiveTime::from_hms_opt(8, 9, 0));
        assert_eq!(
            parse_time("08:09:10.123"),
            NaiveTime::from_hms_opt(8, 9, 10)
        );
        assert_eq!(parse_time("24:00:00"), None);
        assert_eq!(parse_time("08:09:10:11"), None);
        assert_eq!(parse_time("8点"), None);
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            parse_datetime("2024-03-05 08:09:10").unwrap().to_string(),
            "2024-03-05 08:09:10"
        );
        assert_eq!(
            parse_datetime("2024/3/5").unwrap().to_string(),
            "2024-03-05 00:00:00"
        );
        assert!(parse_datetime("2024-03-05 25:00:00").is_none());
        assert_eq!(
            parse_datetime("2024-03-05T08:09:10").unwrap().to_string(),
            "2024-03-05 08:09:10"
        );
    }

    proptest::proptest! {
        /// The ISO shortcuts read what the general parsers read, or leave the text to
        /// them.
        #[test]
        fn iso_shortcuts_agree_with_the_general_parsers(
            s in "[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}([ T][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2})?)?"
        ) {
            if let Some(t) = parse_iso_datetime(&s) {
                proptest::prop_assert_eq!(Some(t), parse_datetime_general(&s));
            }
            if let Some(d) = parse_iso_date(&s) {
                proptest::prop_assert_eq!(Some(d), parse_date_general(&s, true));
                // An ISO date passes through the date transforms as it is: its own
                // normal form.
                for t in [Transform::Date, Transform::DateExcel] {
                    let normal = t.apply(Cow::Borrowed(&s)).map(|v| v.into_owned());
                    proptest::prop_assert_eq!(normal, Ok(iso_date(d)));
                }
            }
            proptest::prop_assert_eq!(parse_datetime(&s), parse_datetime_general(&s));
            proptest::prop_assert_eq!(parse_date(&s, true), parse_date_general(&s, true));
        }
    }
}
