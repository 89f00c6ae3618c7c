DROP TABLE operation_costs;
