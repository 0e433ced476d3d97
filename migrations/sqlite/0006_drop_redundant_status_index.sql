-- deliveries_due (status, next_attempt_at, id) serves every query deliveries_by_status served
-- (it starts with the same columns); each index costs a write whenever a row changes status.
DROP INDEX IF EXISTS deliveries_by_status;
