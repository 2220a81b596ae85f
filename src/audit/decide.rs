//! The pure decisions of the writer (SPEC §3): where an access is shown (the 24-hour
//! collapse), the child's attendance summary and each LA's repeated-attendance mark, and which
//! Subscriptions are notified. What was recorded before is read by the writer (`writer.rs`).

use crate::attendance::AttendanceRule;
use crate::db::audit::{self, EarlierView, NewAccess};
use crate::fhir::subscription::SubscriptionStatus;

/// The same person's views of a child within this long count once (SPEC §3).
pub(super) const COLLAPSE_MS: i64 = 24 * 60 * 60 * 1000;

/// Where an access is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Showing {
    /// In the child's history (the 25 most recent accesses).
    pub in_history: bool,
    /// To these of its LAs (their history, pull and notifications).
    pub to_las: Vec<String>,
    /// Of those, the LAs for which it is the repeated-attendance mark.
    pub marked_las: Vec<String>,
}

/// The 24-hour collapse (SPEC §3). Only a reportable access (health-care, unscheduled) is
/// shown at all. It is shown in the child's history unless one of the same person's views
/// within 24 hours (`earlier`) was; and to each of its LAs not already shown one of them. So
/// the first view counts, and a plan of a new LA in the meantime still reaches that LA.
pub fn collapse(reportable: bool, las: &[String], earlier: &[EarlierView]) -> Showing {
    if !reportable {
        return Showing {
            in_history: false,
            to_las: Vec::new(),
            marked_las: Vec::new(),
        };
    }
    let told = |la: &String| earlier.iter().any(|e| e.las_shown.contains(la));
    Showing {
        in_history: !earlier.iter().any(|e| e.shown),
        to_las: las.iter().filter(|la| !told(la)).cloned().collect(),
        marked_las: Vec::new(),
    }
}

/// Which of an LA's Subscriptions (id, status) are notified: every one not turned off (one in
/// `error` keeps being tried, so that it can return to `active`).
pub fn recipients(subscriptions: &[(String, String)]) -> impl Iterator<Item = &str> {
    subscriptions
        .iter()
        .filter(|(_, status)| delivers(status))
        .map(|(id, _)| id.as_str())
}

/// Whether a Subscription in this status is notified.
pub(super) fn delivers(status: &str) -> bool {
    SubscriptionStatus::parse(status).delivers()
}

/// What was recorded before a batch about its reportable accesses' children.
pub(super) struct Recorded {
    /// The same people's views within the 24-hour collapse window that were shown somewhere.
    pub(super) views: Vec<audit::RecentView>,
    /// The LAs each of those views, and each access in a pattern, was shown to, by seq.
    pub(super) las_shown: Vec<(i64, String)>,
    /// Every reportable access within the attendance window, one per hour and setting:
    /// (child, setting, the instant its hour began; from the accesses that opened them).
    pub(super) attendances: Vec<(String, String, i64)>,
    /// (child, LA): the LA was shown an access of the child in a pattern within the window,
    /// so a later one in the same pattern is not its mark.
    pub(super) pattern_told: Vec<(String, String)>,
}

