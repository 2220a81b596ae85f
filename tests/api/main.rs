#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, loudly"
)]

//! Integration tests over HTTP against the real application, on SQLite by default and on
//! PostgreSQL with `CPIS_TEST_DATABASE_URL=postgres://…`.

mod access_pull;
mod attendance;
mod audit;
mod auth;
mod backup;
mod calendar;
mod conventions;
mod disclosure;
mod fuzz;
mod governance;
mod hardening;
mod helpers;
mod import;
mod nhs_views;
mod notifications;
mod operations;
mod organization;
mod plans;
mod process;
mod query_plans;
mod receiver;
mod rest;
mod retention;
mod search;
mod storage;
mod uploads;
mod validation_table;
mod viewer;
