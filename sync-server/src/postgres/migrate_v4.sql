-- Schema version 4: the year the CS moved a recommended or carried work to
-- in its works plan (a review edit; none before).
ALTER TABLE recommendations ADD COLUMN planned_year BIGINT;
ALTER TABLE carried_works ADD COLUMN planned_year BIGINT;
-- Each complex's latest and latest approved inspection (the overview).
CREATE INDEX summary_complex ON inspection_summary (territory_id, complex_id, created_at);
