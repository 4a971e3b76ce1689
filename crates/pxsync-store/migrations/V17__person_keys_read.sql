-- The projector reads the keys of a batch's persons (up to a few hundred) by e-mail digest. The
-- digest's index is partial (an erased person has none), so without statistics the planner
-- cannot count on one row per digest: it expected the whole table to match and scanned it for
-- each batch until autovacuum analysed the table (measured in a first import of 50,000 orders:
-- 170 scans reading 2.9 million rows). The read is a set of key lookups whatever the statistics
-- say: one index probe per digest, in a function whose planner settings say so (as V16 does
-- for the ingestor's memory).
CREATE FUNCTION person_keys_by_digest(digests text[])
RETURNS TABLE (email_digest text, person_id uuid, key bytea)
LANGUAGE sql STABLE
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
    SELECT p.email_digest, p.person_id, p.key
    FROM person_keys p
    WHERE p.email_digest = ANY(digests) AND p.email_digest IS NOT NULL AND p.key IS NOT NULL
$$;
-- The table is the namespace's own, whoever calls: the function's search path is the schema it
-- is created in, with the session's temporary tables last instead of first.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION person_keys_by_digest(text[]) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
