-- Self-healing: what was found missing or changed on inwink and what was done about it, and the
-- inwink partners that look like an order's but were created by hand before the sync.
CREATE TABLE heals (
    id              bigserial PRIMARY KEY,
    planexpo_event  text NOT NULL,
    order_id        text,
    kind            text NOT NULL,
    detail          text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX heals_order ON heals (planexpo_event, order_id, id);

CREATE TABLE likely_matches (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    partner_id      text NOT NULL,
    partner_name    text NOT NULL,
    found_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, order_id, partner_id)
);
