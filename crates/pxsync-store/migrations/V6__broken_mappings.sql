-- Mapped products that inwink no longer knows (deleted or re-identified after set-up): their
-- lines wait until the mask is fixed and imported again; every other product keeps syncing.
CREATE TABLE broken_mappings (
    planexpo_event     text NOT NULL,
    inwink_product_id  text NOT NULL,
    mask_row           integer,
    reason             text NOT NULL,
    found_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, inwink_product_id)
);
