DROP TABLE org_export_chunks;
DROP TABLE org_exports;
