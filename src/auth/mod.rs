//! Who is calling, and what they may do: JWT verification (`jwt`) with keys from configuration
//! or from the identity provider (`provider_keys`), claims read where the provider puts them
//! (`claims`), the request extractor (`caller`), the role × action matrix of SPEC §2 (`policy`)
//! and whose records a caller may touch (`ownership`).

pub mod caller;
pub mod claims;
pub mod jwt;
pub mod ownership;
pub mod policy;
pub mod provider_keys;

pub use caller::Caller;
pub use ownership::LaScope;
pub use policy::{Action, HistoryView, PlanSearch, Reach, Recording, Role};
