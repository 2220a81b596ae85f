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

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        recorded_ms -> BigInt,
        nhs_number -> Text,
        agent_sub -> Text,
        agent_org -> Text,
        care_setting -> Text,
        accessor_role -> Text,
        shown -> Bool,
        content -> Text,
        pattern_reached -> Bool,
        interaction -> Text,
        agent_name -> Nullable<Text>,
        org_name -> Nullable<Text>,
        job_role -> Nullable<Text>,
        job_role_code -> Nullable<Text>,
        observer -> Text,
        entities -> Text,
        attendances -> Nullable<Integer>,
        attendance_settings -> Nullable<Integer>,
        attendance_window_days -> Nullable<Integer>,
        attendance_pattern -> Nullable<Bool>,
        told_las -> Bool,
        opens_attendance_hour -> Bool,
    }
}

diesel::table! {
    audit_las (la_ods, recorded_ms, event_seq) {
        la_ods -> Text,
        recorded_ms -> BigInt,
        event_seq -> BigInt,
        shown -> Bool,
        pattern_reached -> Bool,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        la_ods -> Text,
        version_id -> BigInt,
        last_updated -> BigInt,
        status -> Text,
        consecutive_failures -> BigInt,
        content -> Text,
    }
}

diesel::table! {
    notification_outbox (id) {
        id -> Text,
        audit_event_id -> Text,
        subscription_id -> Text,
        created_ms -> BigInt,
        attempts -> BigInt,
        next_attempt_ms -> BigInt,
        lease_until_ms -> BigInt,
        delivered_ms -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(notification_outbox -> subscriptions (subscription_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    audit_las,
    subscriptions,
    notification_outbox,
);

diesel::table! {
    upload_reports (id) {
        id -> Text,
        la_ods -> Text,
        created_ms -> BigInt,
        accepted -> BigInt,
        rejected -> BigInt,
        content -> Text,
    }
}

// The clinician viewer's rows (`crate::viewer`): sessions, OpenID Connect states, EPR launches.
diesel::table! {
    viewer_sessions (token_hash) {
        token_hash -> Text,
        identity -> Text,
        csrf -> Text,
        created_ms -> BigInt,
        seen_ms -> BigInt,
        result -> Nullable<Text>,
        launch_nhs -> Nullable<Text>,
    }
}

diesel::table! {
    viewer_oidc_states (state_hash) {
        state_hash -> Text,
        browser_hash -> Text,
        nonce -> Text,
        verifier -> Text,
        expires_ms -> BigInt,
    }
}

diesel::table! {
    viewer_launch_jtis (jti_hash) {
        jti_hash -> Text,
        expires_ms -> BigInt,
    }
}

diesel::table! {
    viewer_launches (token_hash) {
        token_hash -> Text,
        nhs_number -> Text,
        expires_ms -> BigInt,
    }
}
