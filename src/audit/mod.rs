//! Access auditing (SPEC §3 AuditEvent): which accesses are recorded, and the writer that
//! commits them before the response is sent.
//!
//! The writer is one thread with group commit: requests hand their accesses over a bounded
//! channel and wait; the thread takes everything queued, writes it in one transaction (with
//! the notification outbox rows) and then answers every waiter. One commit serves many
//! lookups, and SQLite's single write lock is never fought over by the request threads.
//!
//! One job a file:
//! - `disclosure`: `Disclosed<T>`, `AccessContext` and `Auditor::disclosing`, the only way plan
//!   content reaches a response;
//! - `accesses`: which accesses a read makes (pure);
//! - `decide`: the 24-hour collapse, attendance marks per LA and the recipients (pure);
//! - `render`: an access's AuditEvent for its audience;
//! - `writer`: the group-commit writer thread that stamps and stores them.

mod accesses;
mod decide;
mod disclosure;
mod render;
mod writer;

pub use accesses::PendingAccess;
pub use decide::{collapse, recipients, Showing};
pub use disclosure::{AccessContext, Accesses, Disclosed, Reader, Returned};
pub use render::{render, Audience};
pub use writer::{accesses_being_recorded, Auditor};
