//! The `cpis` command line: `serve`, `migrate`, `token` (SPEC §8). Configuration comes from
//! the `CPIS_*` environment variables.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::jwt::{JwtAlgorithm, KeyConfig};
use crate::auth::token::{issue, TokenRequest};
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
    /// Import an LA's plans from a CSV file as batch uploads (layout: see `src/import.rs` and
    /// README). Exit status 0: every row accepted; 4: some rows rejected (listed); 1: failure.
    Import {
        /// The CSV file.
        #[arg(long)]
        file: String,
        /// The LA's ODS code: the managing organisation of every plan.
        #[arg(long)]
        org: String,
        /// A server's FHIR base URL (e.g. http://127.0.0.1:8080/FHIR/R4); without it the plans go
        /// straight into CPIS_DATABASE_URL.
        #[arg(long)]
        url: Option<String>,
        /// A social-care token of that LA, for --url.
        #[arg(long, env = "CPIS_TOKEN")]
        token: Option<String>,
        /// The plan-reference identifier system (default https://fhir.{org}.gov.uk/Id/plan).
        #[arg(long)]
        system: Option<String>,
        /// Plans per batch.
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
    },
    /// Write a governance access report as CSV from the database (SPEC §2 `governance`): every
    /// access to a child, or by a user or organisation, over at most 31 days; the same rows as
    /// `AuditEvent?…&_format=csv`. Nothing is recorded: this runs where the database is.
    Report {
        /// The Patient Access report: the child's NHS number.
        #[arg(long, conflicts_with_all = ["user", "org"])]
        patient: Option<String>,
        /// The User Access report: the SDS user id.
        #[arg(long, conflicts_with = "org")]
        user: Option<String>,
        /// The User Access report by organisation: the ODS code.
        #[arg(long)]
        org: Option<String>,
        /// The first day (YYYY-MM-DD, UK), included.
        #[arg(long)]
        from: String,
        /// The last day (YYYY-MM-DD, UK), included; at most 31 days after --from.
        #[arg(long)]
        to: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<String>,
    },
    /// Copy the SQLite database online to PATH (or a dated file in it, if a directory): checked,
    /// sealed, owner-only, renamed into place when whole. On PostgreSQL: says what to use, exit 2.
    Backup {
        /// The backup file, or a directory for `cpis-YYYYMMDDTHHMMSSZ.db`.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Restore a backup into a SQLite database that no server holds: checked before and after;
    /// prints the plans, accesses and newest access restored.
    Restore {
        /// A backup written by `cpis backup` (or the scheduled backups).
        #[arg(long)]
        from: std::path::PathBuf,
        /// The database to restore into: sqlite://path (a new file, or one to replace).
        #[arg(long)]
        to: String,
        /// Overwrite the database at --to if it exists.
        #[arg(long)]
        replace: bool,
    },
    /// Print a signed JWT (and nothing else) for the configured key: for the sandbox and Postman.
    Token {
        /// social-care | health-care | operations | governance
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

/// `cpis backup --to PATH`, logging as the server does.
fn backup(config: &Config, to: &std::path::Path) -> ExitCode {
    crate::telemetry::init(config.log_json);
    crate::backup::command::backup(&config.database_url, config.clock.now_ms(), to)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only serving and signing tokens need the JWT key.
    let needs_key = matches!(cli.command, Command::Serve | Command::Token { .. });
    let config = match Config::from_env_with(needs_key) {
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
        Command::Backup { to } => return backup(&config, &to),
        Command::Restore { from, to, replace } => {
            return crate::backup::command::restore(&from, &to, replace)
        }
        Command::Report {
            patient,
            user,
            org,
            from,
            to,
            out,
        } => report(&config, (patient, user, org), (&from, &to), out.as_deref()),
        Command::Import {
            file,
            org,
            url,
            token,
            system,
            chunk,
        } => {
            let server = match (url, token) {
                (Some(url), Some(token)) => Some((url, token)),
                (None, None) => None,
                (Some(_), None) => {
                    eprintln!("cpis import: --url needs --token (or CPIS_TOKEN)");
                    return ExitCode::from(2);
                }
                (None, Some(_)) => {
                    eprintln!("cpis import: --token is for --url; without --url the plans go straight into CPIS_DATABASE_URL");
                    return ExitCode::from(2);
                }
            };
            return import(&config, &file, &org, server, system, chunk);
        }
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
    let grace = config.shutdown_grace;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(base_url = app.base_url(), "listening");
        let pool = app.pool();
        actix_web::rt::spawn(stop_on_signal(app.handle(), app.readiness(), grace));
        let served = app.run_until_stopped().await.map_err(|e| e.to_string());
        crate::db::checkpoint_at_stop(&pool);
        tracing::info!("stopped");
        served
    })
}

/// On SIGTERM or SIGINT: readiness goes 503 at once, the server keeps serving for `grace` (so a
/// load balancer stops sending), then stops accepting and finishes what it has in flight
/// (bounded by `CPIS_SHUTDOWN_TIMEOUT_SECONDS`).
async fn stop_on_signal(
    server: actix_web::dev::ServerHandle,
    readiness: crate::lifecycle::Readiness,
    grace: std::time::Duration,
) {
    let signal = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = tokio::signal::ctrl_c() => "SIGINT",
                    }
                }
                Err(_) => tokio::signal::ctrl_c()
                    .await
                    .map_or("SIGINT", |()| "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    };
    let name = signal.await;
    readiness.set(crate::lifecycle::Phase::Stopping);
    tracing::info!(
        signal = name,
        grace_ms = grace.as_millis() as u64,
        "stopping"
    );
    tokio::time::sleep(grace).await;
    server.stop(true).await;
}

