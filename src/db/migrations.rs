//! Migrations: one embedded folder per engine, with the same names in both.

use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::DbConn;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Runs the embedded migrations for the connection's engine. On SQLite, also switches the
/// database to WAL (a persistent setting).
pub fn migrate(conn: &mut DbConn) -> Result<usize, String> {
    let applied = match conn {
        DbConn::Sqlite(c) => {
            diesel::sql_query("PRAGMA journal_mode = WAL")
                .execute(c)
                .map_err(|e| e.to_string())?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| e.to_string())?
                .len()
        }
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(|e| e.to_string())?
            .len(),
    };
    Ok(applied)
}

/// Reverts every migration (used by the migration round-trip test).
pub fn revert_all(conn: &mut DbConn) -> Result<(), String> {
    match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    }
    .map_err(|e| e.to_string())
}

/// Reverts the newest migrations down to and including `name` (for testing what a migration
/// does to existing rows); returns how many were reverted.
pub fn revert_through(conn: &mut DbConn, name: &str) -> Result<usize, String> {
    let mut reverted = 0;
    loop {
        let version = match conn {
            DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
            DbConn::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS),
        }
        .map_err(|e| e.to_string())?;
        reverted += 1;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let version = digits(&version.to_string());
        if !version.is_empty() && digits(name.split('_').next().unwrap_or_default()) == version {
            return Ok(reverted);
        }
    }
}

/// The migration names of both engines, in order (they must be identical).
pub fn migration_names() -> (Vec<String>, Vec<String>) {
    let names = |m: &EmbeddedMigrations| -> Vec<String> {
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(m)
            .unwrap_or_default()
            .iter()
            .map(|m| m.name().to_string())
            .collect()
    };
    (names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_have_the_same_migrations() {
        let (sqlite, postgres) = migration_names();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres);
    }
}
