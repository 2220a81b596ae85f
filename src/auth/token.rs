//! Issuing tokens: `cpis token` and the tests sign the claims this server reads by default
//! (SPEC §2), with the shared secret or a private key.

use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::jwt::JwtAlgorithm;
use super::policy::Role;

/// The claims `cpis token` writes (SPEC §2), which the default `ClaimMap` reads.
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
        JwtAlgorithm::RS256 | JwtAlgorithm::PS256 => EncodingKey::from_rsa_pem(signing_key)?,
        JwtAlgorithm::ES256 => EncodingKey::from_ec_pem(signing_key)?,
    };
    jsonwebtoken::encode(&Header::new(alg.jsonwebtoken()), &claims, &key)
}
