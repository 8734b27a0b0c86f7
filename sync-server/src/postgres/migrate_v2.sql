-- Schema version 2: the log's bundles and the documents' snapshots are
-- already compressed (zstd, automerge's own columns), so PostgreSQL keeps
-- them out of line without trying to compress them again. Applies to rows
-- written from now on; older rows stay readable as they are.
ALTER TABLE log ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE documents ALTER COLUMN snapshot SET STORAGE EXTERNAL;
