//! Where the data is: the PostgreSQL connection must be encrypted off this machine, and the
//! scheduled backups of the embedded database.

use std::time::Duration;

use super::env::{at_least_one, invalid, var};
use super::ConfigError;

/// The `sslmode`s that encrypt: libpq's `disable`, `allow` and `prefer` (its default) may all
/// talk in clear text.
const TLS_MODES: &[&str] = &["require", "verify-ca", "verify-full"];

/// A PostgreSQL URL's hosts and parameters, as libpq reads them: the hosts of the authority
/// (`postgres://u:p@h1:5432,h2/db`, an IPv6 one in brackets, a Unix socket directory
/// percent-encoded), then `host=` and `hostaddr=` in the query (libpq-style parameters, which
/// override), each possibly a comma-separated list.
fn postgres_hosts_and_params(url: &str) -> (Vec<String>, Vec<(String, String)>) {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let hostlist = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut hosts: Vec<String> = hostlist
        .split(',')
        .map(|h| {
            if let Some(v6) = h.strip_prefix('[') {
                v6.split(']').next().unwrap_or_default().to_string()
            } else {
                decode(h.split(':').next().unwrap_or_default())
            }
        })
        .collect();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let named: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "host" || k == "hostaddr")
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    if params.iter().any(|(k, _)| k == "host") {
        hosts.clear();
    }
    hosts.extend(named);
    (hosts, params)
}

