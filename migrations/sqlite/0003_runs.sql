-- One row per digest date that a run (scheduled, caught up or manual) has worked on.
CREATE TABLE runs (
    digest_date TEXT PRIMARY KEY NOT NULL,
    tick_at     TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'skipped', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 1,
    papers      INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    deferred    INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
