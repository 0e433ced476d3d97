-- A subscriber's key is now the whole address with its ASCII letters in lower case (the
-- rule of SubscriberKey); it was the address with only its domain so, and "Ada@example.org"
-- and "ada@example.org" were two keys for one person. The keys stored are folded here, and
-- compared exactly from now on. lower() would follow the database's locale and fold other
-- letters too: translate() folds exactly A-Z, as the rule (and SQLite's lower()) does.
--
-- Rows of one table that then fall on one key are merged, keeping what happened:
-- * deliveries (one per subscriber and date): the row kept is the one furthest along (sent,
--   then sending, then pending, then failed, then skipped; the earliest planned among
--   equals). The others move, whole, to merged_deliveries, beside the id of the row kept.
--   The papers of a moved row that was sent (or in flight) become the kept row's in
--   delivery_paper_sets, so that none of them is sent to the subscriber again; a moved
--   row's other papers were never sent and count for nothing, as before.
-- * optouts (one per subscriber): the earliest opt-out is kept.
-- runs, alerts, papers and daily_list hold no subscriber.

-- No temporary function or table (a server may refuse TEMP to the role that migrates): the
-- fold is written out where it is used, and the merges are an ordinary table, dropped at the
-- end of this migration (which runs in one transaction).
CREATE TABLE key_merges_of_0011 AS
WITH clashing AS (
    SELECT DISTINCT translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
                    AS folded,
                    digest_date
      FROM deliveries
     WHERE subscriber <> translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
), ranked AS (
    SELECT d.id, d.status, c.folded, c.digest_date,
           ROW_NUMBER() OVER (
               PARTITION BY c.folded, c.digest_date
               ORDER BY CASE d.status WHEN 'sent' THEN 0 WHEN 'sending' THEN 1
                                      WHEN 'pending' THEN 2 WHEN 'failed' THEN 3 ELSE 4 END,
                        d.id) AS place
      FROM clashing c
      JOIN deliveries d
        ON d.digest_date = c.digest_date
       AND translate(d.subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = c.folded
)
SELECT l.id AS loser, w.id AS winner, l.digest_date AS digest_date,
       l.status IN ('sent', 'sending') AS counts
  FROM ranked l
  JOIN ranked w ON w.folded = l.folded AND w.digest_date = l.digest_date AND w.place = 1
 WHERE l.place > 1;

-- Deliveries merged into another row of the same subscriber and date when keys were folded:
-- as they were, key and all (nothing reads them; no record of an email is lost).
CREATE TABLE merged_deliveries (
    id          BIGINT PRIMARY KEY NOT NULL,
    merged_into BIGINT NOT NULL,
    subscriber  TEXT NOT NULL,
    digest_date DATE NOT NULL,
    status      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    paper_count BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    smtp_reply  TEXT,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ
);
INSERT INTO merged_deliveries
    SELECT d.id, m.winner, d.subscriber, d.digest_date, d.status, d.message_id, d.digest,
           d.paper_count, d.attempts, d.smtp_reply, d.error, d.created_at, d.updated_at,
           d.sent_at
      FROM deliveries d JOIN key_merges_of_0011 m ON m.loser = d.id;

-- A set's ids are rewritten (once each, in order); its key, first_delivery_id, stays as it
-- was.
UPDATE delivery_paper_sets s
   SET delivery_ids = ARRAY(
           SELECT DISTINCT COALESCE(m.winner, u.id)
             FROM unnest(s.delivery_ids) AS u(id)
             LEFT JOIN key_merges_of_0011 m ON m.loser = u.id
            WHERE m.loser IS NULL OR m.counts
            ORDER BY 1)
 WHERE s.digest_date IN (SELECT digest_date FROM key_merges_of_0011)
   AND s.delivery_ids && ARRAY(SELECT loser FROM key_merges_of_0011);

DELETE FROM deliveries WHERE id IN (SELECT loser FROM key_merges_of_0011);
UPDATE deliveries
   SET subscriber = translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
 WHERE subscriber <> translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');

DELETE FROM optouts
 WHERE subscriber IN (
       SELECT subscriber FROM (
           SELECT subscriber,
                  ROW_NUMBER() OVER (
                      PARTITION BY translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
                      ORDER BY at, subscriber) AS place
             FROM optouts) AS o
        WHERE o.place > 1);
UPDATE optouts
   SET subscriber = translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
 WHERE subscriber <> translate(subscriber, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');

DROP TABLE key_merges_of_0011;
