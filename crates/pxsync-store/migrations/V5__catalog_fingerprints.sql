-- The catalogues as the preflight saw them, to tell later when a mapped product changed.
CREATE TABLE catalog_fingerprints (
    planexpo_event  text NOT NULL,
    side            text NOT NULL CHECK (side IN ('planexpo', 'inwink')),
    fingerprint     text NOT NULL,
    products        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, side)
);
