//! FHIR resources and domain values. Pure: no I/O.

pub mod audit_event;
pub mod bundle;
pub mod episode_of_care;
pub mod flag;
pub mod index;
pub mod json;
pub mod nhs_number;
pub mod organization;
pub mod period;
pub mod subscription;
pub mod subset;
pub mod types;

pub use nhs_number::NhsNumber;
pub use types::ResourceType;
