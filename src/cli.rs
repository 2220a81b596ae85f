//! The `cpis` command line: `serve`, `migrate`, `token` (SPEC §8). Configuration comes from
//! the `CPIS_*` environment variables.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::jwt::{issue, JwtAlgorithm, KeyConfig, TokenRequest};
use crate::auth::Role;
use crate::config::Config;
use crate::startup::{prepare_database, Application};

#[derive(Parser)]
#[command(
    name = "cpis",
    version,
    about = "CP-IS: Child Protection – Information Sharing FHIR R4 server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the migrations, then serve the API on CPIS_BIND.
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Purge plans, flags and AuditEvents past their retention (SPEC §7) and print the counts.
    Purge {
        /// The clock to purge at (RFC 3339), instead of now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Print a signed JWT (and nothing else) for the configured key: for the sandbox and Postman.
    Token {
        /// social-care | health-care | operations
        #[arg(long)]
        role: String,
        /// ODS code of the caller's organisation (the LA for social-care).
        #[arg(long)]
        org: Option<String>,
        /// The person's display name (required for health-care).
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "org-name")]
        org_name: Option<String>,
        #[arg(long = "job-role")]
        job_role: Option<String>,
        #[arg(long = "job-role-code")]
        job_role_code: Option<String>,
        /// The user id (`sub`).
        #[arg(long, default_value = "sandbox-user")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// PEM private key for RS256/ES256 (HS256 signs with CPIS_JWT_SECRET).
        #[arg(long = "private-key-file", env = "CPIS_JWT_PRIVATE_KEY_FILE")]
        private_key_file: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpis: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(config),
        Command::Migrate => {
            crate::telemetry::init(config.log_json);
            prepare_database(&config)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Command::Purge { now } => purge(&config, now.as_deref()),
        Command::Token {
            role,
            org,
            name,
            org_name,
            job_role,
            job_role_code,
            sub,
            ttl,
            private_key_file,
        } => role.parse::<Role>().and_then(|role| {
            let req = TokenRequest {
                sub,
                role,
                org,
                name,
                org_name,
                job_role,
                job_role_code,
                ttl_seconds: ttl,
            };
            token(&config, &req, private_key_file.as_deref()).map(|t| println!("{t}"))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpis: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    crate::telemetry::init(config.log_json);
    tracing::info!(config = ?config, "starting");
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config).map_err(|e| e.to_string())?;
        tracing::info!(base_url = app.base_url(), "listening");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn token(
    config: &Config,
    req: &TokenRequest,
    private_key_file: Option<&str>,
) -> Result<String, String> {
    let key = config.effective_key();
    let (alg, signing): (JwtAlgorithm, Vec<u8>) = match &key {
        KeyConfig::Secret(s) => (JwtAlgorithm::HS256, s.as_bytes().to_vec()),
        KeyConfig::PublicKey { alg, .. } => {
            let path = private_key_file.ok_or(
                "RS256/ES256 tokens need --private-key-file (or CPIS_JWT_PRIVATE_KEY_FILE)",
            )?;
            (
                *alg,
                std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?,
            )
        }
    };
    issue(
        req,
        alg,
        &signing,
        config.jwt_issuer.as_deref(),
        &config.jwt_audience,
    )
    .map_err(|e| format!("cannot sign: {e}"))
}

fn purge(config: &Config, now: Option<&str>) -> Result<(), String> {
    crate::telemetry::init(config.log_json);
    let now = match now {
        None => crate::service::now_ms(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("--now {t:?}: {e}"))?
            .timestamp_millis(),
    };
    let pool = prepare_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let purged = crate::retention::purge(&mut conn, config.retention(), now)
        .map_err(|e| format!("purge failed: {e}"))?;
    println!(
        "purged plans={} audit_events={}",
        purged.plans, purged.audit_events
    );
    Ok(())
}
