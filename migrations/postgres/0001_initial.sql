-- Papers as last fetched (the domain Paper as JSON), the daily lists, and the delivery ledger.
-- The same history as migrations/sqlite: keep the two in step.

CREATE TABLE papers (
    arxiv_id      TEXT PRIMARY KEY NOT NULL,
    data          TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE daily_list (
    digest_date DATE NOT NULL,
    arxiv_id    TEXT NOT NULL REFERENCES papers (arxiv_id),
    rank        BIGINT NOT NULL,
    upvotes     BIGINT NOT NULL,
    fetched_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (digest_date, arxiv_id)
);

-- One row per (subscriber, digest date): the email planned for that subscriber that day.
-- status: pending -> sending (claimed, lease_expires_at set) -> sent | failed | pending again;
-- skipped rows record why a subscriber got nothing (no matching paper).
CREATE TABLE deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber       TEXT NOT NULL,
    digest_date      DATE NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    message_id       TEXT NOT NULL,
    digest           TEXT NOT NULL,
    paper_count      BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    lease_expires_at TIMESTAMPTZ,
    smtp_reply       TEXT,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    UNIQUE (subscriber, digest_date)
);

CREATE INDEX deliveries_by_date_status ON deliveries (digest_date, status);

-- The papers of each delivery, so "never send a paper twice" is one indexed look-up.
CREATE TABLE delivery_papers (
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    subscriber  TEXT NOT NULL,
    arxiv_id    TEXT NOT NULL,
    PRIMARY KEY (delivery_id, arxiv_id)
);

CREATE INDEX delivery_papers_by_paper ON delivery_papers (arxiv_id, subscriber);
