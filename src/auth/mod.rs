//! Who is calling, and what they may do: JWT verification (`jwt`), the request extractor
//! (`caller`), the role × action matrix of SPEC §2 (`policy`) and whose records a caller may
//! touch (`ownership`).

pub mod caller;
pub mod jwt;
pub mod ownership;
pub mod policy;

pub use caller::Caller;
pub use ownership::LaScope;
pub use policy::{Action, Role};
