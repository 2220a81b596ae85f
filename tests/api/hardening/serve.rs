//! `cpis serve` refuses to start where it could not be safe: a remote PostgreSQL without
//! TLS, a JWKS URL without an issuer.

use super::*;

#[tokio::test]
async fn cpis_serve_refuses_a_remote_postgresql_without_tls() {
    let config = Config::for_tests("sqlite://unused.db".into());
    for url in [
        "postgres://cpis:pw@192.0.2.10:5432/cpis?connect_timeout=1",
        "postgres://cpis:pw@192.0.2.10:5432/cpis?sslmode=prefer&connect_timeout=1",
        "postgresql:///cpis?host=192.0.2.10&sslmode=disable&connect_timeout=1",
    ] {
        let mut serve = Serve::start(&config, &[("CPIS_DATABASE_URL", url)]);
        let code = serve.exit_within(Duration::from_secs(15)).await;
        let log = serve.log();
        assert_eq!(code, Some(2), "{url}: {log}");
        assert!(log.contains("sslmode"), "{url}: {log}");
        assert!(
            log.contains("CPIS_DATABASE_ALLOW_PLAINTEXT"),
            "{url}: {log}"
        );
        assert!(!log.contains("pw@"), "the password is not shown: {log}");
    }
}

// 2. Endpoints that embed an internal IPv4 address, and reserved ranges.

#[tokio::test]
async fn cpis_serve_refuses_a_jwks_url_without_an_issuer() {
    let mut config = Config::for_tests("sqlite://unused.db".into());
    config.jwt_issuer = None;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/cpis.db", dir.path().display());
    let mut serve = Serve::start(
        &config,
        &[
            ("CPIS_DATABASE_URL", db.as_str()),
            ("CPIS_JWT_SECRET", ""),
            ("CPIS_JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
        ],
    );
    let code = serve.exit_within(Duration::from_secs(15)).await;
    let log = serve.log();
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("CPIS_JWT_ISSUER"), "{log}");
}

// 8. CORS lets a browser send the views' alias of the care-setting header.
