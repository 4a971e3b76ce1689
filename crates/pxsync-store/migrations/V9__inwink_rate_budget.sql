-- The optional rate cap of an inwink event, shared by every emitter process of the namespace:
-- calls are spaced on one timeline per inwink event. `next_slot` is the instant from which the
-- next call may be sent; taking n calls moves it n intervals past max(next_slot, now).
CREATE TABLE inwink_rate_budgets (
    inwink_event_id text PRIMARY KEY,
    next_slot timestamptz NOT NULL
);
