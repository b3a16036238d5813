-- Webhook signing secrets (Standard Webhooks `whsec_...`), one current per project. Rotating
-- gives the current secret an expiry (a grace period) and adds a new one; every secret not
-- yet expired signs, so receivers can switch without losing a delivery.
CREATE TABLE webhook_secrets (
    id         UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX webhook_secrets_current ON webhook_secrets (project_id) WHERE expires_at IS NULL;
CREATE INDEX webhook_secrets_project ON webhook_secrets (project_id, created_at DESC);

-- A notification row is now the whole message: what to send (`body`), where (`target`),
-- which lane of concurrency it waits in (`receiver`: a webhook's host, or `smtp`), when to
-- try next and how many tries it may have. A pending row whose `next_attempt_at` has passed
-- is due; taking it pushes `next_attempt_at` out by a lease, so a notifier that dies during
-- an attempt leaves a row that becomes due again once the lease runs out.
ALTER TABLE notifications
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN target          TEXT,
    ADD COLUMN body            TEXT,
    ADD COLUMN receiver        TEXT NOT NULL DEFAULT '',
    ADD COLUMN max_attempts    INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts > 0);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';

-- One row per attempt: the delivery log clients read.
CREATE TABLE notification_attempts (
    id              UUID PRIMARY KEY,
    notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL CHECK (attempt > 0),
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_code     INTEGER,
    latency_ms      INTEGER,
    error           TEXT,
    -- The start of the receiver's answer, at most 1 KiB.
    response_body   TEXT,
    UNIQUE (notification_id, attempt)
);
