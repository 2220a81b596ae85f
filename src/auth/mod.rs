//! Who is calling, and what they may do: JWT verification (`jwt`), the request extractor
//! (`caller`) and the role × action matrix of SPEC §2 (`policy`).

pub mod caller;
pub mod jwt;
pub mod policy;

pub use caller::Caller;
pub use policy::{Action, Role};
