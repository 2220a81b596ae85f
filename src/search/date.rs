//! Date search values: `[prefix]date` as the half-open range of instants it denotes, against a
//! plain date or an instant (the day in England).

use chrono::{DateTime, NaiveDate};

use super::parse::invalid;
use crate::clock::{day_start_ms, uk_day_start_ms};
use crate::error::FhirError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sa,
    Eb,
}

/// The instants `[from, to)` a date parameter selects when its target is an instant (when an
/// access was recorded, when an upload was made): the instant `t` is the range `[t, t + 1)`,
/// and a day-only value is that day in England (`parse_instant_date`).
pub fn instant_bounds(name: &str, raw: &str) -> Result<(i64, i64), FhirError> {
    let (prefix, lo, hi) = parse_instant_date(name, raw)?;
    Ok(match prefix {
        DatePrefix::Eq => (lo, hi),
        DatePrefix::Gt | DatePrefix::Sa => (hi, i64::MAX),
        DatePrefix::Ge => (lo, i64::MAX),
        DatePrefix::Lt | DatePrefix::Eb => (i64::MIN, lo),
        DatePrefix::Le => (i64::MIN, hi),
        DatePrefix::Ne => return Err(invalid(name, "the ne prefix is not supported here")),
    })
}

/// Parses `[prefix]date` into the prefix and the half-open range `[lo, hi)` the value denotes
/// (a year, a month, a day or an instant), against a plain date (a plan's period): a day is
/// kept as its UTC midnight (`day_start_ms`), as the date index keeps it.
pub fn parse_date(name: &str, raw: &str) -> Result<(DatePrefix, i64, i64), FhirError> {
    parse_range(name, raw, day_start_ms)
}

/// `parse_date` against an instant (`meta.lastUpdated`, when an access was recorded): a year,
/// month or day is the calendar's in England, from midnight Europe/London (23:00 UTC the
/// evening before in summer), as every date rule of the service.
pub fn parse_instant_date(name: &str, raw: &str) -> Result<(DatePrefix, i64, i64), FhirError> {
    parse_range(name, raw, uk_day_start_ms)
}

fn parse_range(
    name: &str,
    raw: &str,
    day_start: fn(NaiveDate) -> i64,
) -> Result<(DatePrefix, i64, i64), FhirError> {
    let prefixes = [
        ("eq", DatePrefix::Eq),
        ("ne", DatePrefix::Ne),
        ("gt", DatePrefix::Gt),
        ("ge", DatePrefix::Ge),
        ("lt", DatePrefix::Lt),
        ("le", DatePrefix::Le),
        ("sa", DatePrefix::Sa),
        ("eb", DatePrefix::Eb),
    ];
    let (prefix, rest) = prefixes
        .iter()
        .find_map(|(p, d)| raw.strip_prefix(p).map(|rest| (*d, rest)))
        .unwrap_or((DatePrefix::Eq, raw));
    let bad = || {
        invalid(name, format!("{raw:?} is not a FHIR date, dateTime or instant (with an optional eq/ne/gt/ge/lt/le/sa/eb prefix)"))
    };
    let ymd = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad);
    let (lo, hi) = match rest.len() {
        4 => {
            let y: i32 = rest.parse().map_err(|_| bad())?;
            (day_start(ymd(y, 1, 1)?), day_start(ymd(y + 1, 1, 1)?))
        }
        7 => {
            let (y, m) = rest.split_once('-').ok_or_else(bad)?;
            let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            let start = ymd(y, m, 1)?;
            let next = if m == 12 {
                ymd(y + 1, 1, 1)?
            } else {
                ymd(y, m + 1, 1)?
            };
            (day_start(start), day_start(next))
        }
        10 => {
            let d = NaiveDate::parse_from_str(rest, "%Y-%m-%d").map_err(|_| bad())?;
            (day_start(d), day_start(d.succ_opt().ok_or_else(bad)?))
        }
        _ => {
            let t = DateTime::parse_from_rfc3339(rest)
                .map_err(|_| bad())?
                .timestamp_millis();
            // An instant written to the second covers that second; to the millisecond, that ms.
            let width = if rest.contains('.') { 1 } else { 1000 };
            (t, t + width)
        }
    };
    Ok((prefix, lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_denote_ranges() {
        let (p, lo, hi) = parse_date("date", "ge2026-01").unwrap();
        assert_eq!(p, DatePrefix::Ge);
        assert_eq!(hi - lo, 31 * 86_400_000);
        let (_, lo, hi) = parse_date("date", "2026-01-05T10:00:00Z").unwrap();
        assert_eq!(hi - lo, 1000);
        assert!(parse_date("date", "2026-13").is_err());
        assert!(parse_date("date", "ap2026").is_err());
    }
}
