-- The ingestor reads its memory of a feed page's orders (up to 500) by primary key. Planned from
-- statistics, that read was a gamble on a first pass, when the table fills faster than
-- autovacuum analyses it: the planner either kept a sequential scan chosen while the table was
-- nearly empty (a cached generic plan), or, with no statistics, expected the whole salon to match
-- and scanned it for each page (measured: a 100,000-order first pass took 23 s instead of 2 s, a
-- single page read up to 200 ms instead of 1 ms). The read is a set of key lookups whatever the
-- statistics say: one index probe per order id, in a function whose planner settings say so.
CREATE FUNCTION ingest_memory(event text, order_ids text[])
RETURNS TABLE (order_id text, previous bytea)
LANGUAGE sql STABLE
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
    SELECT i.order_id, i.previous
    FROM unnest(order_ids) AS k(order_id)
    JOIN ingest_orders i ON i.planexpo_event = event AND i.order_id = k.order_id
$$;
-- The table is the namespace's own, whoever calls: the function's search path is the schema it
-- is created in, with the session's temporary tables last instead of first.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ingest_memory(text, text[]) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
