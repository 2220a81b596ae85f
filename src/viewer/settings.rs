//! The viewer's configuration (`CPIS_VIEWER*`, SPEC §10), read with the rest of `Config`.

use crate::error::ConfigError;

/// Whether the viewer is served, how one signs in, and who may frame it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewerConfig {
    /// `CPIS_VIEWER=on|off`: default off, on with `CPIS_SANDBOX=1`.
    pub enabled: bool,
    /// `CPIS_SANDBOX=1`: the sandbox sign-in form (when no issuer is set).
    pub sandbox_sign_in: bool,
    /// `CPIS_VIEWER_OIDC_ISSUER`: OpenID Connect sign-in, through the client `oidc`.
    pub oidc_issuer: Option<String>,
    /// `CPIS_VIEWER_FRAME_ANCESTORS`: space- or comma-separated origins (`https://epr.example`)
    /// that may frame the viewer; none by default (`frame-ancestors 'none'`).
    pub frame_ancestors: Vec<String>,
    /// `CPIS_VIEWER_OIDC_CLIENT_ID` and its authentication: the client of `oidc_issuer`.
    pub oidc: Option<OidcClient>,
    /// `CPIS_VIEWER_LAUNCH_*`: launch from an EPR (`POST /viewer/launch`), when configured.
    pub launch: Option<LaunchConfig>,
    /// `CPIS_VIEWER_SEARCHES_PER_MINUTE`: searches a minute in one session (1 to 10,000);
    /// unset: `limits::SEARCHES_PER_SESSION`.
    pub searches_per_minute: Option<u32>,
}

/// The viewer as an OpenID Connect client of `CPIS_VIEWER_OIDC_ISSUER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// `CPIS_VIEWER_OIDC_CLIENT_ID`.
    pub client_id: String,
    pub auth: ClientAuth,
    /// `CPIS_VIEWER_OIDC_SCOPES` (space- or comma-separated), asked beside `openid profile`.
    pub scopes: Vec<String>,
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `CPIS_VIEWER_OIDC_CLIENT_SECRET`: `client_secret_basic`.
    Secret(String),
    /// `CPIS_VIEWER_OIDC_PRIVATE_KEY_FILE` (PEM; RSA signs RS256, P-256 ES256), with
    /// `CPIS_VIEWER_OIDC_KEY_ID` as the assertion's `kid` if set: `private_key_jwt`.
    PrivateKey { pem: Vec<u8>, kid: Option<String> },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("client_secret_basic (redacted)"),
            ClientAuth::PrivateKey { kid, .. } => write!(f, "private_key_jwt (kid {kid:?})"),
        }
    }
}

/// Where the keys that sign EPR launch tokens come from, and whose tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchConfig {
    pub keys: LaunchKeys,
    /// `CPIS_VIEWER_LAUNCH_ISSUERS` (comma-separated): the accepted `iss`; empty: any.
    pub issuers: Vec<String>,
}

/// `CPIS_VIEWER_LAUNCH_JWKS_URL` or `CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE` (exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchKeys {
    /// A JWKS document (https, or http on loopback), fetched and cached as the API's provider
    /// keys are (`auth::provider_keys`).
    Jwks(url::Url),
    /// One public key, PEM: RSA (RS256) or P-256 (ES256), by its type.
    PublicKey(Vec<u8>),
}

/// How a user signs in, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// `CPIS_SANDBOX=1` and no issuer: the sandbox form.
    Sandbox,
    /// An issuer and its client are set: OpenID Connect.
    Oidc,
    /// An issuer without a client (only a configuration built in code can be so): nobody.
    OidcNotBuilt,
    /// Neither: nobody can sign in.
    None,
}

