ALTER TABLE organizations DROP COLUMN plan_id;
DROP TABLE plans;
