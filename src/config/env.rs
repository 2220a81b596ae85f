//! Reading one `CPIS_*` variable: unset or blank is the default, anything else must parse.

use std::fmt;
use std::time::Duration;

use super::ConfigError;

/// The variable's value, when it is set and not blank.
pub(super) fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A count that must be 1 or more.
pub(super) fn at_least_one(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match parsed(name, default)? {
        0 => Err(ConfigError::Invalid {
            var: name,
            reason: "must be at least 1".into(),
        }),
        n => Ok(n),
    }
}

pub(super) fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            var: name,
            reason: format!("{e}"),
        }),
    }
}

/// `CPIS_CORS_ORIGINS`: each an origin as browsers send it (`scheme://host[:port]`, no path).
pub(super) fn cors_origins(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| match url::Url::parse(origin) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.origin().ascii_serialization() == origin =>
            {
                Ok(origin.to_string())
            }
            _ => Err(ConfigError::Invalid {
                var: "CPIS_CORS_ORIGINS",
                reason: format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
            }),
        })
        .collect()
}

pub(super) fn millis(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    parsed(name, default).map(Duration::from_millis)
}

pub(super) fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

/// A switch: `on` or `off` (also `1`/`0`, `true`/`false`, `yes`/`no`); unset, `default`.
pub(super) fn on_off(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("on" | "1" | "true" | "yes") => Ok(true),
        Some("off" | "0" | "false" | "no") => Ok(false),
        Some(other) => Err(invalid(name, format!("{other:?}: use on or off"))),
    }
}