impl ViewerConfig {
    /// The configuration from the environment (`sandbox`: `CPIS_SANDBOX=1`).
    pub fn from_env(sandbox: bool) -> Result<ViewerConfig, ConfigError> {
        Self::from_vars(sandbox, |name| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        })
    }

    /// The configuration from `var` (a test passes its own).
    pub fn from_vars(
        sandbox: bool,
        var: impl Fn(&'static str) -> Option<String>,
    ) -> Result<ViewerConfig, ConfigError> {
        let enabled = match var("CPIS_VIEWER").as_deref().map(str::trim) {
            None => sandbox,
            Some("on" | "1" | "true" | "yes") => true,
            Some("off" | "0" | "false" | "no") => false,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "CPIS_VIEWER",
                    reason: "must be on or off".into(),
                })
            }
        };
        let frame_ancestors = var("CPIS_VIEWER_FRAME_ANCESTORS")
            .map(|list| origins(&list))
            .transpose()?
            .unwrap_or_default();
        let launch = launch(&var)?;
        let oidc_issuer = var("CPIS_VIEWER_OIDC_ISSUER").map(|i| i.trim().to_string());
        let oidc = match &oidc_issuer {
            Some(_) => Some(oidc_client(&var)?),
            None => None,
        };
        let searches_per_minute = var("CPIS_VIEWER_SEARCHES_PER_MINUTE")
            .map(|n| match n.trim().parse::<u32>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    var: "CPIS_VIEWER_SEARCHES_PER_MINUTE",
                    reason: "a whole number from 1 to 10000".into(),
                }),
            })
            .transpose()?;
        Ok(ViewerConfig {
            enabled,
            sandbox_sign_in: sandbox,
            oidc_issuer,
            oidc,
            frame_ancestors,
            launch,
            searches_per_minute,
        })
    }

    /// The sandbox configuration a test or a sandbox server runs: served, sandbox sign-in.
    pub fn sandbox() -> ViewerConfig {
        ViewerConfig {
            enabled: true,
            sandbox_sign_in: true,
            oidc_issuer: None,
            oidc: None,
            frame_ancestors: Vec::new(),
            launch: None,
            searches_per_minute: None,
        }
    }

    pub fn sign_in(&self) -> SignIn {
        match (&self.oidc_issuer, self.sandbox_sign_in) {
            (Some(_), _) if self.oidc.is_some() => SignIn::Oidc,
            (Some(_), _) => SignIn::OidcNotBuilt,
            (None, true) => SignIn::Sandbox,
            (None, false) => SignIn::None,
        }
    }
}

