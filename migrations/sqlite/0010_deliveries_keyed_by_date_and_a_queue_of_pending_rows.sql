-- Claims walk pending rows by (next_attempt_at, id), and the earliest retry is read the same
-- way: the queue's index holds pending rows only. Rows in flight, looked up by lease (the
-- claim of rows whose sender died, the next wake-up), get an index of their own, as on
-- PostgreSQL since 0007. A row then enters and leaves each once (the plan, the claim, the
-- outcome: four index writes), where a claim and an outcome each moved it within one index
-- (six).
--
-- PostgreSQL's 0010 also replaces the unique key (subscriber, digest_date) and the index
-- (digest_date, status) with one key (digest_date, subscriber). SQLite cannot change a
-- table's constraint without copying the whole table, every delivery ever recorded, at
-- upgrade: here both stay.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE status = 'sending';
