DROP TABLE oauth_tokens;
DROP TABLE oauth_codes;
DROP TABLE app_installations;
