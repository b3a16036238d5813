DROP TRIGGER plans_changed ON plans;
DROP TRIGGER projects_changed ON projects;
DROP TRIGGER api_keys_changed ON api_keys;
DROP FUNCTION enconvert_callers_changed();
