//! The device database's schema and its version (migrations run in
//! [`super::DeviceStore::open`]).

/// Schema version of the device database written by this build.
pub(super) const DEVICE_SCHEMA_VERSION: i64 = 4;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offices (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS complexes (id TEXT PRIMARY KEY, json TEXT NOT NULL);
-- Schema 3: the visits the CS planned (bilan_shared::planning::Assignment),
-- one per complex (its id); a withdrawn one is deleted.
CREATE TABLE IF NOT EXISTS assignments (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, snapshot BLOB, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, hash BLOB NOT NULL, bytes BLOB NOT NULL,
  local INTEGER NOT NULL, acked INTEGER NOT NULL, in_snapshot INTEGER NOT NULL DEFAULT 0,
  UNIQUE (doc_id, hash));
CREATE INDEX IF NOT EXISTS changes_outbox ON changes (acked, id);
-- Rows of `changes` not yet acknowledged by the server (schema 2; in schema 1
-- the `acked` column was the queue, now it only says where a row came from).
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY);
CREATE INDEX IF NOT EXISTS changes_doc ON changes (doc_id, in_snapshot);
CREATE TABLE IF NOT EXISTS summaries (
  doc_id TEXT PRIMARY KEY, complex_id TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,
  rated INTEGER NOT NULL, present INTEGER NOT NULL, findings INTEGER NOT NULL, cost_5y REAL NOT NULL,
  conflicts INTEGER NOT NULL DEFAULT 0, comments INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS summaries_complex ON summaries (complex_id, created_at);
CREATE TABLE IF NOT EXISTS photos (
  hash TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  -- Schema 4: the camera's original of a reduced photo, kept until the
  -- reduced one is on the server (then deleted unless the CS keeps them).
  original TEXT);
";
