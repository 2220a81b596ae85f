//! A `CPIS_*` setting that is missing or cannot be used: `cpis` refuses to start and says which.
//! Here, below every room that reads its own settings (the viewer's, the backups'), so each can
//! name the variable at fault without depending on `config`, which gathers them all.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error(
        "no JWT key configured: set CPIS_JWT_SECRET (HS256), CPIS_JWT_PUBLIC_KEY_FILE with \
         CPIS_JWT_ALG=RS256|PS256|ES256, CPIS_JWT_JWKS_URL, or CPIS_JWT_ISSUER alone (OpenID \
         Connect discovery); or CPIS_SANDBOX=1 for the development secret"
    )]
    NoKey,
}
