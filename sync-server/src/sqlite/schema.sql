-- Server database, schema version 3 (PRAGMA user_version; store.rs migrates
-- older versions). Every table with
-- inspection data carries territory_id and every query filters on it.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS territories (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offices (
  id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  code TEXT NOT NULL, name TEXT NOT NULL, rev INTEGER NOT NULL,
  UNIQUE (territory_id, code));
CREATE TABLE IF NOT EXISTS complexes (
  id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  office_id TEXT NOT NULL REFERENCES offices(id), code TEXT NOT NULL, name TEXT NOT NULL,
  address TEXT NOT NULL, city TEXT NOT NULL, dwellings INTEGER NOT NULL, year_built INTEGER NOT NULL,
  replacement_value REAL NOT NULL, rev INTEGER NOT NULL,
  UNIQUE (territory_id, code));
CREATE INDEX IF NOT EXISTS complexes_rev ON complexes (territory_id, rev);
CREATE INDEX IF NOT EXISTS offices_rev ON offices (territory_id, rev);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL, role TEXT NOT NULL,
  territory_id TEXT REFERENCES territories(id), office_id TEXT REFERENCES offices(id),
  password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), device_id TEXT,
  created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_id);
-- Failed logins per user name (known or not, so names cannot be probed).
CREATE TABLE IF NOT EXISTS login_failures (
  username TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked_until INTEGER NOT NULL);
-- Failed logins per client address within a window (password spraying
-- across many names from one place). Added without a version change.
CREATE TABLE IF NOT EXISTS address_failures (
  address TEXT PRIMARY KEY, failures INTEGER NOT NULL, window_start INTEGER NOT NULL,
  locked_until INTEGER NOT NULL);
-- A document is its snapshot (covering the log up to snap_seq; NULL before
-- the first compaction) plus its log bundles after snap_seq.
CREATE TABLE IF NOT EXISTS documents (
  doc_id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  snapshot BLOB, snap_seq INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
-- The territory's log: one row per document per accepted push, holding the
-- changes new to the server as one automerge bundle. Devices pull it by seq.
-- Compaction clears the bytes of rows folded into the snapshot; pulls then
-- send the snapshot.
-- `at`: when the row was written (ms); compaction keeps the bytes of rows
-- younger than the retention, so a device a little behind gets bundles.
-- Rows after meta.merged_seq wait for the merger (merge.rs); `rejected` (an
-- error code) and `reason` mark a row the merger refused: kept, never served.
CREATE TABLE IF NOT EXISTS log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, territory_id TEXT NOT NULL, doc_id TEXT NOT NULL,
  device_id TEXT NOT NULL, changes INTEGER NOT NULL, bytes BLOB, at INTEGER NOT NULL DEFAULT 0,
  rejected TEXT, reason TEXT);
-- Pulls walk a territory's log by seq on the covering index `log_pull`
-- (created after the migrations, in store.rs, as it needs `rejected`).
CREATE INDEX IF NOT EXISTS log_doc_seq ON log (doc_id, seq);
CREATE TABLE IF NOT EXISTS photos (
  hash TEXT PRIMARY KEY, size INTEGER NOT NULL, mime TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS photo_access (
  hash TEXT NOT NULL, territory_id TEXT NOT NULL, PRIMARY KEY (hash, territory_id));
-- Projection, rewritten for a document in the same transaction as its changes.
CREATE TABLE IF NOT EXISTS inspection_summary (
  doc_id TEXT PRIMARY KEY, territory_id TEXT NOT NULL, office_id TEXT NOT NULL, complex_id TEXT NOT NULL,
  status TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  rated INTEGER NOT NULL, present INTEGER NOT NULL, findings INTEGER NOT NULL,
  total_cost REAL NOT NULL, cost_5y REAL NOT NULL, conflicts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS summary_territory ON inspection_summary (territory_id, office_id, status);
CREATE TABLE IF NOT EXISTS component_ratings (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, code TEXT NOT NULL, rating TEXT, present INTEGER, note TEXT NOT NULL,
  PRIMARY KEY (doc_id, code)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, finding_id TEXT NOT NULL, component TEXT NOT NULL,
  title TEXT NOT NULL, location TEXT NOT NULL, severity TEXT NOT NULL, photos INTEGER NOT NULL,
  cost REAL NOT NULL, cost_5y REAL NOT NULL, PRIMARY KEY (doc_id, finding_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recommendations (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, finding_id TEXT NOT NULL, rec_id TEXT NOT NULL,
  work TEXT NOT NULL, urgency TEXT NOT NULL, quantity REAL NOT NULL, unit TEXT NOT NULL,
  unit_cost REAL NOT NULL, cost REAL NOT NULL, planned_year INTEGER, PRIMARY KEY (doc_id, rec_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site_visits (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, visit_id TEXT NOT NULL, date TEXT NOT NULL,
  inspector TEXT NOT NULL, hours_on_site REAL NOT NULL, travel_hours REAL NOT NULL, km REAL NOT NULL,
  expenses REAL NOT NULL, PRIMARY KEY (doc_id, visit_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS photo_refs (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, office_id TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (doc_id, hash)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS photo_refs_hash ON photo_refs (hash);
-- Audit log of review decisions and administrative actions (append only;
-- see audit.rs). Added without a schema version change: every open creates
-- it if missing.
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, territory_id TEXT,
  actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_territory ON audit (territory_id, seq);
-- Work recommended at a previous BSI as an inspection carries it, with the
-- status its inspector set (see bilan_shared::previous); the works plan
-- counts the open ones. Added without a schema version change: every open
-- creates it if missing (documents of earlier builds carry none).
CREATE TABLE IF NOT EXISTS carried_works (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, rec_id TEXT NOT NULL, component TEXT NOT NULL,
  work TEXT NOT NULL, urgency TEXT NOT NULL, cost REAL NOT NULL, recommended_at INTEGER NOT NULL,
  status TEXT, done_year INTEGER, done_cost REAL, planned_year INTEGER, PRIMARY KEY (doc_id, rec_id)) WITHOUT ROWID;
-- Each complex's latest and latest approved inspection (the overview, the
-- progress export): read in (complex, date) order. An index only: every
-- open creates it if missing.
CREATE INDEX IF NOT EXISTS summary_complex ON inspection_summary (territory_id, complex_id, created_at);
-- Schema 6: who visits each complex and when (the CS's planning of the
-- cycle). A withdrawn visit keeps its row without an inspector, with a new
-- revision, so devices learn it with the reference data.
CREATE TABLE IF NOT EXISTS assignments (
  complex_id TEXT PRIMARY KEY REFERENCES complexes(id), territory_id TEXT NOT NULL,
  inspector_id TEXT REFERENCES users(id), planned TEXT, assigned_by TEXT, at INTEGER NOT NULL,
  rev INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS assignments_rev ON assignments (territory_id, rev);
