-- Why a ZIP batch's archive could not be built (its message dead-lettered after the
-- delivery limit); shown as the batch's `error`.
ALTER TABLE batches ADD COLUMN archive_error TEXT;
