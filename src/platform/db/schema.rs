//! The one diesel schema for both backends. Written by hand: only portable types (Text, BigInt,
//! Bool, Nullable) so the same queries type-check against PostgreSQL and SQLite.

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        is_platform_admin -> Bool,
        personal_org_id -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        email_verified_at -> Nullable<BigInt>,
        suspended_at -> Nullable<BigInt>,
        suspended_reason -> Nullable<Text>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        is_personal -> Bool,
        is_platform -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        plan_id -> Nullable<Text>,
        suspended_at -> Nullable<BigInt>,
        suspended_reason -> Nullable<Text>,
        deleted_at -> Nullable<BigInt>,
        purge_after -> Nullable<BigInt>,
        purged_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    plans (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        description -> Text,
        price_cents -> Nullable<BigInt>,
        annual_price_cents -> Nullable<BigInt>,
        currency -> Text,
        is_default -> Bool,
        per_second -> Nullable<BigInt>,
        per_minute -> Nullable<BigInt>,
        per_hour -> Nullable<BigInt>,
        per_day -> Nullable<BigInt>,
        burst -> BigInt,
        monthly_quota -> Nullable<BigInt>,
        concurrency -> Nullable<BigInt>,
        max_apps -> Nullable<BigInt>,
        max_webhook_endpoints -> Nullable<BigInt>,
        max_subscriptions -> Nullable<BigInt>,
        query_cost_max -> BigInt,
        query_cost_bucket -> BigInt,
        query_cost_restore_rate -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        quota_mode -> Text,
        overage_tiers -> Text,
        max_members -> Nullable<BigInt>,
        max_api_keys -> Nullable<BigInt>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        invited_by_type -> Text,
        invited_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        sent_count -> BigInt,
        last_sent_at -> BigInt,
        accepted_at -> Nullable<BigInt>,
        accepted_by -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    feature_flags (id) {
        id -> Text,
        key -> Text,
        description -> Text,
        enabled -> Bool,
        rollout_percent -> Nullable<BigInt>,
        metadata -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    feature_flag_overrides (flag_id, org_id) {
        flag_id -> Text,
        org_id -> Text,
        enabled -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    org_exports (id) {
        id -> Text,
        org_id -> Text,
        requested_by -> Text,
        status -> Text,
        created_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        claimed_until -> Nullable<BigInt>,
        bytes -> BigInt,
        chunks -> BigInt,
        error -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    org_export_chunks (export_id, seq) {
        export_id -> Text,
        seq -> BigInt,
        data -> Text,
    }
}

diesel::table! {
    user_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        purpose -> Text,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    memberships (org_id, user_id) {
        org_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        refresh_hash -> Text,
        expires_at -> BigInt,
        refresh_expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        environment -> Text,
        start -> Text,
        last_four -> Text,
        scopes -> Text,
        expires_at -> Nullable<BigInt>,
        allowed_ips -> Text,
        metadata -> Text,
        rate_limit -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        last_used_ip -> Nullable<Text>,
        total_requests -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    api_key_secrets (key_hash) {
        key_hash -> Text,
        key_id -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_key_ips (key_id, ip) {
        key_id -> Text,
        ip -> Text,
        first_seen_at -> BigInt,
        last_seen_at -> BigInt,
        requests -> BigInt,
    }
}

diesel::table! {
    api_key_usage_daily (key_id, day) {
        key_id -> Text,
        day -> Text,
        requests -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        org_id -> Text,
        actor_type -> Text,
        actor_id -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        ip -> Nullable<Text>,
        data -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        org_id -> Text,
        event_type -> Text,
        payload -> Text,
        idempotency_key -> Nullable<Text>,
        created_at -> BigInt,
        dispatched_at -> Nullable<BigInt>,
        is_test -> Bool,
    }
}

diesel::table! {
    usage_segments (id) {
        id -> Text,
        org_id -> Text,
        first_at -> BigInt,
        last_at -> BigInt,
        record_count -> Integer,
        records -> Text,
    }
}

diesel::table! {
    usage_rollups (granularity, org_id, level, bucket_start, api_key_id, operation, status) {
        granularity -> Text,
        org_id -> Text,
        level -> Integer,
        bucket_start -> BigInt,
        api_key_id -> Text,
        operation -> Text,
        status -> Integer,
        calls -> BigInt,
        latency_us_sum -> BigInt,
        request_bytes -> BigInt,
        response_bytes -> BigInt,
        cost_units -> BigInt,
        quota_units -> BigInt,
    }
}

diesel::table! {
    usage_latency (granularity, org_id, level, bucket_start, api_key_id, operation) {
        granularity -> Text,
        org_id -> Text,
        level -> Integer,
        bucket_start -> BigInt,
        api_key_id -> Text,
        operation -> Text,
        histogram -> Text,
    }
}

diesel::table! {
    metered_events (id) {
        id -> Text,
        org_id -> Text,
        idempotency_key -> Text,
        metric -> Text,
        quantity -> BigInt,
        properties -> Text,
        occurred_at -> BigInt,
        recorded_at -> BigInt,
        recorded_by -> Text,
    }
}

diesel::table! {
    alerts (id) {
        id -> Text,
        org_id -> Text,
        kind -> Text,
        severity -> Text,
        dedupe_key -> Text,
        title -> Text,
        data -> Text,
        occurrences -> BigInt,
        triggered_at -> BigInt,
        last_seen_at -> BigInt,
        acknowledged_at -> Nullable<BigInt>,
        acknowledged_by -> Nullable<Text>,
        resolved_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    operation_costs (operation) {
        operation -> Text,
        cost -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(memberships -> organizations (org_id));
diesel::joinable!(invitations -> organizations (org_id));
diesel::joinable!(feature_flag_overrides -> feature_flags (flag_id));
diesel::joinable!(org_export_chunks -> org_exports (export_id));
diesel::joinable!(user_tokens -> users (user_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_keys -> organizations (org_id));
diesel::joinable!(organizations -> plans (plan_id));
diesel::joinable!(api_key_secrets -> api_keys (key_id));
diesel::joinable!(api_key_usage_daily -> api_keys (key_id));
diesel::joinable!(api_key_ips -> api_keys (key_id));

diesel::allow_tables_to_appear_in_same_query!(
    settings,
    invitations,
    user_tokens,
    feature_flags,
    feature_flag_overrides,
    org_exports,
    org_export_chunks,
    plans,
    users,
    organizations,
    memberships,
    sessions,
    api_keys,
    api_key_secrets,
    api_key_usage_daily,
    api_key_ips,
    audit_log,
    events,
    usage_segments,
    usage_rollups,
    usage_latency,
    metered_events,
    alerts,
    operation_costs,
    event_types,
    webhook_endpoints,
    webhook_secrets,
    webhook_deliveries,
    webhook_attempts,
    apps,
    app_clients,
    app_secrets,
    app_reviews,
    app_review_votes,
    app_installations,
    oauth_codes,
    oauth_tokens,
    app_install_log,
);

diesel::table! {
    event_types (name) {
        name -> Text,
        category -> Text,
        description -> Text,
        payload_schema -> Text,
        sample -> Text,
        deprecated -> Bool,
        archived_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        org_id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        event_filter -> Text,
        headers -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        rate_limit_per_second -> Nullable<BigInt>,
        retry_schedule -> Nullable<Text>,
        timeout_ms -> BigInt,
        metadata -> Text,
        failing_since -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        consecutive_failures -> BigInt,
    }
}

diesel::table! {
    webhook_secrets (id) {
        id -> Text,
        endpoint_id -> Text,
        seed -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        org_id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        event_type -> Text,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> Nullable<BigInt>,
        leased_until -> Nullable<BigInt>,
        last_status_code -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        endpoint_id -> Text,
        org_id -> Text,
        attempt -> BigInt,
        url -> Text,
        request_headers -> Text,
        request_body -> Text,
        response_status -> Nullable<BigInt>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Text>,
        latency_ms -> BigInt,
        error_kind -> Nullable<Text>,
        error_message -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::joinable!(webhook_secrets -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));

diesel::table! {
    apps (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        slug -> Text,
        description -> Text,
        long_description -> Text,
        category -> Text,
        icon_url -> Nullable<Text>,
        version -> Text,
        pricing_model -> Text,
        price_amount -> Nullable<BigInt>,
        price_currency -> Text,
        features -> Text,
        scopes -> Text,
        docs_url -> Nullable<Text>,
        support_url -> Nullable<Text>,
        status -> Text,
        review_reason -> Nullable<Text>,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<BigInt>,
        submitted_at -> Nullable<BigInt>,
        published_at -> Nullable<BigInt>,
        deprecated_at -> Nullable<BigInt>,
        is_featured -> Bool,
        install_count -> BigInt,
        rating_count -> BigInt,
        rating_sum -> BigInt,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_clients (app_id) {
        app_id -> Text,
        client_type -> Text,
        redirect_uris -> Text,
        access_token_ttl_secs -> BigInt,
        refresh_token_ttl_secs -> BigInt,
        rate_limit -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_secrets (secret_hash) {
        secret_hash -> Text,
        app_id -> Text,
        last_four -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    app_reviews (id) {
        id -> Text,
        app_id -> Text,
        user_id -> Text,
        rating -> BigInt,
        comment -> Nullable<Text>,
        helpful_count -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_review_votes (review_id, user_id) {
        review_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(apps -> organizations (org_id));
diesel::joinable!(app_clients -> apps (app_id));
diesel::joinable!(app_secrets -> apps (app_id));
diesel::joinable!(app_reviews -> apps (app_id));
diesel::joinable!(app_review_votes -> app_reviews (review_id));

diesel::table! {
    app_installations (id) {
        id -> Text,
        app_id -> Text,
        org_id -> Text,
        scopes -> Text,
        installed_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        uninstalled_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_codes (code_hash) {
        code_hash -> Text,
        app_id -> Text,
        installation_id -> Text,
        org_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scopes -> Text,
        code_challenge -> Nullable<Text>,
        grant_id -> Nullable<Text>,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    oauth_tokens (token_hash) {
        token_hash -> Text,
        kind -> Text,
        grant_id -> Text,
        app_id -> Text,
        installation_id -> Nullable<Text>,
        org_id -> Text,
        user_id -> Nullable<Text>,
        scopes -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::joinable!(app_installations -> apps (app_id));
diesel::joinable!(oauth_tokens -> apps (app_id));
diesel::joinable!(oauth_codes -> apps (app_id));

diesel::table! {
    app_install_log (app_id, org_id, at) {
        app_id -> Text,
        org_id -> Text,
        kind -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        org_id -> Text,
        plan_id -> Text,
        status -> Text,
        billing_cycle -> Text,
        current_period_start -> BigInt,
        current_period_end -> BigInt,
        cancel_at_period_end -> Bool,
        scheduled_plan_id -> Nullable<Text>,
        scheduled_cycle -> Nullable<Text>,
        billed_through -> BigInt,
        canceled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        spend_cap_cents -> Nullable<BigInt>,
    }
}

diesel::table! {
    invoices (id) {
        id -> Text,
        org_id -> Text,
        subscription_id -> Text,
        number -> Nullable<BigInt>,
        kind -> Text,
        status -> Text,
        currency -> Text,
        period_key -> Nullable<Text>,
        period_start -> BigInt,
        period_end -> BigInt,
        total_cents -> BigInt,
        amount_paid_cents -> BigInt,
        due_at -> Nullable<BigInt>,
        attempt_count -> BigInt,
        next_attempt_at -> Nullable<BigInt>,
        claimed_until -> Nullable<BigInt>,
        finalized_at -> Nullable<BigInt>,
        paid_at -> Nullable<BigInt>,
        voided_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    invoice_lines (invoice_id, position) {
        invoice_id -> Text,
        position -> BigInt,
        kind -> Text,
        description -> Text,
        period_start -> BigInt,
        period_end -> BigInt,
        quantity -> BigInt,
        unit_price_micros -> BigInt,
        amount_cents -> BigInt,
        plan_id -> Nullable<Text>,
        app_id -> Nullable<Text>,
    }
}

diesel::table! {
    billing_counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    payment_methods (id) {
        id -> Text,
        org_id -> Text,
        brand -> Text,
        last4 -> Text,
        exp_month -> BigInt,
        exp_year -> BigInt,
        provider_ref -> Text,
        is_default -> Bool,
        created_at -> BigInt,
        removed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        org_id -> Text,
        invoice_id -> Text,
        payment_method_id -> Nullable<Text>,
        amount_cents -> BigInt,
        currency -> Text,
        status -> Text,
        failure_code -> Nullable<Text>,
        idempotency_key -> Text,
        provider_ref -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::joinable!(invoice_lines -> invoices (invoice_id));
diesel::allow_tables_to_appear_in_same_query!(subscriptions, invoices, invoice_lines, payment_methods, payments);

diesel::table! {
    billable_metrics (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        description -> Text,
        aggregation -> Text,
        field_name -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    plan_charges (plan_id, metric_id) {
        plan_id -> Text,
        metric_id -> Text,
        model -> Text,
        tiers -> Text,
        package_size -> BigInt,
        free_units -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_earnings (invoice_id, app_id) {
        invoice_id -> Text,
        app_id -> Text,
        developer_org_id -> Text,
        org_id -> Text,
        gross_cents -> BigInt,
        developer_cents -> BigInt,
        platform_cents -> BigInt,
        currency -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(plan_charges -> billable_metrics (metric_id));
diesel::allow_tables_to_appear_in_same_query!(billable_metrics, plan_charges);
