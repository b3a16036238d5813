-- api processes keep the callers they have authenticated (key, project, plan) in memory. Any
-- change to those rows, by whatever path (the dashboard, `enconvert-admin`, plain SQL),
-- announces itself on this channel at commit, and every api process drops what it kept.
CREATE FUNCTION enconvert_callers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('enconvert_callers_changed', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION enconvert_callers_changed();
CREATE TRIGGER projects_changed AFTER UPDATE OR DELETE OR TRUNCATE ON projects
  FOR EACH STATEMENT EXECUTE FUNCTION enconvert_callers_changed();
CREATE TRIGGER plans_changed AFTER UPDATE OR DELETE OR TRUNCATE ON plans
  FOR EACH STATEMENT EXECUTE FUNCTION enconvert_callers_changed();
