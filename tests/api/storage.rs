//! Storage on both engines: migrations go down and up again; column types round-trip.

use cpis::db::{self, models::ResourceRow, store};
use cpis::fhir::types::ODS_SYSTEM;

use crate::helpers::*;

#[tokio::test]
async fn migrations_revert_and_reapply() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    db::revert_all(&mut conn).unwrap();
    assert!(db::migrate(&mut conn).unwrap() > 0);
    assert_eq!(db::migrate(&mut conn).unwrap(), 0, "idempotent");
}

#[tokio::test]
async fn every_column_type_round_trips() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    let row = ResourceRow {
        resource_type: "Organization".into(),
        id: "round-trip".into(),
        version_id: 7,
        last_updated: i64::MAX - 1,
        deleted: true,
        content: "{\"name\":\"Ünïcødé – “quotes” 🚑\"}".into(),
    };
    store::insert(&mut conn, &row).unwrap();
    assert_eq!(
        store::current(&mut conn, "Organization", "round-trip").unwrap(),
        Some(row.clone())
    );
    assert_eq!(
        store::version(&mut conn, "Organization", "round-trip", 7).unwrap(),
        Some(row)
    );
    store::claim_identifier(&mut conn, "Organization", ODS_SYSTEM, "X1", "round-trip").unwrap();
    assert!(
        store::claim_identifier(&mut conn, "Organization", ODS_SYSTEM, "X1", "other").is_err(),
        "identifiers are unique"
    );
}
