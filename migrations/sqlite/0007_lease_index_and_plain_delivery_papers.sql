-- Claiming rows whose sender died looks for status = 'sending' AND lease_expires_at < now:
-- an index of in-flight rows by lease reads only those whose lease has run out. (PostgreSQL
-- needs it most: there each claim leaves a dead 'sending' entry in deliveries_due.)
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE status = 'sending';

-- delivery_papers rows are written only in the transaction that inserts their delivery, with
-- the ids it returned, and nothing deletes deliveries: the foreign key checked what cannot
-- happen, at a look-up per row. SQLite cannot drop a constraint: the table is rebuilt.
CREATE TABLE delivery_papers_new (
    delivery_id INTEGER NOT NULL,
    subscriber  TEXT NOT NULL,
    arxiv_id    TEXT NOT NULL,
    PRIMARY KEY (delivery_id, arxiv_id)
);
INSERT INTO delivery_papers_new (delivery_id, subscriber, arxiv_id)
    SELECT delivery_id, subscriber, arxiv_id FROM delivery_papers;
DROP TABLE delivery_papers;
ALTER TABLE delivery_papers_new RENAME TO delivery_papers;
CREATE INDEX delivery_papers_by_paper ON delivery_papers (arxiv_id, subscriber);
