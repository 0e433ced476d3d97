-- delivery_papers is read only by paper (which subscribers already had these papers), and
-- written only with its delivery. As a rowid table with its primary key and the by-paper index
-- it was three b-trees, each row written three times: planning spent most of its time here.
-- Keyed by (paper, subscriber, delivery) without rowid it is one b-tree that serves the
-- look-up on its own. A delivery still holds a paper at most once: it has one subscriber.
CREATE TABLE delivery_papers_new (
    arxiv_id    TEXT NOT NULL,
    subscriber  TEXT NOT NULL,
    delivery_id INTEGER NOT NULL,
    PRIMARY KEY (arxiv_id, subscriber, delivery_id)
) WITHOUT ROWID;
INSERT INTO delivery_papers_new (arxiv_id, subscriber, delivery_id)
    SELECT arxiv_id, subscriber, delivery_id FROM delivery_papers;
DROP TABLE delivery_papers;
ALTER TABLE delivery_papers_new RENAME TO delivery_papers;
