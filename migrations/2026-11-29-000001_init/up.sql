-- Plans are data: the contract's table is the seed, operators may edit it.
CREATE TABLE plans (
    name                TEXT PRIMARY KEY,
    async_mode          BOOLEAN NOT NULL,
    batch_polling       BOOLEAN NOT NULL,
    email_notifications BOOLEAN NOT NULL,
    has_webhook         BOOLEAN NOT NULL,
    zip_output          BOOLEAN NOT NULL,
    target_auth         BOOLEAN NOT NULL,
    discovery           TEXT NOT NULL CHECK (discovery IN ('none', 'sitemap', 'full')),
    batch_limit         INTEGER NOT NULL CHECK (batch_limit > 0),
    rpm_private         INTEGER NOT NULL CHECK (rpm_private > 0),
    rpm_public          INTEGER NOT NULL CHECK (rpm_public > 0),
    retention_hours     INTEGER NOT NULL CHECK (retention_hours > 0)
);

INSERT INTO plans VALUES
    ('free',       false, false, false, false, false, false, 'none',    1,    10,   5,   1),
    ('starter',    true,  true,  true,  false, true,  true,  'sitemap', 25,   60,   25,  24),
    ('pro',        true,  true,  true,  true,  true,  true,  'full',    100,  300,  75,  72),
    ('enterprise', true,  true,  true,  true,  true,  true,  'full',    1000, 1000, 150, 168);

CREATE TABLE projects (
    id                    UUID PRIMARY KEY,
    name                  TEXT NOT NULL,
    owner_email           TEXT NOT NULL,
    plan                  TEXT NOT NULL REFERENCES plans (name),
    default_email_enabled BOOLEAN NOT NULL DEFAULT true,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projects_name_key ON projects (name);

-- Only a SHA-256 of each key is stored; `prefix` is for display and look-up by people.
CREATE TABLE api_keys (
    id         UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('private', 'public')),
    prefix     TEXT NOT NULL,
    key_hash   BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_project ON api_keys (project_id);

CREATE TABLE batches (
    id                 UUID PRIMARY KEY,
    project_id         UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    endpoint           TEXT NOT NULL,
    output_mode        TEXT NOT NULL CHECK (output_mode IN ('individual', 'zip')),
    is_async           BOOLEAN NOT NULL,
    total              INTEGER NOT NULL CHECK (total >= 0),
    succeeded          INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    options            JSONB NOT NULL,
    output_filename    TEXT,
    notification_email TEXT,
    callback_url       TEXT,
    -- ZIP mode: 'pending' until the archive is stored ('stored') or given up ('failed').
    archive_status     TEXT CHECK (archive_status IN ('pending', 'stored', 'failed')),
    archive_key        TEXT,
    archive_filename   TEXT,
    archive_size       BIGINT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at       TIMESTAMPTZ,
    CHECK (succeeded + failed <= total)
);
CREATE INDEX batches_project_created ON batches (project_id, created_at DESC);

CREATE TABLE jobs (
    id            UUID PRIMARY KEY,
    batch_id      UUID NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    project_id    UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    client_job_id TEXT,
    position      INTEGER NOT NULL,
    source_url    TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'rendering', 'success', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- A rendering job belongs to its worker until this time; afterwards another may take it.
    lease_until   TIMESTAMPTZ,
    object_key    TEXT,
    filename      TEXT,
    file_size     BIGINT,
    duration_ms   INTEGER,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX jobs_batch_position ON jobs (batch_id, position);
CREATE UNIQUE INDEX jobs_client_job_id ON jobs (project_id, client_job_id) WHERE client_job_id IS NOT NULL;
CREATE INDEX jobs_unfinished ON jobs (status, lease_until) WHERE status IN ('queued', 'rendering');

-- Messages written in the same transaction as the state they announce; a relay publishes
-- them with publisher confirms and deletes them. Nothing is lost between commit and publish.
CREATE TABLE outbox (
    id             BIGSERIAL PRIMARY KEY,
    exchange       TEXT NOT NULL,
    routing_key    TEXT NOT NULL,
    message_id     UUID NOT NULL,
    message_type   TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    payload        JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per (subject, channel): the claim that makes a duplicated event send nothing twice.
CREATE TABLE notifications (
    id           UUID PRIMARY KEY,
    batch_id     UUID NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    job_id       UUID REFERENCES jobs (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    UNIQUE (subject, channel)
);
CREATE INDEX notifications_batch ON notifications (batch_id);
