//! Who is calling, and what they may do: JWT verification (`jwt`) with keys from configuration
//! or from the identity provider (`provider_keys`), claims read where the provider puts them
//! (`claims`) into an `Identity` (`identity`), the request extractor (`caller`), the role ×
//! action matrix of SPEC §2 (`policy`), whose records a caller may touch (`ownership`), and
//! the tokens `cpis token` and the tests sign (`token`).

pub mod caller;
pub mod claims;
pub mod identity;
pub mod jwt;
pub mod ownership;
pub mod policy;
pub mod provider_keys;
pub mod token;

pub use caller::Caller;
pub use identity::Identity;
pub use ownership::LaScope;
pub use policy::{Action, HistoryView, PlanSearch, Reach, Recording, Role};
