DROP TABLE feature_flag_overrides;
DROP TABLE feature_flags;
