//! Repeated attendance (issue #13): a child seen at several unscheduled care settings in a short
//! time may be a child at risk, and CP-IS exists partly to show that to the LA.
//!
//! An *attendance* is a distinct (care setting, day in England): the ODS code of the
//! organisation the clinician looked from, on a calendar day. Only accesses shown in the child's
//! history count — unscheduled health-care accesses, each person's first view in 24 hours — so
//! scheduled care, operations' reads and repeated views add nothing. Within the last
//! `window_days` days (today included) the summary counts attendances and distinct settings;
//! it is a *pattern* once the settings reach `settings`. The access that first brings a child to
//! the pattern in a window is marked (`first`), so an LA system can raise a task without counting.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};

use crate::clock::uk_date;

/// `CPIS_ATTENDANCE_WINDOW_DAYS` and `CPIS_ATTENDANCE_SETTINGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttendanceRule {
    pub window_days: u32,
    pub settings: u32,
}

impl Default for AttendanceRule {
    fn default() -> Self {
        AttendanceRule {
            window_days: 30,
            settings: 3,
        }
    }
}

/// A child's attendances as of one access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Distinct (setting, day) pairs within the window.
    pub attendances: u32,
    /// Distinct settings within the window.
    pub settings: u32,
    pub window_days: u32,
    /// The settings reached the rule's threshold.
    pub pattern: bool,
    /// This access is the one that brought the child to the pattern in this window.
    pub first: bool,
}

impl AttendanceRule {
    /// How far back the accesses that may count reach, from `now_ms` (a day of slack either
    /// side of the clock changes; `count` keeps to the calendar).
    pub fn since_ms(&self, now_ms: i64) -> i64 {
        now_ms - (i64::from(self.window_days) + 1) * 24 * 60 * 60 * 1000
    }

    /// The first day of the window that ends on `today`.
    fn first_day(&self, today: NaiveDate) -> NaiveDate {
        today
            .checked_sub_days(Days::new(u64::from(self.window_days.saturating_sub(1))))
            .unwrap_or(NaiveDate::MIN)
    }

    /// Counts `shown` accesses — (setting ODS code, instant) — on the window ending the day
    /// of `now_ms`.
    fn count(&self, shown: &[(String, i64)], now_ms: i64) -> (u32, u32) {
        let today = uk_date(now_ms);
        let first = self.first_day(today);
        let in_window: BTreeSet<(&str, NaiveDate)> = shown
            .iter()
            .map(|(setting, ms)| (setting.as_str(), uk_date(*ms)))
            .filter(|(_, day)| *day >= first && *day <= today)
            .collect();
        let settings: BTreeSet<&str> = in_window.iter().map(|(setting, _)| *setting).collect();
        (
            u32::try_from(in_window.len()).unwrap_or(u32::MAX),
            u32::try_from(settings.len()).unwrap_or(u32::MAX),
        )
    }

    /// The summary as of an access at `now_ms`: `earlier` are the child's shown accesses before
    /// it, and `this` is its own setting when it is shown itself (a collapsed view adds nothing,
    /// and carries the summary as it stands).
    pub fn summarise(&self, earlier: &[(String, i64)], this: Option<&str>, now_ms: i64) -> Summary {
        let (_, settings_before) = self.count(earlier, now_ms);
        let mut all = earlier.to_vec();
        if let Some(setting) = this {
            all.push((setting.to_string(), now_ms));
        }
        let (attendances, settings) = self.count(&all, now_ms);
        let pattern = settings >= self.settings;
        Summary {
            attendances,
            settings,
            window_days: self.window_days,
            pattern,
            first: pattern && settings_before < self.settings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(m: u32, d: u32, h: u32) -> i64 {
        Utc.with_ymd_and_hms(2026, m, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    fn seen(visits: &[(&str, i64)]) -> Vec<(String, i64)> {
        visits.iter().map(|(s, ms)| (s.to_string(), *ms)).collect()
    }

    fn three_settings_by_4_november() -> Vec<(String, i64)> {
        seen(&[
            ("RJ1", at(11, 2, 10)),
            ("R1H", at(11, 3, 10)),
            ("RQX", at(11, 4, 10)),
        ])
    }

    const RULE: AttendanceRule = AttendanceRule {
        window_days: 30,
        settings: 3,
    };

    #[test]
    fn the_third_setting_within_thirty_days_is_the_first_of_a_pattern() {
        let earlier = seen(&[("RJ1", at(11, 2, 10)), ("R1H", at(11, 20, 10))]);
        let s = RULE.summarise(&earlier, Some("RQX"), at(11, 30, 10));
        assert_eq!(
            (s.attendances, s.settings, s.pattern, s.first),
            (3, 3, true, true)
        );
    }

    #[test]
    fn one_setting_again_and_again_is_no_pattern() {
        let earlier = seen(&[("RJ1", at(11, 2, 10)), ("RJ1", at(11, 3, 10))]);
        let s = RULE.summarise(&earlier, Some("RJ1"), at(11, 4, 10));
        assert_eq!((s.attendances, s.settings, s.pattern), (3, 1, false));
    }

    #[test]
    fn settings_spread_over_forty_days_are_no_pattern() {
        let earlier = seen(&[("RJ1", at(10, 1, 10)), ("R1H", at(10, 20, 10))]);
        let s = RULE.summarise(&earlier, Some("RQX"), at(11, 9, 10));
        assert_eq!((s.settings, s.pattern), (2, false));
    }

    #[test]
    fn a_fourth_setting_in_the_same_window_is_not_first_again() {
        let earlier = three_settings_by_4_november();
        let s = RULE.summarise(&earlier, Some("RAL"), at(11, 5, 10));
        assert_eq!((s.settings, s.pattern, s.first), (4, true, false));
    }

    #[test]
    fn a_view_shown_nowhere_carries_the_summary_as_it_stands() {
        let earlier = three_settings_by_4_november();
        let s = RULE.summarise(&earlier, None, at(11, 4, 11));
        assert_eq!((s.settings, s.pattern, s.first), (3, true, false));
    }

    #[test]
    fn the_window_is_calendar_days_in_england() {
        // 30 days ending 31 May: from 2 May. 1 May at 23:30 UTC is already 2 May in England.
        let earlier = seen(&[
            ("RJ1", at(5, 1, 23) + 30 * 60 * 1000),
            ("R1H", at(5, 10, 10)),
        ]);
        let s = RULE.summarise(&earlier, Some("RQX"), at(5, 31, 12));
        assert!(s.pattern);
        let earlier = seen(&[("RJ1", at(5, 1, 22)), ("R1H", at(5, 10, 10))]);
        assert!(!RULE.summarise(&earlier, Some("RQX"), at(5, 31, 12)).pattern);
    }
}
