//! Disclosure: what a read disclosed travels as a `Disclosed<T>` that only
//! `Auditor::disclosing` opens, after recording the accesses it makes.

use crate::auth::Caller;
use crate::db::DbConn;
use crate::error::FhirError;
use crate::fhir::audit_event::{AccessKind, CareSetting, Report};
use crate::fhir::ResourceType;

use super::accesses::{self, PendingAccess};
use super::writer::Auditor;
use serde_json::Value;

/// What a read disclosed, with the accesses that disclosing it makes. The service layer
/// returns one for every read path (read, vread, history, search, the access history); the
/// data is private, and the only way to it is `Auditor::disclosing`, which records the accesses
/// first. A `Disclosed` is built only from `Accesses`, which only an `AccessContext` makes, and
/// an `AccessContext` exists only inside `Auditor::disclosing`. So a read path cannot answer
/// without auditing: it does not compile. Each door, shut:
///
/// ```
/// use cpis::audit::{Auditor, Reader};
/// use cpis::db::DbPool;
/// use cpis::error::FhirError;
/// async fn respond(auditor: &Auditor, pool: &DbPool, reader: Reader) -> Result<i64, FhirError> {
///     // recorded, then handed over
///     auditor.disclosing(pool, reader, |_conn, ctx| Ok(ctx.disclosed(1, &[]))).await
/// }
/// ```
///
/// ```compile_fail,E0616
/// use cpis::audit::Disclosed;
/// fn respond(disclosed: Disclosed<String>) -> String {
///     disclosed.data // private: only the recorder hands the data out
/// }
/// ```
///
/// ```compile_fail,E0624
/// use cpis::audit::{Accesses, Disclosed};
/// fn forge(data: String, accesses: Accesses) -> Disclosed<String> {
///     Disclosed::new(data, accesses) // only the audit module builds one
/// }
/// ```
///
/// ```compile_fail,E0451
/// use cpis::audit::{AccessContext, Reader};
/// fn forge(reader: Reader) -> AccessContext {
///     AccessContext { reader } // only `Auditor::disclosing` makes a context
/// }
/// ```
///
/// ```compile_fail,E0603
/// use cpis::{auth::Caller, db::DbConn};
/// fn around(conn: &mut DbConn) {
///     // plan content without a disclosure: not reachable from outside the service layer
///     let _ = cpis::service::read::supporting(conn, todo!(), cpis::fhir::ResourceType::EpisodeOfCare, "id");
/// }
/// ```
///
/// ```compile_fail,E0603
/// use cpis::{auth::Caller, db::DbConn};
/// fn around(conn: &mut DbConn, caller: &Caller) {
///     let _ = cpis::service::search::supporting_plans(conn, todo!(), "9449306753");
/// }
/// ```
///
/// ```compile_fail,E0451
/// use cpis::service::access_history::Plan;
/// fn forge(scope: cpis::db::audit::HistoryScope) -> Plan {
///     // a history page is read only for a plan a disclosure decided
///     Plan { scope, cap: None, audited_child: None, only_visible_plans: false, report: None }
/// }
/// ```
#[must_use = "a disclosure reaches a response only through Auditor::disclose"]
#[derive(Debug)]
pub struct Disclosed<T> {
    data: T,
    accesses: Vec<PendingAccess>,
}

/// The accesses a disclosure makes: built only from an `AccessContext`.
#[derive(Debug)]
pub struct Accesses(Vec<PendingAccess>);

impl<T> Disclosed<T> {
    fn new(data: T, accesses: Accesses) -> Disclosed<T> {
        Disclosed {
            data,
            accesses: accesses.0,
        }
    }

    /// The same accesses, with the data changed (e.g. rendered into a Bundle).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Disclosed<U> {
        Disclosed {
            data: f(self.data),
            accesses: self.accesses,
        }
    }
}

impl Auditor {
    /// Runs `read` on the pool as `reader`, and hands over what it disclosed once the accesses
    /// it makes are committed: nothing is shown that was not recorded. The read's context
    /// exists only here, and only a context makes a disclosure.
    pub async fn disclosing<T, F>(
        &self,
        pool: &crate::db::DbPool,
        reader: Reader,
        read: F,
    ) -> Result<T, FhirError>
    where
        F: FnOnce(&mut DbConn, &AccessContext) -> Result<Disclosed<T>, FhirError> + Send + 'static,
        T: Send + 'static,
    {
        let ctx = AccessContext { reader };
        let disclosed = crate::db::run(pool, move |conn| read(conn, &ctx)).await?;
        self.record(disclosed.accesses).await?;
        Ok(disclosed.data)
    }
}

/// A returned plan or flag, as an audit needs it.
pub struct Returned<'a> {
    pub ty: ResourceType,
    pub content: &'a Value,
}

/// Who reads, how and when: what the AuditEvents of a read say besides what it returned.
#[derive(Debug, Clone)]
pub struct Reader {
    pub caller: Caller,
    pub kind: AccessKind,
    pub care_setting: CareSetting,
    pub now_ms: i64,
    /// The server's base URL (`AuditEvent.source.observer`).
    pub observer: String,
}

/// A read in progress inside `Auditor::disclosing`: the only maker of disclosures.
#[derive(Debug)]
pub struct AccessContext {
    reader: Reader,
}

impl AccessContext {
    pub fn caller(&self) -> &Caller {
        &self.reader.caller
    }

    pub fn now_ms(&self) -> i64 {
        self.reader.now_ms
    }

    /// `data`, which returned these plans and flags, with the accesses that makes.
    pub fn disclosed<T>(&self, data: T, returned: &[Returned<'_>]) -> Disclosed<T> {
        Disclosed::new(data, self.accesses(returned))
    }

    /// The accesses of reading these plans and flags (to disclose with data that holds them).
    pub fn accesses(&self, returned: &[Returned<'_>]) -> Accesses {
        Accesses(accesses::read(&self.reader, returned))
    }

    /// `data` with the governance access of a report search about `subject`: recorded for
    /// operations to list, never shown in a history, notified, counted or reported.
    pub fn report_disclosed<T>(&self, data: T, report: Report, subject: &str) -> Disclosed<T> {
        let access = accesses::report(&self.reader, report, subject);
        Disclosed::new(data, Accesses(vec![access]))
    }

    /// `data` with the access of a history search for child `nhs`, who has plans of `las`;
    /// with `None`, a disclosure that makes no access (nothing about a child is shown).
    pub fn history_disclosed<T>(
        &self,
        data: T,
        child: Option<(&str, Vec<String>)>,
    ) -> Disclosed<T> {
        let accesses = match child {
            Some((nhs, las)) => accesses::history(&self.reader, nhs, las),
            None => Vec::new(),
        };
        Disclosed::new(data, Accesses(accesses))
    }
}

impl<T> Disclosed<T> {
    /// `data` with the accesses already worked out for it.
    pub fn with(data: T, accesses: Accesses) -> Disclosed<T> {
        Disclosed::new(data, accesses)
    }
}
