ALTER TABLE batches DROP COLUMN archive_error;
