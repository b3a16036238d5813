-- Dashboard sign-ins. The cookie carries a random token; only its SHA-256 is stored. A
-- session belongs to the key it signed in with: revoking that key ends it, and so do
-- signing out (the row is deleted) and `expires_at`. `csrf_token` is the per-session token
-- every state-changing form must send back.
CREATE TABLE dashboard_sessions (
    token_hash BYTEA PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key_id     UUID NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_project ON dashboard_sessions (project_id);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
