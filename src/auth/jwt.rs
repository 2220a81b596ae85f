//! JWT verification and issuing. The algorithm is pinned by configuration: a token whose header
//! names any other algorithm (or `none`) is rejected before its signature is looked at.

use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::policy::Role;

/// Leeway for `exp`/`nbf`, in seconds (SPEC §2: at most 60).
pub const LEEWAY_SECONDS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

impl FromStr for JwtAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::HS256),
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            other => Err(format!(
                "unsupported algorithm {other:?} (HS256, RS256 or ES256)"
            )),
        }
    }
}

impl JwtAlgorithm {
    fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::RS256 => Algorithm::RS256,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

/// The configured verification key.
#[derive(Clone)]
pub enum KeyConfig {
    Secret(String),
    PublicKey { alg: JwtAlgorithm, pem: Vec<u8> },
}

impl KeyConfig {
    pub fn algorithm(&self) -> JwtAlgorithm {
        match self {
            KeyConfig::Secret(_) => JwtAlgorithm::HS256,
            KeyConfig::PublicKey { alg, .. } => *alg,
        }
    }
    /// A description safe to log (never the key material).
    pub fn describe(&self) -> String {
        match self {
            KeyConfig::Secret(_) => "HS256 shared secret (redacted)".into(),
            KeyConfig::PublicKey { alg, .. } => format!("{alg:?} public key"),
        }
    }
}

/// The claims this server reads (SPEC §2). `iss`, `aud`, `exp`, `nbf` are checked by
/// `jsonwebtoken` itself from the raw token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_role_code: Option<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// `aud`: one audience or several (RFC 7519 §4.1.3); identity providers send either.
/// `jsonwebtoken` checks that the configured audience is among them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

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

/// Verifies bearer tokens against the configured key, algorithm, issuer and audience.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(
        key: &KeyConfig,
        issuer: Option<&str>,
        audience: &str,
    ) -> Result<Verifier, jsonwebtoken::errors::Error> {
        let alg = key.algorithm();
        let decoding = match key {
            KeyConfig::Secret(s) => DecodingKey::from_secret(s.as_bytes()),
            KeyConfig::PublicKey {
                alg: JwtAlgorithm::RS256,
                pem,
            } => DecodingKey::from_rsa_pem(pem)?,
            KeyConfig::PublicKey { pem, .. } => DecodingKey::from_ec_pem(pem)?,
        };
        let mut validation = Validation::new(alg.jsonwebtoken());
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        match issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.set_required_spec_claims(&["exp", "aud", "iss"]);
            }
            None => validation.set_required_spec_claims(&["exp", "aud"]),
        }
        Ok(Verifier {
            key: decoding,
            validation,
        })
    }

    /// Verifies the token and the claims its role needs. The error text is safe to return to
    /// the caller: it never contains the token.
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        identity_from_claims(data.claims)
    }
}

fn identity_from_claims(c: Claims) -> Result<Identity, String> {
    let role: Role = c.role.parse()?;
    let nonempty = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if c.sub.trim().is_empty() {
        return Err("token has an empty sub claim".into());
    }
    if matches!(role, Role::HealthCare | Role::SocialCare) && !nonempty(&c.org) {
        return Err(format!("a {} token needs an org claim", role.as_str()));
    }
    if role == Role::HealthCare && !nonempty(&c.name) {
        return Err("a health-care token needs a name claim".into());
    }
    Ok(Identity {
        sub: c.sub,
        role,
        name: c.name,
        org: c.org.map(|o| o.trim().to_ascii_uppercase()),
        org_name: c.org_name,
        job_role: c.job_role,
        job_role_code: c.job_role_code,
    })
}

/// What to put in a token minted by `cpis token` or by the tests.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub sub: String,
    pub role: Role,
    pub org: Option<String>,
    pub name: Option<String>,
    pub org_name: Option<String>,
    pub job_role: Option<String>,
    pub job_role_code: Option<String>,
    pub ttl_seconds: i64,
}

/// Signs a token. HS256 signs with the shared secret; RS256/ES256 need the private key PEM.
pub fn issue(
    req: &TokenRequest,
    alg: JwtAlgorithm,
    signing_key: &[u8],
    issuer: Option<&str>,
    audience: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: req.sub.clone(),
        role: req.role.as_str().to_string(),
        name: req.name.clone(),
        org: req.org.clone(),
        org_name: req.org_name.clone(),
        job_role: req.job_role.clone(),
        job_role_code: req.job_role_code.clone(),
        exp: now + req.ttl_seconds,
        nbf: Some(now - 1),
        iat: Some(now),
        iss: issuer.map(str::to_string),
        aud: Some(Audience::One(audience.to_string())),
    };
    let key = match alg {
        JwtAlgorithm::HS256 => EncodingKey::from_secret(signing_key),
        JwtAlgorithm::RS256 => EncodingKey::from_rsa_pem(signing_key)?,
        JwtAlgorithm::ES256 => EncodingKey::from_ec_pem(signing_key)?,
    };
    jsonwebtoken::encode(&Header::new(alg.jsonwebtoken()), &claims, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "unit-test-secret";

    fn request(role: Role) -> TokenRequest {
        TokenRequest {
            sub: "user-1".into(),
            role,
            org: Some("RJ1".into()),
            name: Some("Dr Jane Smith".into()),
            org_name: None,
            job_role: Some("Staff Nurse".into()),
            job_role_code: None,
            ttl_seconds: 300,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(&KeyConfig::Secret(SECRET.into()), Some("iss-1"), "cpis").unwrap()
    }

    fn sign(req: &TokenRequest, iss: Option<&str>, aud: &str) -> String {
        issue(req, JwtAlgorithm::HS256, SECRET.as_bytes(), iss, aud).unwrap()
    }

    #[test]
    fn a_well_formed_token_verifies() {
        let id = verifier()
            .verify(&sign(&request(Role::HealthCare), Some("iss-1"), "cpis"))
            .unwrap();
        assert_eq!(id.role, Role::HealthCare);
        assert_eq!(id.org.as_deref(), Some("RJ1"));
    }

    #[test]
    fn wrong_issuer_audience_or_expiry_is_rejected() {
        let v = verifier();
        assert!(v
            .verify(&sign(&request(Role::HealthCare), Some("other"), "cpis"))
            .is_err());
        assert!(v
            .verify(&sign(&request(Role::HealthCare), Some("iss-1"), "other"))
            .is_err());
        let mut expired = request(Role::HealthCare);
        expired.ttl_seconds = -(LEEWAY_SECONDS as i64) - 5;
        assert!(v.verify(&sign(&expired, Some("iss-1"), "cpis")).is_err());
    }

    #[test]
    fn health_care_token_without_name_is_rejected() {
        let mut req = request(Role::HealthCare);
        req.name = None;
        assert!(verifier()
            .verify(&sign(&req, Some("iss-1"), "cpis"))
            .is_err());
    }

    #[test]
    fn unsigned_alg_none_token_is_rejected() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = chrono::Utc::now().timestamp() + 300;
        let body = b64(format!(
            r#"{{"sub":"x","role":"operations","exp":{exp},"iss":"iss-1","aud":"cpis"}}"#
        )
        .as_bytes());
        assert!(verifier().verify(&format!("{header}.{body}.")).is_err());
    }
}
