//! How tokens are verified: the one key source (a shared secret, a public key file, an
//! identity provider's JWKS or OpenID Connect discovery), its algorithms and the claim names.

use std::time::Duration;

use super::env::{invalid, parsed, var};
use super::{ConfigError, MIN_SECRET_BYTES};
use crate::auth::claims::{parse_role_map, ClaimMap, ClaimPath};
use crate::auth::jwt::{JwtAlgorithm, KeyConfig};
use crate::auth::provider_keys::{provider_url, KeyRefresh, KeySource};

/// An identity provider's keys (`CPIS_JWT_JWKS_URL`) sign the tokens of every client and realm
/// it serves: without `CPIS_JWT_ISSUER` the issuer would not be checked, so the start is
/// refused. (OIDC discovery starts from the issuer, so always has it.)
pub fn require_issuer(key: Option<&KeyConfig>, issuer: Option<&str>) -> Result<(), ConfigError> {
    match (key, issuer.map(str::trim).filter(|i| !i.is_empty())) {
        (Some(key), None) if key.is_provider() => Err(invalid(
            "CPIS_JWT_ISSUER",
            "CPIS_JWT_JWKS_URL needs CPIS_JWT_ISSUER too (the provider's `iss`): without it a \
             token signed with the provider's keys would be accepted whoever it was issued by",
        )),
        _ => Ok(()),
    }
}

/// `CPIS_JWT_ALG`: one algorithm, or for a provider's keys a comma-separated list.
fn algorithms() -> Result<Vec<JwtAlgorithm>, ConfigError> {
    var("CPIS_JWT_ALG")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().map_err(|e: String| invalid("CPIS_JWT_ALG", e)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The one key source configured: a shared secret, a public key file, a JWKS URL, or (none of
/// those, an issuer set) OpenID Connect discovery from the issuer.
pub(super) fn jwt_key() -> Result<Option<KeyConfig>, ConfigError> {
    let algs = algorithms()?;
    let Some((name, value)) = key_source()? else {
        return Ok(None);
    };
    let key = match name {
        "CPIS_JWT_SECRET" => secret_key(&algs, value)?,
        "CPIS_JWT_PUBLIC_KEY_FILE" => public_key_file(&algs, &value)?,
        _ => provider_key(name, value, algs)?,
    };
    Ok(Some(key))
}

/// Which key variable is set, and its value (`discovery` and the issuer when only
/// `CPIS_JWT_ISSUER` is); more than one is refused.
fn key_source() -> Result<Option<(&'static str, String)>, ConfigError> {
    let sources = [
        var("CPIS_JWT_SECRET").map(|s| ("CPIS_JWT_SECRET", s)),
        var("CPIS_JWT_PUBLIC_KEY_FILE").map(|s| ("CPIS_JWT_PUBLIC_KEY_FILE", s)),
        var("CPIS_JWT_JWKS_URL").map(|s| ("CPIS_JWT_JWKS_URL", s)),
    ];
    let mut set = sources.into_iter().flatten();
    match (set.next(), set.next()) {
        (Some(_), Some(_)) => Err(invalid(
            "CPIS_JWT_SECRET",
            "set only one of CPIS_JWT_SECRET, CPIS_JWT_PUBLIC_KEY_FILE and CPIS_JWT_JWKS_URL",
        )),
        (Some(one), None) => Ok(Some(one)),
        (None, _) => Ok(var("CPIS_JWT_ISSUER").map(|issuer| ("discovery", issuer))),
    }
}

/// The one algorithm a static key is used with: `CPIS_JWT_ALG` if set (one of `allowed`),
/// else `default`; `why` says what is accepted.
fn one_alg(
    algs: &[JwtAlgorithm],
    allowed: &[JwtAlgorithm],
    default: Option<JwtAlgorithm>,
    why: &str,
) -> Result<JwtAlgorithm, ConfigError> {
    match algs {
        [] => default.ok_or_else(|| invalid("CPIS_JWT_ALG", why)),
        [a] if allowed.contains(a) => Ok(*a),
        _ => Err(invalid("CPIS_JWT_ALG", why)),
    }
}

/// `CPIS_JWT_SECRET`: HS256 only, and at least `MIN_SECRET_BYTES` long.
fn secret_key(algs: &[JwtAlgorithm], value: String) -> Result<KeyConfig, ConfigError> {
    one_alg(
        algs,
        &[JwtAlgorithm::HS256],
        Some(JwtAlgorithm::HS256),
        "a shared secret is used with HS256 only",
    )?;
    if value.len() < MIN_SECRET_BYTES {
        return Err(invalid("CPIS_JWT_SECRET", format!(
            "an HS256 secret must be at least {MIN_SECRET_BYTES} bytes (this one has {}): generate one with `openssl rand -base64 48`",
            value.len()
        )));
    }
    Ok(KeyConfig::Secret(value))
}

/// `CPIS_JWT_PUBLIC_KEY_FILE`: a PEM file read now, with the one public-key algorithm named.
fn public_key_file(algs: &[JwtAlgorithm], path: &str) -> Result<KeyConfig, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        invalid(
            "CPIS_JWT_PUBLIC_KEY_FILE",
            format!("cannot read {path}: {e}"),
        )
    })?;
    let alg = one_alg(
        algs,
        &[
            JwtAlgorithm::RS256,
            JwtAlgorithm::PS256,
            JwtAlgorithm::ES256,
        ],
        None,
        "a public key needs CPIS_JWT_ALG=RS256, PS256 or ES256",
    )?;
    Ok(KeyConfig::PublicKey { alg, pem })
}

