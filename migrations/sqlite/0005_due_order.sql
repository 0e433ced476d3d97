-- Claiming walks the due rows in order (next_attempt_at, id) through this index, so its cost
-- does not grow with the size of the queue. A pending row always has next_attempt_at set.
UPDATE deliveries SET next_attempt_at = updated_at
 WHERE status = 'pending' AND next_attempt_at IS NULL;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at, id);
