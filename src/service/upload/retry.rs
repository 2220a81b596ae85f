//! The retry state machine of an upload's part: after an attempt stopped, run the part again
//! (without a failed entry, with one that lost a race, or entry by entry), give up re-running
//! (one savepoint each), or fail.

use super::Kind;
use crate::error::FhirError;

/// Why an attempt at an upload stopped.
pub(super) enum Stop {
    /// Entry `0` failed: the attempt was rolled back.
    Entry(usize, FhirError),
    Database(diesel::result::Error),
    /// Writing the part's new plans together met an identifier claimed meanwhile by another
    /// writer: which entry lost cannot be told, so the part runs again entry by entry.
    Together,
    /// `finish` failed.
    Finish(FhirError),
}

impl From<diesel::result::Error> for Stop {
    fn from(e: diesel::result::Error) -> Self {
        Stop::Database(e)
    }
}

/// After this many entries failing while being written, a batch stops re-running and gives
/// each remaining entry a savepoint of its own.
const RETRIES_BEFORE_SAVEPOINTS: usize = 3;

/// Where a part's attempts stand.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Attempts {
    /// Entries that lost a race for their identifier and were run again once for it.
    pub(super) raced: Vec<usize>,
    /// Attempts rolled back so far.
    pub(super) retries: usize,
    /// The part's new plans are written together (`PartCache`) rather than entry by entry.
    pub(super) entry_by_entry: bool,
}

/// What a part does after an attempt stopped.
#[derive(Debug)]
pub(super) enum Next {
    /// Run the part again, as `Attempts` now says.
    Again,
    /// Give up re-running: the rest run one savepoint each.
    OneSavepointEach,
    /// The part fails with this error.
    Fail(FhirError),
}

impl Attempts {
    pub(super) fn new() -> Attempts {
        Attempts::default()
    }