/// An identity provider's keys: from `CPIS_JWT_JWKS_URL`, or by discovery from the issuer
/// (`name` is `discovery`); public-key algorithms only (RS256 unless `CPIS_JWT_ALG` says),
/// refreshed as `CPIS_JWT_JWKS_REFRESH_SECONDS` and `_MIN_INTERVAL_SECONDS` say.
fn provider_key(
    name: &'static str,
    value: String,
    algs: Vec<JwtAlgorithm>,
) -> Result<KeyConfig, ConfigError> {
    let (source, var_name) = if name == "discovery" {
        // Exactly as configured: the discovery document must name this issuer (some
        // providers' end in `/`), and tokens are checked against it.
        (KeySource::Discovery { issuer: value }, "CPIS_JWT_ISSUER")
    } else {
        let url = url::Url::parse(&value)
            .map_err(|e| invalid("CPIS_JWT_JWKS_URL", format!("{value:?}: {e}")))?;
        (KeySource::Jwks(url), name)
    };
    source
        .first_url()
        .and_then(|url| provider_url(&url))
        .map_err(|e| invalid(var_name, e))?;
    if algs.contains(&JwtAlgorithm::HS256) {
        return Err(invalid(
            "CPIS_JWT_ALG",
            "an identity provider's keys are public keys: RS256, PS256 or ES256",
        ));
    }
    Ok(KeyConfig::Provider {
        source,
        algorithms: if algs.is_empty() {
            vec![JwtAlgorithm::RS256]
        } else {
            algs
        },
        refresh: KeyRefresh {
            max_age: Duration::from_secs(parsed("CPIS_JWT_JWKS_REFRESH_SECONDS", 300)?),
            min_interval: Duration::from_secs(parsed("CPIS_JWT_JWKS_MIN_INTERVAL_SECONDS", 10)?),
            ..KeyRefresh::default()
        },
    })
}

/// `CPIS_JWT_CLAIM_{ROLE,ORG,NAME,ORG_NAME,JOB_ROLE,JOB_ROLE_CODE}` (a claim name, or a JSONPath
/// starting with `$`) and `CPIS_JWT_ROLE_MAP` (`provider-value=role,…`).
pub(super) fn claim_map() -> Result<ClaimMap, ConfigError> {
    let path = |name: &'static str, default: ClaimPath| -> Result<ClaimPath, ConfigError> {
        match var(name) {
            None => Ok(default),
            Some(spec) => ClaimPath::parse(&spec).map_err(|e| invalid(name, e)),
        }
    };
    let d = ClaimMap::default();
    Ok(ClaimMap {
        role: path("CPIS_JWT_CLAIM_ROLE", d.role)?,
        org: path("CPIS_JWT_CLAIM_ORG", d.org)?,
        name: path("CPIS_JWT_CLAIM_NAME", d.name)?,
        org_name: path("CPIS_JWT_CLAIM_ORG_NAME", d.org_name)?,
        job_role: path("CPIS_JWT_CLAIM_JOB_ROLE", d.job_role)?,
        job_role_code: path("CPIS_JWT_CLAIM_JOB_ROLE_CODE", d.job_role_code)?,
        role_values: var("CPIS_JWT_ROLE_MAP")
            .map(|spec| parse_role_map(&spec).map_err(|e| invalid("CPIS_JWT_ROLE_MAP", e)))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_key_without_an_issuer_is_not_verified() {
        let key = KeyConfig::Provider {
            source: KeySource::Jwks(url::Url::parse("https://idp.example.org/jwks").unwrap()),
            algorithms: vec![JwtAlgorithm::RS256],
            refresh: KeyRefresh::default(),
        };
        assert!(key.is_provider());
        let refused = require_issuer(Some(&key), None).unwrap_err().to_string();
        assert!(refused.contains("CPIS_JWT_ISSUER"), "{refused}");
        assert!(require_issuer(Some(&key), Some("  ")).is_err());
        assert!(require_issuer(Some(&key), Some("https://idp.example.org")).is_ok());
        let secret = KeyConfig::Secret("s".repeat(MIN_SECRET_BYTES));
        assert!(require_issuer(Some(&secret), None).is_ok());
        assert!(require_issuer(None, None).is_ok());
        let err = crate::auth::jwt::Verifier::new(&key, None, "cpis")
            .err()
            .unwrap();
        assert!(err.contains("CPIS_JWT_ISSUER"), "{err}");
        assert!(
            crate::auth::jwt::Verifier::new(&key, Some("https://idp.example.org"), "cpis").is_ok()
        );
    }
}
