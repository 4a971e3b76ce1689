-- The mask's prerequisites sheet as imported (ids and references, never a secret), so the
-- preflight can check it against the deployment's configuration.
ALTER TABLE mask_versions ADD COLUMN prerequisites jsonb;

-- A broken mapping is found on either side: a mapped product renamed, removed or re-identified
-- on Planexpo (the ingestor compares the catalogue with its fingerprint each cycle) or on
-- inwink (the inspector and the writes). The row's inwink product is the one whose lines wait.
ALTER TABLE broken_mappings
    ADD COLUMN side text NOT NULL DEFAULT 'inwink' CHECK (side IN ('planexpo', 'inwink')),
    ADD COLUMN planexpo_product_id text;

-- A mask import that points a Planexpo product at another inwink product: one record per
-- product and version, shown by status (instead of refused decreases of the old product).
CREATE TABLE mask_remaps (
    planexpo_event          text NOT NULL,
    version                 integer NOT NULL,
    planexpo_product_id     text NOT NULL,
    planexpo_product_name   text NOT NULL,
    from_inwink_product_id  text NOT NULL,
    to_inwink_product_id    text NOT NULL,
    mask_row                integer NOT NULL,
    recorded_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, version, planexpo_product_id)
);
