//! Where a deployment's identity provider puts each claim the server needs (SPEC §2).
//!
//! Each claim is found by a *claim path*: a top-level claim name (`org`,
//! `https://example.org/claims/org`), or an RFC 9535 JSONPath when it starts with `$`
//! (`$.realm_access.roles`, or, for NHS CIS2, the role the user selected at login:
//! `$.nhsid_nrbac_roles[?@.person_roleid == $.selected_roleid].org_code`). The role's values
//! may be mapped from the provider's names to ours (`CPIS_JWT_ROLE_MAP`). The default map reads
//! today's claim names, so a token minted by `cpis token` needs no configuration.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use serde_json_path::JsonPath;

use super::identity::Identity;
use super::policy::Role;

/// Where one claim is found.
#[derive(Debug, Clone)]
pub enum ClaimPath {
    /// A top-level claim, by its exact name.
    Name(String),
    /// An RFC 9535 JSONPath over the token's claims.
    Path(JsonPath),
}

impl ClaimPath {
    pub fn parse(spec: &str) -> Result<ClaimPath, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("a claim path cannot be empty".into());
        }
        if spec.starts_with('$') {
            JsonPath::parse(spec)
                .map(ClaimPath::Path)
                .map_err(|e| format!("{spec:?} is not a JSONPath: {e}"))
        } else {
            Ok(ClaimPath::Name(spec.to_string()))
        }
    }

    fn name(name: &str) -> ClaimPath {
        ClaimPath::Name(name.to_string())
    }

    /// The non-empty strings the path finds; an array found is read element by element.
    fn strings(&self, claims: &Value) -> Vec<String> {
        let found: Vec<&Value> = match self {
            ClaimPath::Name(name) => claims.get(name).into_iter().collect(),
            ClaimPath::Path(path) => path.query(claims).all(),
        };
        let mut out = Vec::new();
        for value in found {
            match value {
                Value::Array(items) => out.extend(items.iter().filter_map(text)),
                other => out.extend(text(other)),
            }
        }
        out
    }

    /// The first string found, if any.
    fn first(&self, claims: &Value) -> Option<String> {
        self.strings(claims).into_iter().next()
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Where each claim is, and how the provider's role names map to ours.
#[derive(Debug, Clone)]
pub struct ClaimMap {
    pub role: ClaimPath,
    pub org: ClaimPath,
    pub name: ClaimPath,
    pub org_name: ClaimPath,
    pub job_role: ClaimPath,
    pub job_role_code: ClaimPath,
    /// The provider's role values and the role each stands for; `None`: the values are our
    /// role names themselves.
    pub role_values: Option<HashMap<String, Role>>,
}

impl Default for ClaimMap {
    fn default() -> ClaimMap {
        ClaimMap {
            role: ClaimPath::name("role"),
            org: ClaimPath::name("org"),
            name: ClaimPath::name("name"),
            org_name: ClaimPath::name("org_name"),
            job_role: ClaimPath::name("job_role"),
            job_role_code: ClaimPath::name("job_role_code"),
            role_values: None,
        }
    }
}

/// `CPIS_JWT_ROLE_MAP`: `provider-value=our-role` pairs, comma-separated. The value is split at
/// its last `=`, so provider values may hold `:` (CIS2's `S8000:G8000:R8001`).
pub fn parse_role_map(spec: &str) -> Result<HashMap<String, Role>, String> {
    let mut map = HashMap::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (value, role) = pair
            .rsplit_once('=')
            .ok_or_else(|| format!("{pair:?} is not provider-value=role"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{pair:?} has no provider value"));
        }
        map.insert(value.to_string(), role.trim().parse::<Role>()?);
    }
    if map.is_empty() {
        return Err("the role map is empty".into());
    }
    Ok(map)
}

impl ClaimMap {
    /// The identity a verified token's claims assert, or why they do not make one.
    pub fn identity(&self, claims: &Value) -> Result<Identity, String> {
        let sub = claims
            .get("sub")
            .and_then(text)
            .ok_or("token has no sub claim")?;
        let role = self.role(claims)?;
        let org = self.org.first(claims).map(|o| o.to_ascii_uppercase());
        let name = self.name.first(claims);
        if role.needs_org() && org.is_none() {
            return Err(format!("a {} token needs an org claim", role.as_str()));
        }
        if role.needs_name() && name.is_none() {
            return Err(format!("a {} token needs a name claim", role.as_str()));
        }
        Ok(Identity {
            sub,
            role,
            name,
            org,
            org_name: self.org_name.first(claims),
            job_role: self.job_role.first(claims),
            job_role_code: self.job_role_code.first(claims),
        })
    }

    /// Exactly one of our roles: values that map to none are ignored (a provider grants many
    /// roles for other services); values that map to two different roles are refused, since
    /// the server cannot tell which the user is acting in.
    fn role(&self, claims: &Value) -> Result<Role, String> {
        let values = self.role.strings(claims);
        let roles: BTreeSet<&'static str> = values
            .iter()
            .filter_map(|v| match &self.role_values {
                Some(map) => map.get(v).copied(),
                None => v.parse::<Role>().ok(),
            })
            .map(Role::as_str)
            .collect();
        let mut roles = roles.into_iter();
        match (roles.next(), roles.next()) {
            (Some(role), None) => role.parse(),
            (Some(_), Some(_)) => {
                Err("token maps to more than one role; it must map to exactly one".into())
            }
            (None, _) if values.is_empty() => Err("token has no role claim".into()),
            (None, _) => Err(
                "token's role claim names no role of this service (social-care, health-care or operations)"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(spec: &str) -> ClaimPath {
        ClaimPath::parse(spec).unwrap()
    }

    #[test]
    fn the_default_map_reads_our_own_claim_names() {
        let id = ClaimMap::default()
            .identity(&json!({"sub": "u1", "role": "health-care", "org": "rj1",
                "name": "Dr A", "job_role": "Nurse", "job_role_code": "R8001"}))
            .unwrap();
        assert_eq!(id.role, Role::HealthCare);
        assert_eq!(id.org.as_deref(), Some("RJ1"));
        assert_eq!(id.name.as_deref(), Some("Dr A"));
        assert_eq!(id.job_role_code.as_deref(), Some("R8001"));
    }

    #[test]
    fn a_claim_name_is_read_verbatim_even_with_dots_and_slashes() {
        let map = ClaimMap {
            org: path("https://example.org/claims/org.code"),
            ..ClaimMap::default()
        };
        let id = map
            .identity(&json!({"sub": "u", "role": "social-care",
                "https://example.org/claims/org.code": "E09000033"}))
            .unwrap();
        assert_eq!(id.org.as_deref(), Some("E09000033"));
    }

    #[test]
    fn a_nested_path_and_a_role_map_read_a_keycloak_token() {
        let map = ClaimMap {
            role: path("$.realm_access.roles"),
            org: path("$.cpis.org"),
            name: path("name"),
            role_values: Some(parse_role_map("cpis-clinician=health-care").unwrap()),
            ..ClaimMap::default()
        };
        let token = json!({"sub": "kc-1", "name": "Dr B",
            "realm_access": {"roles": ["offline_access", "cpis-clinician", "uma_authorization"]},
            "cpis": {"org": "RJ1"}});
        let id = map.identity(&token).unwrap();
        assert_eq!(id.role, Role::HealthCare);
        assert_eq!(id.org.as_deref(), Some("RJ1"));
    }

    #[test]
    fn a_filtered_path_reads_the_role_a_cis2_user_selected() {
        let map = ClaimMap {
            role: path("$.nhsid_nrbac_roles[?@.person_roleid == $.selected_roleid].role_code"),
            org: path("$.nhsid_nrbac_roles[?@.person_roleid == $.selected_roleid].org_code"),
            job_role: path("$.nhsid_nrbac_roles[?@.person_roleid == $.selected_roleid].role_name"),
            role_values: Some(
                parse_role_map("S8000:G8000:R8001=health-care,S8000:G8000:R8008=health-care")
                    .unwrap(),
            ),
            ..ClaimMap::default()
        };
        let token = json!({"sub": "910000000001", "name": "Jane Nurse",
        "selected_roleid": "555021935107",
        "nhsid_nrbac_roles": [
            {"person_roleid": "555021935106", "org_code": "RYE", "role_code": "S0080:G0450:R5080", "role_name": "Clerical"},
            {"person_roleid": "555021935107", "org_code": "RJ1", "role_code": "S8000:G8000:R8001", "role_name": "Nurse Access Role"}
        ]});
        let id = map.identity(&token).unwrap();
        assert_eq!(id.role, Role::HealthCare);
        assert_eq!(id.org.as_deref(), Some("RJ1"));
        assert_eq!(id.job_role.as_deref(), Some("Nurse Access Role"));
    }

    #[test]
    fn roles_mapping_to_two_of_ours_are_refused_and_unmapped_ones_ignored() {
        let map = ClaimMap {
            role: path("$.roles"),
            role_values: Some(parse_role_map("a=operations,b=social-care").unwrap()),
            ..ClaimMap::default()
        };
        let err = map
            .identity(&json!({"sub": "u", "org": "X", "roles": ["a", "b"]}))
            .unwrap_err();
        assert!(err.contains("more than one role"), "{err}");
        let err = map
            .identity(&json!({"sub": "u", "roles": ["c"]}))
            .unwrap_err();
        assert!(err.contains("names no role"), "{err}");
        assert!(map
            .identity(&json!({"sub": "u", "roles": ["a", "c"]}))
            .is_ok());
    }

    #[test]
    fn without_a_map_an_unknown_role_and_missing_claims_are_refused() {
        let map = ClaimMap::default();
        assert!(map.identity(&json!({"sub": "u", "role": "admin"})).is_err());
        assert!(map.identity(&json!({"role": "operations"})).is_err());
        assert!(map
            .identity(&json!({"sub": "u", "role": "social-care"}))
            .unwrap_err()
            .contains("org claim"));
        assert!(map
            .identity(&json!({"sub": "u", "role": "health-care", "org": "RJ1", "name": " "}))
            .unwrap_err()
            .contains("name claim"));
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(ClaimPath::parse("$.a[?").is_err());
        assert!(ClaimPath::parse(" ").is_err());
        assert!(parse_role_map("x=admin").is_err());
        assert!(parse_role_map("novalue").is_err());
        assert!(parse_role_map(" , ").is_err());
    }
}
