-- Requests per key per minute (fixed windows), shared by every api process.
CREATE TABLE rate_windows (
    key_id       UUID NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    window_start TIMESTAMPTZ NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key_id, window_start)
);

-- Files past their plan's retention are deleted; these record when.
ALTER TABLE jobs ADD COLUMN file_expired_at TIMESTAMPTZ;
ALTER TABLE batches ADD COLUMN archive_expired_at TIMESTAMPTZ;
CREATE INDEX jobs_retention ON jobs (finished_at) WHERE object_key IS NOT NULL AND file_expired_at IS NULL;
CREATE INDEX batches_retention ON batches (completed_at) WHERE archive_key IS NOT NULL AND archive_expired_at IS NULL;
