-- The head of each order's hash chain moves into its order_state row: a batch then reads,
-- locks and writes one row per order instead of two (the orders are serialised by an advisory
-- lock per order, which writes nothing, instead of a row lock on chain_heads).
ALTER TABLE order_state ADD COLUMN chain_hash text;
UPDATE order_state s SET chain_hash = c.hash
FROM chain_heads c
WHERE c.planexpo_event = s.planexpo_event AND c.order_id = s.order_id AND c.hash <> '';
-- An order whose events never changed its fold had a chain head and no state: it gets the
-- empty state (every order with an event now has a row).
INSERT INTO order_state (planexpo_event, order_id, revision, state, chain_hash)
SELECT c.planexpo_event, c.order_id, 0,
       convert_to('{"snapshot":null,"problems_revision":0,"problems":[],"whole_order_rejected":false}', 'UTF8'),
       c.hash
FROM chain_heads c
WHERE c.hash <> ''
  AND NOT EXISTS (SELECT 1 FROM order_state s
                  WHERE s.planexpo_event = c.planexpo_event AND s.order_id = c.order_id);
DROP TABLE chain_heads;

-- Room for HOT updates of the emitter's queue: the projector marks an order at every change.
ALTER TABLE work_queue SET (fillfactor = 70);
