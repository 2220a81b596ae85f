//! Search: the per-type parameter table (`params`, which also feeds the CapabilityStatement),
//! a strict parser (`parse`), and the diesel query over the index tables (`query`).

pub mod audit;
pub mod params;
pub mod parse;
pub mod query;

pub use parse::{parse, SearchRequest};
