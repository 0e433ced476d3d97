-- Every write of a delivery (its insert, its claim, its outcome) changes its status, so none
-- is a HOT update: each adds an entry to every index of the table. Two indexes fewer here.
--
-- Deliveries are looked up by date (the plan's "who has a row already", counts and requeues
-- of a date), and a subscriber has one a date: a unique key led by the date serves both,
-- where (subscriber, digest_date) and (digest_date, status) were two. ON CONFLICT finds the
-- key by its columns, in any order. (Building it reads the whole table once, at upgrade.)
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_date_subscriber_key UNIQUE (digest_date, subscriber);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_subscriber_digest_date_key;
DROP INDEX deliveries_by_date_status;

-- Claims walk pending rows by (next_attempt_at, id), and the earliest retry is read the same
-- way: the queue's index holds pending rows only, so that a claim and an outcome, which take
-- a row out of pending, add nothing to it. (Rows in flight are found through
-- deliveries_leases.)
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