/// The OpenID Connect client of an issuer: its id, and a secret or a private key (one).
fn oidc_client(var: &impl Fn(&'static str) -> Option<String>) -> Result<OidcClient, ConfigError> {
    let invalid = |var: &'static str, reason: &str| ConfigError::Invalid {
        var,
        reason: reason.to_string(),
    };
    let issuer = var("CPIS_VIEWER_OIDC_ISSUER").unwrap_or_default();
    let url = url::Url::parse(issuer.trim())
        .map_err(|e| invalid("CPIS_VIEWER_OIDC_ISSUER", &e.to_string()))?;
    crate::auth::provider_keys::provider_url(&url)
        .map_err(|e| invalid("CPIS_VIEWER_OIDC_ISSUER", &e))?;
    let client_id = var("CPIS_VIEWER_OIDC_CLIENT_ID")
        .map(|c| c.trim().to_string())
        .ok_or_else(|| invalid("CPIS_VIEWER_OIDC_CLIENT_ID", "required with an issuer"))?;
    let auth = match (
        var("CPIS_VIEWER_OIDC_CLIENT_SECRET"),
        var("CPIS_VIEWER_OIDC_PRIVATE_KEY_FILE"),
    ) {
        (Some(secret), None) => ClientAuth::Secret(secret),
        (None, Some(path)) => {
            let var_name = "CPIS_VIEWER_OIDC_PRIVATE_KEY_FILE";
            let pem = std::fs::read(path.trim()).map_err(|e| invalid(var_name, &e.to_string()))?;
            super::oidc::signing_key(&pem).map_err(|e| invalid(var_name, &e))?;
            ClientAuth::PrivateKey {
                pem,
                kid: var("CPIS_VIEWER_OIDC_KEY_ID").map(|k| k.trim().to_string()),
            }
        }
        _ => {
            return Err(invalid(
                "CPIS_VIEWER_OIDC_CLIENT_SECRET",
                "set it or CPIS_VIEWER_OIDC_PRIVATE_KEY_FILE (one)",
            ))
        }
    };
    let scopes = var("CPIS_VIEWER_OIDC_SCOPES")
        .map(|list| {
            list.split([' ', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "openid" && *s != "profile")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(OidcClient {
        client_id,
        auth,
        scopes,
    })
}

/// The EPR launch's settings, if any: one key source, its file readable and its key usable.
fn launch(
    var: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<LaunchConfig>, ConfigError> {
    let invalid = |var: &'static str, reason: String| ConfigError::Invalid { var, reason };
    let keys = match (
        var("CPIS_VIEWER_LAUNCH_JWKS_URL"),
        var("CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE"),
    ) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "CPIS_VIEWER_LAUNCH_JWKS_URL",
                "set it or CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE, not both".into(),
            ))
        }
        (Some(url), None) => {
            let var = "CPIS_VIEWER_LAUNCH_JWKS_URL";
            let url = url::Url::parse(url.trim()).map_err(|e| invalid(var, e.to_string()))?;
            crate::auth::provider_keys::provider_url(&url).map_err(|e| invalid(var, e))?;
            LaunchKeys::Jwks(url)
        }
        (None, Some(path)) => {
            let var = "CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE";
            let pem = std::fs::read(path.trim()).map_err(|e| invalid(var, e.to_string()))?;
            super::launch::static_key(&pem).map_err(|e| invalid(var, e))?;
            LaunchKeys::PublicKey(pem)
        }
    };
    let issuers = var("CPIS_VIEWER_LAUNCH_ISSUERS")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(LaunchConfig { keys, issuers }))
}