/// A host libpq reaches without leaving the machine: a Unix socket (a directory path, an
/// abstract socket `@name`, or no host at all: the default socket), `localhost` or a loopback
/// address.
fn is_local_host(host: &str) -> bool {
    let host = host.trim();
    host.is_empty()
        || host.starts_with('/')
        || host.starts_with('@')
        || host.eq_ignore_ascii_case("localhost")
        || host.eq_ignore_ascii_case("localhost.")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `CPIS_DATABASE_URL` on PostgreSQL to a host other than this machine must be encrypted:
/// `sslmode` `require`, `verify-ca` or `verify-full` (in the URL, else `PGSSLMODE`). Otherwise
/// the start is refused, unless `allow_plaintext` (`CPIS_DATABASE_ALLOW_PLAINTEXT=1`); then the
/// reason is returned, for a warning at start. `env` reads libpq's own variables (`PGHOST`,
/// `PGSSLMODE`), which apply where the URL is silent.
pub fn database_tls(
    url: &str,
    allow_plaintext: bool,
    env: impl Fn(&'static str) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(None);
    }
    let (mut hosts, params) = postgres_hosts_and_params(url);
    if hosts.iter().all(|h| h.trim().is_empty()) {
        if let Some(pghost) = env("PGHOST") {
            hosts = pghost.split(',').map(str::to_string).collect();
        }
    }
    let remote: Vec<&String> = hosts.iter().filter(|h| !is_local_host(h)).collect();
    if remote.is_empty() {
        return Ok(None);
    }
    let sslmode = params
        .iter()
        .rev()
        .find(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.clone())
        .or_else(|| env("PGSSLMODE"))
        .unwrap_or_else(|| "prefer".into());
    if TLS_MODES.contains(&sslmode.trim()) {
        return Ok(None);
    }
    let hosts = remote
        .iter()
        .map(|h| h.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = format!(
        "PostgreSQL at {hosts} with sslmode={sslmode} may send the data in clear text over the network"
    );
    if allow_plaintext {
        Ok(Some(reason))
    } else {
        Err(invalid(
            "CPIS_DATABASE_URL",
            format!(
                "{reason}: add sslmode=verify-full (with sslrootcert=/path/ca.crt), or verify-ca \
                 or require, to the URL; or set CPIS_DATABASE_ALLOW_PLAINTEXT=1 to accept it"
            ),
        ))
    }
}

/// `CPIS_BACKUP_DIR`, `CPIS_BACKUP_EVERY` and `CPIS_BACKUP_KEEP`: scheduled backups, for the
/// embedded database only (PostgreSQL has its own tools); `_EVERY` or `_KEEP` without a
/// directory is a mistake, said at start.
pub(super) fn backup_schedule(
    database_url: &str,
) -> Result<Option<crate::backup::Schedule>, ConfigError> {
    let Some(dir) = var("CPIS_BACKUP_DIR") else {
        for name in ["CPIS_BACKUP_EVERY", "CPIS_BACKUP_KEEP"] {
            if var(name).is_some() {
                return Err(invalid(
                    name,
                    "set CPIS_BACKUP_DIR too (where backups are written)",
                ));
            }
        }
        return Ok(None);
    };
    if !database_url.starts_with("sqlite://") {
        return Err(invalid(
            "CPIS_BACKUP_DIR",
            "scheduled backups are for the embedded SQLite database; back PostgreSQL up with \
             pg_basebackup (with WAL archiving) or pg_dump (README, \"Backups\")",
        ));
    }
    let every = match var("CPIS_BACKUP_EVERY") {
        None => Duration::from_secs(24 * 60 * 60),
        Some(every) => crate::backup::schedule::parse_every(&every)
            .map_err(|e| invalid("CPIS_BACKUP_EVERY", e))?,
    };
    let keep = usize::try_from(at_least_one("CPIS_BACKUP_KEEP", 14)?).unwrap_or(usize::MAX);
    Ok(Some(crate::backup::Schedule {
        dir: dir.trim().into(),
        every,
        keep,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &'static str) -> Option<String> {
        None
    }

    #[test]
    fn a_remote_postgresql_without_tls_is_refused() {
        for url in [
            "postgres://cpis:pw@db.example.org/cpis",
            "postgres://cpis:pw@db.example.org:5432/cpis?sslmode=prefer",
            "postgresql://cpis@10.0.0.5/cpis?sslmode=disable",
            "postgres://cpis@10.0.0.5/cpis?sslmode=allow",
            "postgres://cpis@[2001:db8::5]:5432/cpis",
            "postgres://cpis@localhost,db.example.org/cpis",
            "postgres:///cpis?host=db.example.org",
            "postgres://cpis@localhost/cpis?host=db.example.org&sslmode=prefer",
            "postgres://cpis@localhost/cpis?hostaddr=192.0.2.7",
            "postgres://cpis@%2Fvar%2Frun%2Fpostgresql/cpis?host=/tmp,db.example.org",
            "postgres://cpis@db.example.org/cpis?sslmode=require&sslmode=prefer",
        ] {
            let err = database_tls(url, false, no_env).expect_err(url).to_string();
            assert!(err.contains("CPIS_DATABASE_URL"), "{url}: {err}");
            assert!(err.contains("sslmode"), "{url}: {err}");
            assert!(
                err.contains("CPIS_DATABASE_ALLOW_PLAINTEXT=1"),
                "{url}: {err}"
            );
            assert!(!err.contains("pw"), "{url}: {err}");
            let allowed = database_tls(url, true, no_env).expect(url);
            assert!(allowed.is_some_and(|w| w.contains("clear text")), "{url}");
        }
    }

    #[test]
    fn tls_loopback_and_unix_sockets_are_accepted() {
        for url in [
            "postgres://cpis:pw@db.example.org/cpis?sslmode=verify-full&sslrootcert=/ca.crt",
            "postgres://cpis@db.example.org/cpis?sslmode=verify-ca",
            "postgresql://cpis@10.0.0.5:5432/cpis?sslmode=require",
            "postgres://cpis@localhost/cpis",
            "postgres://cpis@LOCALHOST:5433/cpis?sslmode=disable",
            "postgres://cpis@127.0.0.1/cpis",
            "postgres://cpis@127.9.8.7/cpis?sslmode=prefer",
            "postgres://cpis@[::1]:5432/cpis",
            "postgres:///cpis",
            "postgres://%2Fvar%2Frun%2Fpostgresql/cpis",
            "postgres:///cpis?host=/var/run/postgresql",
            "postgres://cpis@db.example.org/cpis?host=/var/run/postgresql",
            "postgres://cpis@localhost,127.0.0.2/cpis",
            "sqlite://cpis.db",
        ] {
            assert_eq!(database_tls(url, false, no_env).expect(url), None, "{url}");
        }
    }

    #[test]
    fn libpq_variables_apply_where_the_url_is_silent() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &'static str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let remote_socketless = "postgres:///cpis";
        assert!(database_tls(
            remote_socketless,
            false,
            env(&[("PGHOST", "db.example.org")])
        )
        .is_err());
        assert_eq!(
            database_tls(
                remote_socketless,
                false,
                env(&[("PGHOST", "db.example.org"), ("PGSSLMODE", "verify-full")])
            )
            .unwrap(),
            None
        );
        assert_eq!(
            database_tls(
                "postgres://db.example.org/cpis",
                false,
                env(&[("PGSSLMODE", "require")])
            )
            .unwrap(),
            None
        );
        assert!(database_tls(
            "postgres://db.example.org/cpis?sslmode=prefer",
            false,
            env(&[("PGSSLMODE", "require")])
        )
        .is_err());
    }
}
