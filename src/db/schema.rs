//! The one `table!` file. Portable types only (`Text`, `BigInt`, `Bool`), so one schema serves
//! SQLite and PostgreSQL through `MultiConnection`.

diesel::table! {
    resources (resource_type, id) {
        resource_type -> Text,
        id -> Text,
        version_id -> BigInt,
        last_updated -> BigInt,
        deleted -> Bool,
        content -> Text,
    }
}

diesel::table! {
    resource_versions (resource_type, id, version_id) {
        resource_type -> Text,
        id -> Text,
        version_id -> BigInt,
        last_updated -> BigInt,
        deleted -> Bool,
        content -> Text,
    }
}

diesel::table! {
    search_tokens (resource_type, resource_id, param, system, value) {
        resource_type -> Text,
        resource_id -> Text,
        param -> Text,
        system -> Text,
        value -> Text,
    }
}

diesel::table! {
    search_dates (resource_type, resource_id, param) {
        resource_type -> Text,
        resource_id -> Text,
        param -> Text,
        start_ms -> BigInt,
        end_ms -> BigInt,
    }
}

diesel::table! {
    unique_identifiers (resource_type, system, value) {
        resource_type -> Text,
        system -> Text,
        value -> Text,
        resource_id -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    resources,
    resource_versions,
    search_tokens,
    search_dates,
    unique_identifiers,
);
