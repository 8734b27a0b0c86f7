-- Server database, schema version 1 (PRAGMA user_version). Every table with
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
CREATE TABLE IF NOT EXISTS documents (
  doc_id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  snapshot BLOB NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, territory_id TEXT NOT NULL, doc_id TEXT NOT NULL,
  hash BLOB NOT NULL, device_id TEXT NOT NULL, bytes BLOB NOT NULL,
  UNIQUE (doc_id, hash));
CREATE INDEX IF NOT EXISTS changes_territory_seq ON changes (territory_id, seq);
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
  PRIMARY KEY (doc_id, code));
CREATE TABLE IF NOT EXISTS findings (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, finding_id TEXT NOT NULL, component TEXT NOT NULL,
  title TEXT NOT NULL, location TEXT NOT NULL, severity TEXT NOT NULL, photos INTEGER NOT NULL,
  cost REAL NOT NULL, cost_5y REAL NOT NULL, PRIMARY KEY (doc_id, finding_id));
CREATE TABLE IF NOT EXISTS recommendations (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, finding_id TEXT NOT NULL, rec_id TEXT NOT NULL,
  work TEXT NOT NULL, urgency TEXT NOT NULL, quantity REAL NOT NULL, unit TEXT NOT NULL,
  unit_cost REAL NOT NULL, cost REAL NOT NULL, PRIMARY KEY (doc_id, rec_id));
CREATE TABLE IF NOT EXISTS site_visits (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, visit_id TEXT NOT NULL, date TEXT NOT NULL,
  inspector TEXT NOT NULL, hours_on_site REAL NOT NULL, travel_hours REAL NOT NULL, km REAL NOT NULL,
  expenses REAL NOT NULL, PRIMARY KEY (doc_id, visit_id));
CREATE TABLE IF NOT EXISTS photo_refs (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, office_id TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (doc_id, hash));
CREATE INDEX IF NOT EXISTS photo_refs_hash ON photo_refs (hash);