    /// The next step after an attempt of an upload of `kind` stopped at `stop`. An entry that
    /// failed is recorded in `failed` (a batch runs on without it); `lost_a_race` says whether
    /// an entry's error was only another writer claiming its identifier first.
    pub(super) fn after(
        &mut self,
        stop: Stop,
        kind: Kind,
        lost_a_race: impl Fn(usize, &FhirError) -> bool,
        failed: &mut [Option<FhirError>],
    ) -> Next {
        match stop {
            Stop::Finish(e) => return Next::Fail(e),
            Stop::Database(e) => return Next::Fail(e.into()),
            Stop::Entry(i, e) if lost_a_race(i, &e) && !self.raced.contains(&i) => {
                self.raced.push(i);
            }
            Stop::Entry(_, e) if kind == Kind::Transaction => return Next::Fail(e),
            Stop::Entry(i, e) => {
                if let Some(slot) = failed.get_mut(i) {
                    *slot = Some(e);
                }
            }
            Stop::Together => {
                tracing::debug!(
                    target: "cpis::upload",
                    "a part's new plans met an identifier claimed meanwhile: run entry by entry"
                );
                self.entry_by_entry = true;
            }
        }
        self.retries += 1;
        if self.retries < RETRIES_BEFORE_SAVEPOINTS {
            Next::Again
        } else {
            Next::OneSavepointEach
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: &FhirError) -> u16 {
        use actix_web::ResponseError;
        e.status_code().as_u16()
    }

    fn failing(status: u16) -> FhirError {
        FhirError::InEntry {
            status,
            issues: Vec::new(),
        }
    }

    fn no_race(_: usize, _: &FhirError) -> bool {
        false
    }

    /// A 409 is another writer having claimed the identifier first.
    fn racing(_: usize, e: &FhirError) -> bool {
        status(e) == 409
    }

    fn statuses(failed: &[Option<FhirError>]) -> Vec<Option<u16>> {
        failed.iter().map(|f| f.as_ref().map(status)).collect()
    }

    #[test]
    fn a_first_attempt_writes_the_parts_new_plans_together() {
        assert_eq!(
            Attempts::new(),
            Attempts {
                raced: Vec::new(),
                retries: 0,
                entry_by_entry: false,
            }
        );
    }

    #[test]
    fn a_failing_finish_fails_the_part_at_once() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None, None];
        let next = attempts.after(
            Stop::Finish(failing(500)),
            Kind::Batch,
            no_race,
            &mut failed,
        );
        assert!(
            matches!(next, Next::Fail(ref e) if status(e) == 500),
            "{next:?}"
        );
        assert_eq!(attempts, Attempts::new(), "nothing retried");
        assert_eq!(statuses(&failed), [None, None]);
    }

    #[test]
    fn a_database_error_fails_the_part_at_once_as_that_error() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None];
        let expected = status(&FhirError::from(
            diesel::result::Error::BrokenTransactionManager,
        ));
        let next = attempts.after(
            Stop::Database(diesel::result::Error::BrokenTransactionManager),
            Kind::Batch,
            no_race,
            &mut failed,
        );
        assert!(
            matches!(next, Next::Fail(ref e) if status(e) == expected),
            "{next:?}"
        );
        assert_eq!(attempts, Attempts::new());
    }

    #[test]
    fn a_batch_entry_that_fails_is_recorded_and_the_part_runs_again_without_it() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None, None, None];
        let next = attempts.after(
            Stop::Entry(1, failing(422)),
            Kind::Batch,
            no_race,
            &mut failed,
        );
        assert!(matches!(next, Next::Again), "{next:?}");
        assert_eq!(statuses(&failed), [None, Some(422), None]);
        assert_eq!(attempts.retries, 1);
        assert!(attempts.raced.is_empty());
        assert!(!attempts.entry_by_entry);
    }

    #[test]
    fn a_transaction_entry_that_fails_fails_the_whole_transaction() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None, None];
        let next = attempts.after(
            Stop::Entry(1, failing(422)),
            Kind::Transaction,
            no_race,
            &mut failed,
        );
        assert!(
            matches!(next, Next::Fail(ref e) if status(e) == 422),
            "{next:?}"
        );
        assert_eq!(statuses(&failed), [None, None]);
        assert_eq!(attempts.retries, 0);
    }

    #[test]
    fn a_batch_entry_that_lost_a_race_runs_again_once_with_it_then_fails_as_any_other() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None, None, None];
        let next = attempts.after(
            Stop::Entry(2, failing(409)),
            Kind::Batch,
            racing,
            &mut failed,
        );
        assert!(matches!(next, Next::Again), "{next:?}");
        assert_eq!(statuses(&failed), [None, None, None], "run again with it");
        assert_eq!(attempts.raced, [2]);
        let next = attempts.after(
            Stop::Entry(2, failing(409)),
            Kind::Batch,
            racing,
            &mut failed,
        );
        assert!(matches!(next, Next::Again), "{next:?}");
        assert_eq!(
            statuses(&failed),
            [None, None, Some(409)],
            "then without it"
        );
        assert_eq!(attempts.retries, 2);
    }

    #[test]
    fn a_transaction_entry_that_lost_a_race_runs_again_once_then_fails_the_transaction() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None];
        let next = attempts.after(
            Stop::Entry(0, failing(409)),
            Kind::Transaction,
            racing,
            &mut failed,
        );
        assert!(matches!(next, Next::Again), "{next:?}");
        let next = attempts.after(
            Stop::Entry(0, failing(409)),
            Kind::Transaction,
            racing,
            &mut failed,
        );
        assert!(
            matches!(next, Next::Fail(ref e) if status(e) == 409),
            "{next:?}"
        );
        assert_eq!(statuses(&failed), [None]);
    }

    #[test]
    fn new_plans_that_met_an_identifier_claimed_meanwhile_run_again_entry_by_entry() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None, None];
        let next = attempts.after(Stop::Together, Kind::Batch, no_race, &mut failed);
        assert!(matches!(next, Next::Again), "{next:?}");
        assert!(attempts.entry_by_entry);
        assert_eq!(attempts.retries, 1);
        assert_eq!(statuses(&failed), [None, None], "no entry is blamed");
    }

    #[test]
    fn after_three_rolled_back_attempts_the_rest_run_one_savepoint_each() {
        let mut attempts = Attempts::new();
        let mut failed = vec![None, None, None, None];
        let stops = [
            Stop::Entry(0, failing(422)),
            Stop::Together,
            Stop::Entry(3, failing(409)),
        ];
        let nexts: Vec<Next> = stops
            .into_iter()
            .map(|stop| attempts.after(stop, Kind::Batch, racing, &mut failed))
            .collect();
        assert!(
            matches!(
                nexts.as_slice(),
                [Next::Again, Next::Again, Next::OneSavepointEach]
            ),
            "{nexts:?}"
        );
        assert_eq!(attempts.retries, RETRIES_BEFORE_SAVEPOINTS);
        assert_eq!(attempts.raced, [3], "the race counts as a retry too");
        assert_eq!(statuses(&failed), [Some(422), None, None, None]);
    }
}
