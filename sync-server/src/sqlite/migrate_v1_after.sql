-- Schema 1 -> 2, after schema.sql has created the new tables.
INSERT INTO component_ratings SELECT * FROM component_ratings_v1;
INSERT INTO findings SELECT * FROM findings_v1;
INSERT INTO recommendations SELECT * FROM recommendations_v1;
INSERT INTO site_visits SELECT * FROM site_visits_v1;
INSERT INTO photo_refs SELECT * FROM photo_refs_v1;
DROP TABLE component_ratings_v1;
DROP TABLE findings_v1;
DROP TABLE recommendations_v1;
DROP TABLE site_visits_v1;
DROP TABLE photo_refs_v1;
