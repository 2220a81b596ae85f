//! Search: the parameter table of every searched type (`params`, which also feeds the
//! CapabilityStatement), and strict parsers (`parse`; `audit` for the access history). The
//! query over the index tables is `db::search`.

pub mod audit;
pub mod params;
pub mod parse;

pub use parse::{parse, SearchRequest};
