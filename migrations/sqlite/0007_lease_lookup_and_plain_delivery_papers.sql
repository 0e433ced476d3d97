-- PostgreSQL's 0007 also adds an index of in-flight rows by lease (deliveries_leases): there
-- each claim leaves a dead 'sending' entry in deliveries_due. SQLite updates rows in place,
-- so deliveries_due holds only the rows in flight, and its planner keeps to that index for
-- the look-up anyway: the extra index would only cost a write per claim and per outcome.

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
