//! A plan's period against the calendar: the one rule for whether a plan is in force on a day
//! (SPEC §3 Flag: "active while the plan is active and today is within its period"), in its
//! Rust form (`DayPeriod::standing`) and its SQL form over the index (`IN_FORCE_FROM`,
//! `IN_FORCE_UNTIL`), on one scale. Flag status (read and search) and the NHS views' phases
//! all ask it; `tests/api/calendar.rs` checks the two forms agree on random plans and days.

use chrono::NaiveDate;
use serde_json::Value;

use super::types::{day_end_ms, parse_day};
use crate::clock::day_start_ms;

/// Where a plan's period stands on a day: the one rule for "in force today" (SPEC §3 Flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    NotYetStarted,
    InForce,
    Ended,
}

/// A plan's period as it is indexed (`search_dates`, param `period`): whole days, from the
/// start of its first to the end of its last, `[start_ms, end_ms)` on the scale of
/// `clock::day_start_ms`; open-ended is `i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayPeriod {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The SQL form of `Standing::InForce` over `search_dates`, with `DayPeriod::today_ms(day)`
/// bound twice: `IN_FORCE_FROM {ms} IN_FORCE_UNTIL {ms}`. The same bounds as `standing`.
pub const IN_FORCE_FROM: &str = "start_ms <= ";
pub const IN_FORCE_UNTIL: &str = " AND end_ms > ";

impl DayPeriod {
    pub fn of(start: NaiveDate, end: Option<NaiveDate>) -> DayPeriod {
        DayPeriod {
            start_ms: day_start_ms(start),
            end_ms: end.map(day_end_ms).unwrap_or(i64::MAX),
        }
    }

    /// The period of a plan or Flag resource (`period.start`, `period.end`).
    pub fn of_resource(resource: &Value) -> DayPeriod {
        let day = |p: &str| {
            resource
                .pointer(p)
                .and_then(Value::as_str)
                .and_then(parse_day)
        };
        DayPeriod {
            start_ms: day("/period/start").map(day_start_ms).unwrap_or(i64::MIN),
            end_ms: day("/period/end").map(day_end_ms).unwrap_or(i64::MAX),
        }
    }

    /// Where `day` falls on the period's scale.
    pub fn today_ms(day: NaiveDate) -> i64 {
        day_start_ms(day)
    }

    /// Where the period stands on `day` (a UK date).
    pub fn standing(&self, day: NaiveDate) -> Standing {
        let today = DayPeriod::today_ms(day);
        if today < self.start_ms {
            Standing::NotYetStarted
        } else if today < self.end_ms {
            Standing::InForce
        } else {
            Standing::Ended
        }
    }
}
