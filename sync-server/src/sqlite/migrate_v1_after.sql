-- Schema 1 -> 2, after schema.sql has created the new tables.
INSERT INTO component_ratings SELECT * FROM component_ratings_v1;
INSERT INTO findings SELECT * FROM findings_v1;
-- (recommendations has columns added since: name schema 1's.)
INSERT INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost)
  SELECT doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost FROM recommendations_v1;
INSERT INTO site_visits SELECT * FROM site_visits_v1;
INSERT INTO photo_refs SELECT * FROM photo_refs_v1;
DROP TABLE component_ratings_v1;
DROP TABLE findings_v1;
DROP TABLE recommendations_v1;
DROP TABLE site_visits_v1;
DROP TABLE photo_refs_v1;
