DROP TABLE api_key_ips;
