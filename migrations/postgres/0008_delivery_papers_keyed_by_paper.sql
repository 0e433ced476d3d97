-- delivery_papers is read only by paper (which subscribers already had these papers), and
-- written only with its delivery. Its primary key (delivery, paper) served no look-up but was
-- a second index to write for every row, next to the by-paper one: planning 100,000 digests
-- spent most of its time on these two. The key is now (paper, subscriber, delivery), the
-- by-paper look-up's own order. A delivery still holds a paper at most once: it has one
-- subscriber.
ALTER TABLE delivery_papers DROP CONSTRAINT delivery_papers_pkey;
DROP INDEX delivery_papers_by_paper;
ALTER TABLE delivery_papers ADD PRIMARY KEY (arxiv_id, subscriber, delivery_id);
