DROP INDEX usage_rollups_credential;
DROP TABLE app_install_log;
