//! Who is calling: what a verified token asserts about its caller (read from its claims by
//! `claims::ClaimMap`), the same whichever key or provider signed it.

use super::policy::Role;

/// What a token asserts about its caller, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    pub role: Role,
    pub name: Option<String>,
    pub org: Option<String>,
    pub org_name: Option<String>,
    pub job_role: Option<String>,
    pub job_role_code: Option<String>,
}
