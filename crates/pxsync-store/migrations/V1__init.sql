-- pxsync schema, version 1. Every table lives in the namespace's schema (search_path is set by
-- the connection), so two namespaces on one server never see each other.

-- One row per Planexpo event (salon) served.
CREATE TABLE salons (
    planexpo_event   text PRIMARY KEY,
    inwink_event_id  text NOT NULL,
    enabled          boolean NOT NULL DEFAULT false,
    enabled_at       timestamptz,
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Mask imports are versioned, never overwritten: a replay "as of" a date uses the mask then in force.
CREATE TABLE mask_versions (
    planexpo_event  text NOT NULL,
    version         integer NOT NULL,
    valid_from      timestamptz NOT NULL DEFAULT now(),
    source          text NOT NULL,
    mask            jsonb NOT NULL,
    PRIMARY KEY (planexpo_event, version)
);

-- Ingestor: the feed watermark, and what it remembers of each order (last revision, snapshot).
CREATE TABLE ingest_watermarks (
    planexpo_event  text PRIMARY KEY,
    updated_at      timestamptz NOT NULL,
    order_id        text NOT NULL,
    saved_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ingest_orders (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    revision        bigint NOT NULL,
    previous        jsonb NOT NULL,
    PRIMARY KEY (planexpo_event, order_id)
);
-- Orders that could not even be identified (no id, revision...): nothing to attach them to.
CREATE TABLE feed_problems (
    id              bigserial PRIMARY KEY,
    planexpo_event  text NOT NULL,
    order_id        text,
    message         text NOT NULL,
    seen_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (planexpo_event, message)
);

-- The durable, append-only record of every event. `position` orders insertion for audits; readers
-- that follow the log by position must allow for gaps left by transactions still in flight.
CREATE TABLE event_log (
    position        bigserial UNIQUE NOT NULL,
    event_id        uuid PRIMARY KEY,
    kind            text NOT NULL,
    schema_version  integer NOT NULL,
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    revision        bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    projected_at    timestamptz NOT NULL DEFAULT now(),
    traceparent     text,
    payload         jsonb NOT NULL,
    prev_hash       text,
    hash            text NOT NULL
);
CREATE INDEX event_log_order ON event_log (planexpo_event, order_id, position);

CREATE FUNCTION event_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER event_log_no_update BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_append_only();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_append_only();

-- The head of each order's hash chain (row-locked while a batch extends it).
CREATE TABLE chain_heads (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    hash            text NOT NULL,
    PRIMARY KEY (planexpo_event, order_id)
);

-- Projector: the fold state and the desired inwink state of each order.
CREATE TABLE order_state (
    planexpo_event   text NOT NULL,
    order_id         text NOT NULL,
    revision         bigint NOT NULL,
    state            jsonb NOT NULL,
    desired          jsonb,
    parent_order_id  text,
    email_key        text,
    updated_at       timestamptz,
    PRIMARY KEY (planexpo_event, order_id)
);
CREATE INDEX order_state_parent ON order_state (planexpo_event, parent_order_id) WHERE parent_order_id IS NOT NULL;
CREATE INDEX order_state_email ON order_state (planexpo_event, email_key) WHERE email_key IS NOT NULL;

-- Undecodable events, parked for an operator.
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    stream_seq      bigint NOT NULL,
    subject         text NOT NULL,
    reason          text NOT NULL,
    payload         bytea NOT NULL,
    planexpo_event  text,
    order_id        text,
    status          text NOT NULL DEFAULT 'open',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_seq, subject)
);

-- Emitter work queue: one row per order. The projector bumps mark_seq; a claim finishes as done
-- only if mark_seq did not move meanwhile (no lost wake-up).
CREATE TABLE work_queue (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'waiting', 'parked', 'done')),
    mark_seq        bigint NOT NULL DEFAULT 1,
    not_before      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    claimed_by      text,
    claimed_until   timestamptz,
    reason          text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, order_id)
);
CREATE INDEX work_queue_ready ON work_queue (not_before) WHERE state IN ('pending', 'waiting');

-- What inwink holds, as far as pxsync knows (applied as soon as inwink answered).
CREATE TABLE applied_partners (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    partner_id      text,
    sent            jsonb,
    uncertain       boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, order_id)
);
CREATE INDEX applied_partners_id ON applied_partners (planexpo_event, partner_id);
CREATE TABLE applied_participants (
    planexpo_event  text NOT NULL,
    email_key       text NOT NULL,
    participant_id  text,
    sent            jsonb,
    uncertain       boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, email_key)
);
CREATE TABLE applied_links (
    planexpo_event  text NOT NULL,
    partner_id      text NOT NULL,
    participant_id  text NOT NULL,
    link_id         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, partner_id, participant_id)
);
-- Floors: the highest quantity applied to or observed on the order's partner (kept across a
-- recreation of the partner, so that it is restored, never lowered).
CREATE TABLE applied_quantities (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    product_id      text NOT NULL,
    floor           integer NOT NULL,
    uncertain       boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, order_id, product_id)
);
CREATE TABLE refused_decreases (
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    product_id      text NOT NULL,
    floor           integer NOT NULL,
    desired         integer NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (planexpo_event, order_id, product_id, floor, desired)
);
-- Every call to inwink (no personal values).
CREATE TABLE inwink_calls (
    id              bigserial PRIMARY KEY,
    planexpo_event  text NOT NULL,
    order_id        text NOT NULL,
    operation       text NOT NULL,
    method          text NOT NULL,
    route           text NOT NULL,
    status          integer,
    code            text,
    outcome         text NOT NULL,
    trace_id        text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inwink_calls_order ON inwink_calls (planexpo_event, order_id, id);

-- The highest stream sequence each projector committed (informational: JetStream's durable
-- consumer tracks acknowledgements; this shows lag and survives a stream recreation).
CREATE TABLE projector_checkpoints (
    stream          text PRIMARY KEY,
    stream_seq      bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
