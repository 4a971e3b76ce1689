-- Personal data: the booking contact's personal fields are stored in event_log sealed with a
-- per-person key (ChaCha20-Poly1305). Erasing a person deletes the key (and the e-mail digest),
-- so the log needs no rewrite and replays still run, showing the person as erased.
CREATE TABLE person_keys (
    person_id     uuid PRIMARY KEY,
    -- SHA-256 (hex) of the trimmed, lowercased e-mail; NULL once erased. Never the e-mail itself.
    email_digest  text,
    -- 32 bytes; NULL once erased.
    key           bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    erased_at     timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
-- One live key per person; after an erasure a later observation of the same person gets a new key.
CREATE UNIQUE INDEX person_keys_digest ON person_keys (email_digest) WHERE email_digest IS NOT NULL;

-- Which person's key seals the event's contact (NULL: no contact, or an event logged before V7).
ALTER TABLE event_log ADD COLUMN person_id uuid;
-- 1: payload in clear, hash over the re-encoded envelope (events logged before V7);
-- 2: personal fields sealed, hash over the stored payload's canonical JSON (sorted keys).
ALTER TABLE event_log ADD COLUMN payload_format smallint NOT NULL DEFAULT 1;
