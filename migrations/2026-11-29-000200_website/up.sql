-- Website batches: the api writes the batch with no jobs and a `discover` message; the worker
-- finds the pages, then inserts one job per page and sets `total`.
ALTER TABLE batches
    ADD COLUMN discovery_status TEXT CHECK (discovery_status IN ('pending', 'done', 'failed')),
    ADD COLUMN discovery_method TEXT CHECK (discovery_method IN ('sitemap', 'full_crawl')),
    -- Distinct pages found; can exceed `total` when the plan's batch_limit cut the list.
    ADD COLUMN total_discovered INTEGER,
    -- What the worker needs (start URL, method, patterns, page limit), fixed at submit time.
    ADD COLUMN discovery_request JSONB,
    -- Why discovery found nothing (the batch is then `failed`).
    ADD COLUMN discovery_error TEXT;
