-- The trace context of the newest event folded into each order: the emitter's reconcile span
-- continues that trace and links to it.
ALTER TABLE order_state ADD COLUMN traceparent text;
