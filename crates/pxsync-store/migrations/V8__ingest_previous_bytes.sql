-- The ingestor's memory of each order is read and written on every feed page and never queried
-- inside: keep it as the JSON bytes serde wrote (no jsonb parse on write, no jsonb output on read).
ALTER TABLE ingest_orders ALTER COLUMN previous TYPE bytea USING convert_to(previous::text, 'UTF8');
