DROP INDEX batches_retention;
DROP INDEX jobs_retention;
ALTER TABLE batches DROP COLUMN archive_expired_at;
ALTER TABLE jobs DROP COLUMN file_expired_at;
DROP TABLE rate_windows;
