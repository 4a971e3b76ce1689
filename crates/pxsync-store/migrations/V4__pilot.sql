-- A pilot: while set, only these orders of the salon are written to inwink.
ALTER TABLE salons ADD COLUMN pilot_orders text[];