/// Decides, in order, where each access is shown and the child's attendance summary as of it
/// (written into its row): from what was recorded before, and the batch's earlier accesses as
/// they are decided.
pub(super) fn decide(
    rows: &mut [NewAccess],
    recorded: &Recorded,
    stamp: i64,
    rule: AttendanceRule,
) -> Vec<Showing> {
    let mut showings: Vec<Showing> = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let (before, rest) = rows.split_at_mut(i);
        let Some(access) = rest.first_mut() else {
            break;
        };
        if !access.reportable {
            showings.push(collapse(false, &access.la_ods, &[]));
            continue;
        }
        let row = &access.row;
        let same_view = |nhs: &str, sub: &str, org: &str| {
            nhs == row.nhs_number && sub == row.agent_sub && org == row.agent_org
        };
        let earlier: Vec<EarlierView> = recorded
            .views
            .iter()
            .filter(|v| same_view(&v.nhs_number, &v.agent_sub, &v.agent_org))
            .map(|v| EarlierView {
                shown: v.shown,
                las_shown: recorded
                    .las_shown
                    .iter()
                    .filter(|(seq, _)| *seq == v.seq)
                    .map(|(_, la)| la.clone())
                    .collect(),
            })
            .chain(
                before
                    .iter()
                    .zip(&showings)
                    .filter(|(b, _)| {
                        same_view(&b.row.nhs_number, &b.row.agent_sub, &b.row.agent_org)
                    })
                    .map(|(_, showing)| EarlierView {
                        shown: showing.in_history,
                        las_shown: showing.to_las.clone(),
                    }),
            )
            .collect();
        let showing = collapse(true, &access.la_ods, &earlier);
        let attended: Vec<(String, i64)> = recorded
            .attendances
            .iter()
            .filter(|(nhs, _, _)| *nhs == row.nhs_number)
            .map(|(_, org, ms)| (org.clone(), *ms))
            .chain(
                before
                    .iter()
                    .filter(|b| b.reportable && b.row.nhs_number == row.nhs_number)
                    .map(|b| (b.row.agent_org.clone(), stamp)),
            )
            .collect();
        let opens_hour = !attended
            .iter()
            .any(|(org, ms)| *org == row.agent_org && audit::hour_of(*ms) == audit::hour_of(stamp));
        let summary = rule.summarise(&attended, Some(row.agent_org.as_str()), stamp);
        // Each LA's mark: the access that reaches the pattern in its window, for every LA it
        // is shown to; else the first access an LA is shown while the pattern holds.
        let mut showing = showing;
        if summary.pattern {
            let told_before = |la: &String| {
                recorded
                    .pattern_told
                    .iter()
                    .any(|(nhs, told)| *nhs == row.nhs_number && told == la)
                    || before.iter().zip(&showings).any(|(b, shown)| {
                        b.row.nhs_number == row.nhs_number
                            && b.row.attendance_pattern == Some(true)
                            && shown.to_las.contains(la)
                    })
            };
            showing.marked_las = showing
                .to_las
                .iter()
                .filter(|la| summary.first || !told_before(la))
                .cloned()
                .collect();
        }
        let count = |n: u32| Some(i32::try_from(n).unwrap_or(i32::MAX));
        let row = &mut access.row;
        row.shown = showing.in_history;
        row.told_las = !showing.to_las.is_empty();
        row.attendances = count(summary.attendances);
        row.attendance_settings = count(summary.settings);
        row.attendance_window_days = count(summary.window_days);
        row.attendance_pattern = Some(summary.pattern);
        row.pattern_reached = summary.first || !showing.marked_las.is_empty();
        row.opens_attendance_hour = opens_hour;
        showings.push(showing);
    }
    showings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::accesses::test_support::{las, nurse, pending};
    use crate::fhir::audit_event::AccessKind;

    /// A reportable access to the child by `sub` at `org`, its plans held by `las`.
    fn at(sub: &str, org: &str, las_held: &[&str]) -> NewAccess {
        let mut who = nurse(Some(org), false);
        who.sub = sub.into();
        let mut p = pending(who, AccessKind::Search, &["Flag/a"]);
        p.la_ods = las(las_held);
        p.row(1_790_000_000_000)
    }

    fn nothing_recorded() -> Recorded {
        Recorded {
            views: Vec::new(),
            las_shown: Vec::new(),
            attendances: Vec::new(),
            pattern_told: Vec::new(),
        }
    }

    #[test]
    fn a_batch_decides_each_access_as_if_the_ones_before_it_were_stored() {
        let mut rows = vec![
            at("nurse-1", "RJ1", &["E09000030"]),
            at("nurse-1", "RJ1", &["E09000030"]),
            at("nurse-2", "RJ1", &["E09000030"]),
            at("nurse-3", "RQM", &["E09000030"]),
            at("nurse-4", "RYJ", &["E09000030"]),
        ];
        let showings = decide(
            &mut rows,
            &nothing_recorded(),
            1_790_000_000_000,
            AttendanceRule::default(),
        );
        let in_history: Vec<bool> = showings.iter().map(|s| s.in_history).collect();
        assert_eq!(
            in_history,
            [true, false, true, true, true],
            "the repeat view collapses"
        );
        assert!(showings[1].to_las.is_empty());
        // One setting (RJ1) twice the same day is one attendance; RQM and RYJ make three settings.
        let attendances: Vec<Option<i32>> = rows.iter().map(|r| r.row.attendances).collect();
        assert_eq!(attendances, [Some(1), Some(1), Some(1), Some(2), Some(3)]);
        let reached: Vec<bool> = rows.iter().map(|r| r.row.pattern_reached).collect();
        assert_eq!(reached, [false, false, false, false, true]);
    }

    #[test]
    fn a_pattern_reached_again_after_it_lapsed_is_marked_again_for_an_la_told_of_the_last_one() {
        let day = 24 * 60 * 60 * 1000;
        let now = 1_790_000_000_000;
        // Two settings within the window, each shown to the LA while an earlier pattern held
        // (their own summaries said pattern); the third setting reaches it again today.
        let recorded = Recorded {
            views: Vec::new(),
            las_shown: Vec::new(),
            attendances: vec![
                ("9449306753".into(), "RRU".into(), now - 20 * day),
                ("9449306753".into(), "RQX".into(), now - 18 * day),
            ],
            pattern_told: vec![("9449306753".into(), "E09000030".into())],
        };
        let mut rows = vec![at("nurse-9", "R1H", &["E09000030"])];
        let showings = decide(&mut rows, &recorded, now, AttendanceRule::default());
        assert_eq!(showings[0].marked_las, las(&["E09000030"]));
        assert!(rows[0].row.pattern_reached);
        // Without the re-reach (a fourth setting in the same pattern), no mark.
        let mut rows = vec![at("nurse-9", "R1H", &["E09000030"])];
        let recorded = Recorded {
            attendances: vec![
                ("9449306753".into(), "RRU".into(), now - 20 * day),
                ("9449306753".into(), "RQX".into(), now - 18 * day),
                ("9449306753".into(), "RAL".into(), now - 17 * day),
            ],
            ..recorded
        };
        let showings = decide(&mut rows, &recorded, now, AttendanceRule::default());
        assert!(showings[0].marked_las.is_empty());
        assert!(!rows[0].row.pattern_reached);
    }

    #[test]
    fn an_earlier_view_in_the_database_and_one_in_the_batch_count_alike() {
        let recorded = Recorded {
            views: vec![audit::RecentView {
                seq: 7,
                nhs_number: "9449306753".into(),
                agent_sub: "nurse-1".into(),
                agent_org: "RJ1".into(),
                recorded_ms: 1_789_999_000_000,
                shown: true,
                told_las: true,
                attendance_pattern: Some(false),
                opens_attendance_hour: true,
            }],
            las_shown: vec![(7, "E09000030".into())],
            attendances: vec![("9449306753".into(), "RJ1".into(), 1_789_999_000_000)],
            pattern_told: Vec::new(),
        };
        let mut rows = vec![
            at("nurse-1", "RJ1", &["E09000030", "E08000025"]),
            at("nurse-1", "RJ1", &["E09000030", "E08000025"]),
        ];
        let showings = decide(
            &mut rows,
            &recorded,
            1_790_000_000_000,
            AttendanceRule::default(),
        );
        assert!(!showings[0].in_history);
        assert_eq!(
            showings[0].to_las,
            las(&["E08000025"]),
            "only the LA not yet told"
        );
        assert!(
            showings[1].to_las.is_empty(),
            "told by the batch's first access"
        );
        assert_eq!(rows[0].row.attendances, Some(1));
    }

    #[test]
    fn an_access_opens_an_attendance_hour_unless_its_setting_was_there_that_hour() {
        let hour = 60 * 60 * 1000;
        let now = 1_790_000_000_000 / hour * hour + 30 * 60 * 1000;
        let recorded = Recorded {
            // RJ1 attended in this hour already, RQM in the hour before.
            attendances: vec![
                ("9449306753".into(), "RJ1".into(), now / hour * hour),
                ("9449306753".into(), "RQM".into(), now / hour * hour - hour),
            ],
            ..nothing_recorded()
        };
        let mut rows = vec![
            at("nurse-1", "RJ1", &["E09000030"]),
            at("nurse-2", "RQM", &["E09000030"]),
            at("nurse-3", "RQM", &["E09000030"]),
            at("nurse-4", "RYJ", &["E09000030"]),
        ];
        rows[3].reportable = false;
        decide(&mut rows, &recorded, now, AttendanceRule::default());
        let opens: Vec<bool> = rows.iter().map(|r| r.row.opens_attendance_hour).collect();
        assert_eq!(
            opens,
            [false, true, false, false],
            "RJ1 was there this hour; RQM's first this hour opens it, its second does not; \
             an access that is not reportable is no attendance"
        );
    }

    fn earlier(shown: bool, las_shown: &[&str]) -> EarlierView {
        EarlierView {
            shown,
            las_shown: las(las_shown),
        }
    }

    #[test]
    fn a_first_view_is_shown_in_the_history_and_to_every_la_of_the_child() {
        let showing = collapse(true, &las(&["E09000030", "E08000025"]), &[]);
        assert!(showing.in_history);
        assert_eq!(showing.to_las, las(&["E09000030", "E08000025"]));
    }

    #[test]
    fn a_view_within_a_day_of_a_shown_one_is_recorded_but_shown_nowhere() {
        let showing = collapse(true, &las(&["E09000030"]), &[earlier(true, &["E09000030"])]);
        assert!(!showing.in_history);
        assert!(showing.to_las.is_empty());
    }

    #[test]
    fn an_la_whose_plan_began_since_the_first_view_is_still_told() {
        let showing = collapse(
            true,
            &las(&["E09000030", "E08000025"]),
            &[earlier(true, &["E09000030"])],
        );
        assert!(
            !showing.in_history,
            "the child's history shows the first view only"
        );
        assert_eq!(showing.to_las, las(&["E08000025"]));
    }

    #[test]
    fn only_reportable_accesses_are_shown() {
        let scheduled = collapse(false, &las(&["E09000030"]), &[]);
        assert_eq!(
            scheduled,
            Showing {
                in_history: false,
                to_las: Vec::new(),
                marked_las: Vec::new(),
            }
        );
    }

    #[test]
    fn an_earlier_view_shown_nowhere_does_not_hide_this_one() {
        // A scheduled or collapsed view earlier in the day was shown nowhere itself.
        let showing = collapse(true, &las(&["E09000030"]), &[earlier(false, &[])]);
        assert!(showing.in_history);
        assert_eq!(showing.to_las, las(&["E09000030"]));
    }

    #[test]
    fn every_subscription_but_those_turned_off_is_notified() {
        let subscriptions = [
            ("a".to_string(), "active".to_string()),
            ("b".to_string(), "off".to_string()),
            ("c".to_string(), "error".to_string()),
            ("d".to_string(), "requested".to_string()),
        ];
        let notified: Vec<&str> = recipients(&subscriptions).collect();
        assert_eq!(notified, ["a", "c", "d"]);
    }
}
