//! The `cpis` binary as a separate process on a test's database: for killing it (SIGKILL) and
//! for running two servers side by side.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpis::auth::jwt::KeyConfig;
use cpis::config::Config;

pub struct ServerProcess {
    child: Child,
    pub base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts `cpis serve` on the database and key of `config`, with fast notification
    /// retries, plus `env`; returns once `/_health` answers.
    pub async fn start(config: &Config, env: &[(&str, &str)]) -> ServerProcess {
        let KeyConfig::Secret(secret) = config.effective_key() else {
            panic!("tests sign with the HS256 test secret");
        };
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cpis"));
        command
            .arg("serve")
            .env_clear()
            .env("CPIS_DATABASE_URL", &config.database_url)
            .env("CPIS_BIND", format!("127.0.0.1:{port}"))
            .env("CPIS_JWT_SECRET", secret)
            .env("CPIS_JWT_AUDIENCE", &config.jwt_audience)
            .env("CPIS_WORKERS", "2")
            // A PostgreSQL pool is kept full: small, so tests side by side stay well inside
            // the server's max_connections.
            .env("CPIS_DB_POOL_SIZE", "4")
            .env("CPIS_NOTIFY_POLL_MS", "100")
            .env("CPIS_NOTIFY_RETRY_BASE_MS", "100")
            .env("CPIS_NOTIFY_RETRY_MAX_MS", "500")
            .env("CPIS_NOTIFY_TIMEOUT_MS", "1000")
            // The tests' receivers listen on loopback: the opt-in they need, set explicitly.
            .env("CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(issuer) = &config.jwt_issuer {
            command.env("CPIS_JWT_ISSUER", issuer);
        }
        if let Some(log) = crate::helpers::suite_log::process_log() {
            // The log-privacy check reads what the binary itself logs, as an operator would.
            command
                .env("RUST_LOG", "debug")
                .env("CPIS_LOG_FORMAT", "json")
                .stderr(Stdio::from(log));
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the cpis binary");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}/FHIR/R4"),
        };
        let health = format!("http://127.0.0.1:{port}/_health");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(res) = reqwest::get(&health).await {
                if res.status() == 200 {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cpis serve did not become healthy on port {port}");
    }

    /// SIGTERM, as an operator or a service manager stops it, and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.wait()
    }

    /// Sends SIGTERM and returns at once.
    pub fn signal_term(&self) {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// SIGKILL: no shutdown, no flushing, nothing.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}
