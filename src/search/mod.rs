//! Search: the parameter table of every searched type, the NHS views' included (`params`),
//! the CapabilityStatement built from it (`capability`), strict parsers (`parse`; `audit` for
//! the access history), a child's search from an NHS number already parsed (`patient`) and a
//! search's pages (`page`). The query over the index tables is `db::search`.

pub mod audit;
pub mod capability;
mod date;
pub mod page;
mod paging;
pub mod params;
pub mod parse;
pub mod patient;

pub use parse::{parse, SearchRequest};
