//! The tables of `migrations/`, for diesel's query builder.

diesel::table! {
    plans (name) {
        name -> Text,
        async_mode -> Bool,
        batch_polling -> Bool,
        email_notifications -> Bool,
        has_webhook -> Bool,
        zip_output -> Bool,
        target_auth -> Bool,
        discovery -> Text,
        batch_limit -> Int4,
        rpm_private -> Int4,
        rpm_public -> Int4,
        retention_hours -> Int4,
    }
}

diesel::table! {
    projects (id) {
        id -> Uuid,
        name -> Text,
        owner_email -> Text,
        plan -> Text,
        default_email_enabled -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        project_id -> Uuid,
        kind -> Text,
        prefix -> Text,
        key_hash -> Bytea,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    batches (id) {
        id -> Uuid,
        project_id -> Uuid,
        endpoint -> Text,
        output_mode -> Text,
        is_async -> Bool,
        total -> Int4,
        succeeded -> Int4,
        failed -> Int4,
        options -> Jsonb,
        output_filename -> Nullable<Text>,
        notification_email -> Nullable<Text>,
        callback_url -> Nullable<Text>,
        archive_status -> Nullable<Text>,
        archive_key -> Nullable<Text>,
        archive_filename -> Nullable<Text>,
        archive_size -> Nullable<Int8>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        archive_expired_at -> Nullable<Timestamptz>,
        discovery_status -> Nullable<Text>,
        discovery_method -> Nullable<Text>,
        total_discovered -> Nullable<Int4>,
        discovery_request -> Nullable<Jsonb>,
        discovery_error -> Nullable<Text>,
        archive_error -> Nullable<Text>,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        batch_id -> Uuid,
        project_id -> Uuid,
        client_job_id -> Nullable<Text>,
        position -> Int4,
        source_url -> Text,
        status -> Text,
        attempts -> Int4,
        lease_until -> Nullable<Timestamptz>,
        object_key -> Nullable<Text>,
        filename -> Nullable<Text>,
        file_size -> Nullable<Int8>,
        duration_ms -> Nullable<Int4>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        file_expired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        exchange -> Text,
        routing_key -> Text,
        message_id -> Uuid,
        message_type -> Text,
        correlation_id -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        batch_id -> Uuid,
        job_id -> Nullable<Uuid>,
        subject -> Text,
        channel -> Text,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        next_attempt_at -> Nullable<Timestamptz>,
        target -> Nullable<Text>,
        body -> Nullable<Text>,
        receiver -> Text,
        max_attempts -> Int4,
    }
}

diesel::table! {
    notification_attempts (id) {
        id -> Uuid,
        notification_id -> Uuid,
        attempt -> Int4,
        started_at -> Timestamptz,
        status_code -> Nullable<Int4>,
        latency_ms -> Nullable<Int4>,
        error -> Nullable<Text>,
        response_body -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_secrets (id) {
        id -> Uuid,
        project_id -> Uuid,
        secret -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    rate_windows (key_id, window_start) {
        key_id -> Uuid,
        window_start -> Timestamptz,
        count -> Int4,
    }
}

diesel::table! {
    dashboard_sessions (token_hash) {
        token_hash -> Bytea,
        project_id -> Uuid,
        key_id -> Uuid,
        csrf_token -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> projects (project_id));
diesel::joinable!(dashboard_sessions -> api_keys (key_id));
diesel::joinable!(batches -> projects (project_id));
diesel::joinable!(jobs -> batches (batch_id));
diesel::joinable!(projects -> plans (plan));
diesel::joinable!(notifications -> batches (batch_id));
diesel::joinable!(notification_attempts -> notifications (notification_id));
diesel::joinable!(webhook_secrets -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    plans,
    projects,
    api_keys,
    batches,
    jobs,
    outbox,
    notifications,
    rate_windows,
    notification_attempts,
    webhook_secrets,
    dashboard_sessions,
);
