-- The event log keeps each payload as the exact bytes its chain hash covers (bytea), not as
-- jsonb. Postgres never parses them on insert nor prints them back as text on read: both were
-- most of the projector's and the replay's time in Postgres, and neither ever queried inside a
-- payload. Existing payloads are converted to their JSON text; they keep their format (1 or 2),
-- whose verification re-canonicalises the JSON, so every chain still verifies.
-- 3: personal fields sealed, hash over the stored bytes exactly (canonical JSON, sorted keys).
-- The append-only triggers fire on UPDATE, DELETE and TRUNCATE, not on this rewrite.
ALTER TABLE event_log ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8');
DO $$
BEGIN
    ALTER TABLE event_log ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available: event_log payloads stay compressed with pglz';
END $$;
