DROP TABLE notifications;
DROP TABLE outbox;
DROP TABLE jobs;
DROP TABLE batches;
DROP TABLE api_keys;
DROP TABLE projects;
DROP TABLE plans;
