-- The fold state and the desired state of each order as the JSON bytes the projector wrote
-- (bytea) instead of jsonb: every projected batch rewrites them, and parsing them on insert and
-- printing them on read was the largest part of the projector's time in Postgres. The few
-- operator queries that look inside them go through json_of().
ALTER TABLE order_state
    ALTER COLUMN state TYPE bytea USING convert_to(state::text, 'UTF8'),
    ALTER COLUMN desired TYPE bytea USING convert_to(desired::text, 'UTF8');
DO $$
BEGIN
    ALTER TABLE order_state ALTER COLUMN state SET COMPRESSION lz4,
                            ALTER COLUMN desired SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available: the order states stay compressed with pglz';
END $$;

-- A stored JSON value (bytea) as jsonb, for queries that look inside it.
CREATE FUNCTION json_of(value bytea) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT convert_from(value, 'UTF8')::jsonb $$;
