-- The projector's rows are just over the size at which Postgres compresses a row's large values
-- (about 2 kB): every event_log payload and order_state state/desired went through pglz on
-- insert. lz4 compresses them several times faster for about the same size. Existing values
-- stay as they are (a value is compressed once, when it is written); reading either is
-- transparent, so no reader changes. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE event_log ALTER COLUMN payload SET COMPRESSION lz4;
    ALTER TABLE order_state ALTER COLUMN state SET COMPRESSION lz4,
                            ALTER COLUMN desired SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available: the projector''s values stay compressed with pglz';
END $$;

-- Every projected batch rewrites the chain head and the state of each order it touches. Room
-- left on each page lets Postgres write the new row version beside the old one without new
-- index entries (a HOT update: no indexed column changes), and prune the old one in place.
ALTER TABLE chain_heads SET (fillfactor = 50);
ALTER TABLE order_state SET (fillfactor = 70);
