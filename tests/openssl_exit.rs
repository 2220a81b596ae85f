//! A process that has spoken TLS to PostgreSQL ends cleanly, whatever its other threads are
//! doing: OpenSSL must not tear itself down from an `atexit` handler (why: `connect_postgres`).
//!
//! What matters happens during the process's own exit, so the test runs this binary again as
//! a child (`CPIS_OPENSSL_EXIT_CHILD` set) and reads the child's exit status. The child
//! registers an `atexit` handler before anything uses OpenSSL; handlers run in reverse order,
//! so it runs after any handler OpenSSL registers later, and it asks OpenSSL whether it has
//! been cleaned up.
#![allow(
    unsafe_code,
    reason = "FFI to libc's atexit and OpenSSL's init; the server's crates forbid unsafe code"
)]

use std::ffi::{c_int, c_void};
use std::net::TcpListener;
use std::process::{Command, ExitCode};

use libtest_mimic::{Arguments, Failed, Trial};

/// Set in the environment of the child this test runs.
const CHILD: &str = "CPIS_OPENSSL_EXIT_CHILD";

/// `OPENSSL_INIT_BASE_ONLY` (OpenSSL's crypto/cryptlib.h): once OpenSSL has been cleaned up,
/// `OPENSSL_init_crypto` answers 0 without raising an error (which would use freed state).
const OPENSSL_INIT_BASE_ONLY: u64 = 0x0004_0000;

extern "C" {
    fn atexit(callback: extern "C" fn()) -> c_int;
    fn OPENSSL_init_crypto(opts: u64, settings: *const c_void) -> c_int;
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    libtest_mimic::run(
        &Arguments::from_args(),
        vec![Trial::test(
            "a_process_that_spoke_tls_to_postgresql_exits_without_openssl_cleaning_up",
            a_process_that_spoke_tls_to_postgresql_exits_without_openssl_cleaning_up,
        )],
    )
    .exit_code()
}

fn a_process_that_spoke_tls_to_postgresql_exits_without_openssl_cleaning_up() -> Result<(), Failed>
{
    let this = std::env::current_exe().map_err(|e| format!("this test's path: {e}"))?;
    let out = Command::new(this)
        .env(CHILD, "1")
        .output()
        .map_err(|e| format!("the child could not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the child ended with {} and said:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

/// Registered before OpenSSL is first used, so it runs after OpenSSL's own exit handler.
extern "C" fn fail_if_openssl_was_cleaned_up() {
    // SAFETY: OPENSSL_init_crypto may be called at any time, also after OPENSSL_cleanup (it
    // then returns 0); a null settings pointer means the defaults.
    let alive = unsafe { OPENSSL_init_crypto(OPENSSL_INIT_BASE_ONLY, std::ptr::null()) } == 1;
    if !alive {
        eprintln!("OpenSSL cleaned itself up at exit, under the feet of any thread still using it");
        std::process::abort();
    }
}

fn child() -> ExitCode {
    // SAFETY: registers a function that takes and returns nothing, as atexit expects.
    if unsafe { atexit(fail_if_openssl_was_cleaned_up) } != 0 {
        eprintln!("atexit refused the check");
        return ExitCode::FAILURE;
    }
    // A peer that accepts and hangs up. With `sslnegotiation=direct` libpq starts TLS as soon as
    // it is connected, so OpenSSL is put to work without a PostgreSQL server.
    let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
        eprintln!("no local port to listen on");
        return ExitCode::FAILURE;
    };
    let Ok(peer) = listener.local_addr() else {
        return ExitCode::FAILURE;
    };
    std::thread::spawn(move || listener.incoming().for_each(drop));
    let url = format!(
        "postgres://cpis@{peer}/cpis?sslmode=require&sslnegotiation=direct&connect_timeout=5"
    );
    match cpis::db::connect_postgres(&url) {
        Err(e) if e.to_string().contains("SSL") => {}
        Err(e) => {
            eprintln!("libpq failed before it started TLS: {e}");
            return ExitCode::FAILURE;
        }
        Ok(_) => {
            eprintln!("a peer that hangs up was taken for PostgreSQL");
            return ExitCode::FAILURE;
        }
    }
    // `exit`, as the end of `main` does: it runs the atexit handlers.
    std::process::exit(0)
}
