ALTER TABLE batches
    DROP COLUMN discovery_error,
    DROP COLUMN discovery_request,
    DROP COLUMN total_discovered,
    DROP COLUMN discovery_method,
    DROP COLUMN discovery_status;
