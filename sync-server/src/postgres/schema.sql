-- Server database on PostgreSQL, schema version 1 (table schema_version;
-- migrate.rs applies it, then the later versions' steps, migrate_v2.sql
-- and on, and refuses a newer one). Frozen: a change is a new step. The same tables as the
-- SQLite backend's: every table with inspection data carries territory_id
-- and every query filters on it. Ids are text (UUID v7 strings), times are
-- milliseconds since the epoch, automerge bytes are bytea.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE territories (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE SEQUENCE ref_rev;
CREATE TABLE offices (
  id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  code TEXT NOT NULL, name TEXT NOT NULL, rev BIGINT NOT NULL,
  UNIQUE (territory_id, code));
CREATE TABLE complexes (
  id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  office_id TEXT NOT NULL REFERENCES offices(id), code TEXT NOT NULL, name TEXT NOT NULL,
  address TEXT NOT NULL, city TEXT NOT NULL, dwellings INTEGER NOT NULL, year_built INTEGER NOT NULL,
  replacement_value DOUBLE PRECISION NOT NULL, rev BIGINT NOT NULL,
  UNIQUE (territory_id, code));
CREATE INDEX complexes_rev ON complexes (territory_id, rev);
CREATE INDEX offices_rev ON offices (territory_id, rev);
CREATE TABLE users (
  id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL, role TEXT NOT NULL,
  territory_id TEXT REFERENCES territories(id), office_id TEXT REFERENCES offices(id),
  password_hash TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), device_id TEXT,
  created_at BIGINT NOT NULL, revoked_at BIGINT);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE TABLE login_failures (
  username TEXT PRIMARY KEY, failures BIGINT NOT NULL, locked_until BIGINT NOT NULL);
CREATE TABLE address_failures (
  address TEXT PRIMARY KEY, failures BIGINT NOT NULL, window_start BIGINT NOT NULL,
  locked_until BIGINT NOT NULL);
CREATE TABLE documents (
  doc_id TEXT PRIMARY KEY, territory_id TEXT NOT NULL REFERENCES territories(id),
  snapshot BYTEA, snap_seq BIGINT NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL);
CREATE TABLE log (
  seq BIGSERIAL PRIMARY KEY, territory_id TEXT NOT NULL, doc_id TEXT NOT NULL,
  device_id TEXT NOT NULL, changes BIGINT NOT NULL, bytes BYTEA, at BIGINT NOT NULL,
  rejected TEXT, reason TEXT);
CREATE INDEX log_doc_seq ON log (doc_id, seq);
CREATE INDEX log_pull ON log (territory_id, seq) INCLUDE (device_id, rejected);
CREATE TABLE photos (
  hash TEXT PRIMARY KEY, size BIGINT NOT NULL, mime TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE photo_access (
  hash TEXT NOT NULL, territory_id TEXT NOT NULL, PRIMARY KEY (hash, territory_id));
CREATE TABLE inspection_summary (
  doc_id TEXT PRIMARY KEY, territory_id TEXT NOT NULL, office_id TEXT NOT NULL, complex_id TEXT NOT NULL,
  status TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  rated INTEGER NOT NULL, present INTEGER NOT NULL, findings INTEGER NOT NULL,
  total_cost DOUBLE PRECISION NOT NULL, cost_5y DOUBLE PRECISION NOT NULL, conflicts INTEGER NOT NULL);
CREATE INDEX summary_territory ON inspection_summary (territory_id, office_id, status);
CREATE TABLE component_ratings (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, code TEXT NOT NULL, rating TEXT, present BOOLEAN,
  note TEXT NOT NULL, PRIMARY KEY (doc_id, code));
CREATE TABLE findings (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, finding_id TEXT NOT NULL, component TEXT NOT NULL,
  title TEXT NOT NULL, location TEXT NOT NULL, severity TEXT NOT NULL, photos INTEGER NOT NULL,
  cost DOUBLE PRECISION NOT NULL, cost_5y DOUBLE PRECISION NOT NULL, PRIMARY KEY (doc_id, finding_id));
CREATE TABLE recommendations (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, finding_id TEXT NOT NULL, rec_id TEXT NOT NULL,
  work TEXT NOT NULL, urgency TEXT NOT NULL, quantity DOUBLE PRECISION NOT NULL, unit TEXT NOT NULL,
  unit_cost DOUBLE PRECISION NOT NULL, cost DOUBLE PRECISION NOT NULL, PRIMARY KEY (doc_id, rec_id));
CREATE TABLE site_visits (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, visit_id TEXT NOT NULL, date TEXT NOT NULL,
  inspector TEXT NOT NULL, hours_on_site DOUBLE PRECISION NOT NULL, travel_hours DOUBLE PRECISION NOT NULL,
  km DOUBLE PRECISION NOT NULL, expenses DOUBLE PRECISION NOT NULL, PRIMARY KEY (doc_id, visit_id));
CREATE TABLE photo_refs (
  doc_id TEXT NOT NULL, territory_id TEXT NOT NULL, office_id TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (doc_id, hash));
CREATE INDEX photo_refs_hash ON photo_refs (hash);
CREATE TABLE audit (
  seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, territory_id TEXT,
  actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX audit_territory ON audit (territory_id, seq);