fn token(
    config: &Config,
    req: &TokenRequest,
    private_key_file: Option<&str>,
) -> Result<String, String> {
    let key = config.effective_key();
    let (alg, signing): (JwtAlgorithm, Vec<u8>) =
        match &key {
            KeyConfig::Secret(s) => (JwtAlgorithm::HS256, s.as_bytes().to_vec()),
            KeyConfig::Provider { .. } => return Err(
                "tokens come from the identity provider (CPIS_JWT_JWKS_URL or OIDC discovery): \
                 cpis token signs only with CPIS_JWT_SECRET or a key pair"
                    .into(),
            ),
            KeyConfig::PublicKey { alg, .. } => {
                let path = private_key_file.ok_or(
                "RS256/PS256/ES256 tokens need --private-key-file (or CPIS_JWT_PRIVATE_KEY_FILE)",
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
        None => crate::clock::Clock::system().now_ms(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("--now {t:?}: {e}"))?
            .timestamp_millis(),
    };
    let pool = prepare_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let purged = crate::retention::purge(&mut conn, config.retention(), now)
        .map_err(|e| format!("purge failed: {e}"))?;
    println!(
        "purged plans={} audit_events={} reports={}",
        purged.plans, purged.audit_events, purged.reports
    );
    Ok(())
}

/// `cpis report`: the query the API would take, read a chunk at a time and written as CSV, with
/// a progress bar on a terminal (on standard error).
fn report(
    config: &Config,
    (patient, user, org): (Option<String>, Option<String>, Option<String>),
    (from, to): (&str, &str),
    out: Option<&str>,
) -> Result<(), String> {
    use crate::service::access_history;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    match (patient, user, org) {
        (Some(nhs), _, _) => query.append_pair("patient:identifier", &nhs),
        (None, Some(sub), _) => query.append_pair("agent-identifier", &sub),
        (None, None, Some(ods)) => query.append_pair("agent-organization", &ods),
        (None, None, None) => return Err("report: name --patient, --user or --org".into()),
    };
    query.append_pair("date", &format!("ge{from}"));
    query.append_pair("date", &format!("le{to}"));
    let q = crate::search::audit::parse(&query.finish()).map_err(|e| e.to_string())?;
    let plan = access_history::offline_report(&q).map_err(|e| e.to_string())?;
    let pool = prepare_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let total = plan
        .report_count(&mut conn, &q)
        .map_err(|e| e.to_string())?;
    let progress = indicatif::ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or_default()),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let next = |after| {
        plan.report_chunk(&mut conn, &q, after, crate::report::CHUNK)
            .map_err(|e| e.to_string())
    };
    let written = match out {
        Some(path) => {
            let file =
                std::fs::File::create(path).map_err(|e| format!("cannot write {path}: {e}"))?;
            crate::report::write_report(std::io::BufWriter::new(file), next, &progress)?
        }
        None => crate::report::write_report(std::io::stdout().lock(), next, &progress)?,
    };
    progress.finish_and_clear();
    eprintln!("cpis report: {written} accesses");
    Ok(())
}

fn import(
    config: &Config,
    file: &str,
    org: &str,
    server: Option<(String, String)>,
    system: Option<String>,
    chunk: usize,
) -> ExitCode {
    use crate::import::{self, DirectSink, HttpSink, Sink};
    let run = || -> Result<import::Summary, String> {
        let input = std::fs::File::open(file).map_err(|e| format!("cannot open {file}: {e}"))?;
        let org = org.to_ascii_uppercase();
        let system = system.unwrap_or_else(|| import::default_plan_system(&org));
        let (entries, rejected) = import::read_csv(std::io::BufReader::new(input), &org, &system)?;
        let mut sink: Box<dyn Sink> = match server {
            Some((url, token)) => Box::new(HttpSink::new(&url, &token)?),
            None => {
                crate::telemetry::init(config.log_json);
                let pool = prepare_database(config).map_err(|e| e.to_string())?;
                Box::new(DirectSink {
                    pool,
                    profiles: crate::validation::Profiles::load()?,
                    caller: crate::auth::Caller(crate::auth::Identity {
                        sub: "cpis-import".into(),
                        role: Role::SocialCare,
                        name: Some("cpis import".into()),
                        org: Some(org.clone()),
                        org_name: None,
                        job_role: None,
                        job_role_code: None,
                    }),
                    max_entries: config.max_bundle_entries,
                    parallel_writes: crate::db::Backend::from_url(&config.database_url)?
                        .writes_in_parallel(),
                })
            }
        };
        let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        import::run(sink.as_mut(), entries, rejected, chunk, show_progress)
    };
    match run() {
        Ok(summary) => {
            println!(
                "rows={} accepted={} rejected={}",
                summary.rows,
                summary.accepted,
                summary.rejected.len()
            );
            for r in &summary.rejected {
                println!("line {}: {}", r.line, r.reason);
            }
            if summary.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(4)
            }
        }
        Err(e) => {
            eprintln!("cpis import: {e}");
            ExitCode::FAILURE
        }
    }
}
