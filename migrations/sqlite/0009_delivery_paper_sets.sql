-- delivery_papers held one row per paper of every digest: about ten per delivery, a million
-- a day at 100,000 subscribers, and most of the time planning takes. Its one reader asks
-- which deliveries (and so which subscribers) of other dates hold given papers. A row here
-- is one paper's deliveries of one plan write, their ids as a JSON array: a few dozen rows
-- per thousand digests. The look-up unnests the ids and joins deliveries for the subscriber
-- and status. Keyed by the paper and the set's smallest delivery id: the ids of one paper's
-- sets never overlap, since each delivery is inserted once.
CREATE TABLE delivery_paper_sets (
    arxiv_id          TEXT NOT NULL,
    digest_date       TEXT NOT NULL,
    first_delivery_id INTEGER NOT NULL,
    delivery_ids      TEXT NOT NULL,
    PRIMARY KEY (arxiv_id, first_delivery_id)
) WITHOUT ROWID;
INSERT INTO delivery_paper_sets (arxiv_id, digest_date, first_delivery_id, delivery_ids)
    SELECT dp.arxiv_id, d.digest_date, MIN(dp.delivery_id), json_group_array(dp.delivery_id)
      FROM delivery_papers dp JOIN deliveries d ON d.id = dp.delivery_id
     GROUP BY dp.arxiv_id, d.digest_date;
DROP TABLE delivery_papers;
