-- Schema 1 -> 2, before schema.sql runs: the per-change log becomes a log of
-- bundles (each old change a bundle of one, same seq so cursors stay valid),
-- snapshots become optional, and the projection tables are set aside to be
-- recreated WITHOUT ROWID.
CREATE TABLE log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, territory_id TEXT NOT NULL, doc_id TEXT NOT NULL,
  device_id TEXT NOT NULL, changes INTEGER NOT NULL, bytes BLOB);
INSERT INTO log (seq, territory_id, doc_id, device_id, changes, bytes)
  SELECT seq, territory_id, doc_id, device_id, 1, bytes FROM changes ORDER BY seq;
CREATE TABLE documents_v2 (
  doc_id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  snapshot BLOB, snap_seq INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
INSERT INTO documents_v2 (doc_id, territory_id, snapshot, snap_seq, updated_at)
  SELECT d.doc_id, d.territory_id, d.snapshot,
         COALESCE((SELECT MAX(seq) FROM changes c WHERE c.doc_id = d.doc_id), 0), d.updated_at
  FROM documents d;
DROP TABLE changes;
DROP TABLE documents;
ALTER TABLE documents_v2 RENAME TO documents;
DROP INDEX IF EXISTS photo_refs_hash;
ALTER TABLE component_ratings RENAME TO component_ratings_v1;
ALTER TABLE findings RENAME TO findings_v1;
ALTER TABLE recommendations RENAME TO recommendations_v1;
ALTER TABLE site_visits RENAME TO site_visits_v1;
ALTER TABLE photo_refs RENAME TO photo_refs_v1;
