//! The server's clock, and the calendar it keeps. Passed in (through `AppState`), so tests
//! and retention can set the time.
//!
//! Every date rule of the service (a Flag is active from its plan's start day to its end day;
//! retention counts months from a day) is judged on the calendar date in England,
//! Europe/London: from 00:00 to 01:00 BST the UTC date is still yesterday's.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;

/// Now, in epoch milliseconds: the system clock, or a fixed time a test sets.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock stopped at `now_ms`, moved with `set`.
    pub fn fixed(now_ms: i64) -> Clock {
        Clock {
            fixed: Some(Arc::new(AtomicI64::new(now_ms))),
        }
    }

    /// Moves a fixed clock (every copy of it); a system clock cannot be moved.
    pub fn set(&self, now_ms: i64) {
        if let Some(fixed) = &self.fixed {
            fixed.store(now_ms, Ordering::SeqCst);
        }
    }

    pub fn now_ms(&self) -> i64 {
        match &self.fixed {
            Some(fixed) => fixed.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }
}

/// Epoch milliseconds as a UTC date and time.
pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Midnight UTC at the start of `date`, in epoch milliseconds: how the date index keeps a
/// calendar day (compare it with `day_start_ms(uk_date(now))`, never with now itself).
pub fn day_start_ms(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map(|dt| dt.and_utc().timestamp_millis())
        .unwrap_or_default()
}

/// The calendar date in England at `now_ms`.
pub fn uk_date(now_ms: i64) -> NaiveDate {
    to_datetime(now_ms).with_timezone(&London).date_naive()
}

/// The instant `date` begins in England, in epoch milliseconds: midnight Europe/London (23:00
/// UTC the evening before in summer). What a day-only date means against an instant (when a
/// resource changed, when an access was recorded); a plan's period, a plain date, is kept and
/// compared as `day_start_ms`.
pub fn uk_day_start_ms(date: NaiveDate) -> i64 {
    London
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .map_or_else(|| day_start_ms(date), |start| start.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn in_summer_the_uk_day_starts_an_hour_before_the_utc_day() {
        assert_eq!(uk_date(utc(2026, 5, 31, 22, 59)), date(2026, 5, 31));
        assert_eq!(uk_date(utc(2026, 5, 31, 23, 30)), date(2026, 6, 1));
    }

    #[test]
    fn a_uk_day_starts_at_midnight_in_london() {
        assert_eq!(uk_day_start_ms(date(2026, 6, 1)), utc(2026, 5, 31, 23, 0));
        assert_eq!(uk_day_start_ms(date(2026, 12, 31)), utc(2026, 12, 31, 0, 0));
        // The clocks go forward at 01:00 GMT on 29 March 2026 and back at 02:00 BST on 25
        // October: each of those days starts at the offset of the night before.
        assert_eq!(uk_day_start_ms(date(2026, 3, 29)), utc(2026, 3, 29, 0, 0));
        assert_eq!(uk_day_start_ms(date(2026, 3, 30)), utc(2026, 3, 29, 23, 0));
        assert_eq!(
            uk_day_start_ms(date(2026, 10, 25)),
            utc(2026, 10, 24, 23, 0)
        );
        assert_eq!(uk_day_start_ms(date(2026, 10, 26)), utc(2026, 10, 26, 0, 0));
        for ms in [utc(2026, 5, 31, 23, 30), utc(2026, 12, 31, 23, 30)] {
            let day = uk_date(ms);
            assert!(uk_day_start_ms(day) <= ms, "{day}");
            assert!(
                ms < uk_day_start_ms(day.succ_opt().unwrap_or_default()),
                "{day}"
            );
        }
    }

    #[test]
    fn in_winter_the_uk_day_is_the_utc_day() {
        assert_eq!(uk_date(utc(2026, 12, 31, 23, 30)), date(2026, 12, 31));
        assert_eq!(uk_date(utc(2027, 1, 1, 0, 0)), date(2027, 1, 1));
    }

    #[test]
    fn a_fixed_clock_moves_only_when_set() {
        let clock = Clock::fixed(1_000);
        let copy = clock.clone();
        assert_eq!(copy.now_ms(), 1_000);
        clock.set(2_000);
        assert_eq!(copy.now_ms(), 2_000);
    }
}
