-- Operator alerts sent, at most one per kind and day.
CREATE TABLE alerts (
    kind    TEXT NOT NULL,
    day     TEXT NOT NULL,
    subject TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (kind, day)
);