/// Origins as a CSP source list needs them: scheme, host and port only, nothing that could
/// end the directive (the list is written into a header).
fn origins(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let invalid = |reason: &str| ConfigError::Invalid {
                var: "CPIS_VIEWER_FRAME_ANCESTORS",
                reason: format!("{origin:?}: {reason}"),
            };
            // Nothing a CSP source list could read as more than one origin.
            if !origin
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(c))
            {
                return Err(invalid("an origin is http(s)://host[:port]"));
            }
            let url = url::Url::parse(origin).map_err(|_| invalid("not a URL"))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(invalid("an origin is http(s)://host[:port]"));
            }
            let serialised = url.origin().ascii_serialization();
            if serialised != origin.trim_end_matches('/') {
                return Err(invalid(
                    "an origin is http(s)://host[:port], without a path",
                ));
            }
            Ok(serialised)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&'static str, &str)], sandbox: bool) -> Result<ViewerConfig, ConfigError> {
        let vars: Vec<(&'static str, String)> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        ViewerConfig::from_vars(sandbox, move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_viewer_is_off_unless_asked_for_or_in_the_sandbox() {
        assert!(!with(&[], false).map(|c| c.enabled).unwrap_or(true));
        assert!(with(&[], true).map(|c| c.enabled).unwrap_or(false));
        assert!(with(&[("CPIS_VIEWER", "on")], false)
            .map(|c| c.enabled)
            .unwrap_or(false));
        assert!(!with(&[("CPIS_VIEWER", "off")], true)
            .map(|c| c.enabled)
            .unwrap_or(true));
        assert!(with(&[("CPIS_VIEWER", "maybe")], false).is_err());
    }

    #[test]
    fn an_issuer_replaces_the_sandbox_form() {
        let config = with(
            &[
                ("CPIS_VIEWER_OIDC_ISSUER", "https://idp.example"),
                ("CPIS_VIEWER_OIDC_CLIENT_ID", "cpis"),
                ("CPIS_VIEWER_OIDC_CLIENT_SECRET", "s3cret"),
                ("CPIS_VIEWER_OIDC_SCOPES", "nationalrbacaccess, openid"),
            ],
            true,
        );
        assert_eq!(
            config.as_ref().map(|c| c.sign_in()).ok(),
            Some(SignIn::Oidc)
        );
        assert_eq!(
            config.ok().and_then(|c| c.oidc).map(|o| o.scopes),
            Some(vec!["nationalrbacaccess".to_string()])
        );
        for bad in [
            vec![("CPIS_VIEWER_OIDC_ISSUER", "https://idp.example")],
            vec![
                ("CPIS_VIEWER_OIDC_ISSUER", "http://idp.example"),
                ("CPIS_VIEWER_OIDC_CLIENT_ID", "cpis"),
                ("CPIS_VIEWER_OIDC_CLIENT_SECRET", "s3cret"),
            ],
            vec![
                ("CPIS_VIEWER_OIDC_ISSUER", "https://idp.example"),
                ("CPIS_VIEWER_OIDC_CLIENT_ID", "cpis"),
            ],
        ] {
            assert!(with(&bad, true).is_err(), "{bad:?}");
        }
        assert_eq!(
            with(&[], true).map(|c| c.sign_in()).ok(),
            Some(SignIn::Sandbox)
        );
        assert_eq!(
            with(&[], false).map(|c| c.sign_in()).ok(),
            Some(SignIn::None)
        );
    }

    #[test]
    fn a_launch_needs_one_usable_key_source() {
        assert_eq!(with(&[], false).map(|c| c.launch).ok(), Some(None));
        let jwks = with(
            &[
                (
                    "CPIS_VIEWER_LAUNCH_JWKS_URL",
                    "https://epr.example/jwks.json",
                ),
                (
                    "CPIS_VIEWER_LAUNCH_ISSUERS",
                    "https://epr.example, https://b.example",
                ),
            ],
            false,
        );
        let launch = jwks.ok().and_then(|c| c.launch);
        assert_eq!(
            launch.map(|l| l.issuers),
            Some(vec![
                "https://epr.example".to_string(),
                "https://b.example".to_string()
            ])
        );
        for bad in [
            vec![(
                "CPIS_VIEWER_LAUNCH_JWKS_URL",
                "http://epr.example/jwks.json",
            )],
            vec![("CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE", "/nonexistent/key.pem")],
            vec![
                (
                    "CPIS_VIEWER_LAUNCH_JWKS_URL",
                    "https://epr.example/jwks.json",
                ),
                ("CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
            ],
        ] {
            assert!(with(&bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_search_limit_may_be_set() {
        assert_eq!(
            with(&[], false).map(|c| c.searches_per_minute).ok(),
            Some(None)
        );
        assert_eq!(
            with(&[("CPIS_VIEWER_SEARCHES_PER_MINUTE", "600")], false)
                .map(|c| c.searches_per_minute)
                .ok(),
            Some(Some(600))
        );
        for bad in ["0", "10001", "many", "-1"] {
            assert!(
                with(&[("CPIS_VIEWER_SEARCHES_PER_MINUTE", bad)], false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn frame_ancestors_are_bare_origins() {
        let config = with(
            &[(
                "CPIS_VIEWER_FRAME_ANCESTORS",
                "https://epr.example.nhs.uk, http://localhost:3000",
            )],
            false,
        );
        assert_eq!(
            config.map(|c| c.frame_ancestors).ok(),
            Some(vec![
                "https://epr.example.nhs.uk".to_string(),
                "http://localhost:3000".to_string()
            ])
        );
        for bad in [
            "https://epr.example/path",
            "https://epr.example;script-src *",
            "https://epr.example;script-src",
            "javascript:alert(1)",
            "'unsafe-inline'",
        ] {
            assert!(
                with(&[("CPIS_VIEWER_FRAME_ANCESTORS", bad)], false).is_err(),
                "{bad}"
            );
        }
    }
}
