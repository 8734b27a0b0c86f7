-- Schema version 5: who visits each complex and when (the CS's planning of
-- the cycle). A withdrawn visit keeps its row without an inspector, with a
-- new revision, so devices learn it with the reference data.
CREATE TABLE assignments (
  complex_id TEXT PRIMARY KEY REFERENCES complexes(id), territory_id TEXT NOT NULL,
  inspector_id TEXT REFERENCES users(id), planned TEXT, assigned_by TEXT, at BIGINT NOT NULL,
  rev BIGINT NOT NULL);
CREATE INDEX assignments_rev ON assignments (territory_id, rev);
