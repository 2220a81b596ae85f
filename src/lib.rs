//! CP-IS: Child Protection – Information Sharing, a FHIR R4 REST API server.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod attendance;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod endpoints;
pub mod error;
pub mod fhir;
pub mod import;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod retention;
pub mod sandbox;
pub mod search;
pub mod service;
pub mod startup;
pub mod telemetry;
pub mod validation;
pub mod viewer;
pub mod views;
