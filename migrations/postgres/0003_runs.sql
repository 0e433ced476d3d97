-- One row per digest date that a run (scheduled, caught up or manual) has worked on.
CREATE TABLE runs (
    digest_date DATE PRIMARY KEY NOT NULL,
    tick_at     TIMESTAMPTZ,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'skipped', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 1,
    papers      BIGINT NOT NULL DEFAULT 0,
    sent        BIGINT NOT NULL DEFAULT 0,
    skipped     BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    deferred    BIGINT NOT NULL DEFAULT 0,
    error       TEXT
);
