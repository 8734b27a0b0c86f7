-- Schema version 3: work recommended at a previous BSI as an inspection
-- carries it, with the status its inspector set (see
-- bilan_shared::previous); the works plan counts the open ones.
CREATE TABLE carried_works (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, rec_id TEXT NOT NULL, component TEXT NOT NULL,
  work TEXT NOT NULL, urgency TEXT NOT NULL, cost DOUBLE PRECISION NOT NULL, recommended_at BIGINT NOT NULL,
  status TEXT, done_year BIGINT, done_cost DOUBLE PRECISION, PRIMARY KEY (doc_id, rec_id));
