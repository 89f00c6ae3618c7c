DROP TABLE app_review_votes;
DROP TABLE app_reviews;
DROP TABLE app_secrets;
DROP TABLE app_clients;
DROP TABLE apps;
