-- Operator alerts sent, at most one per kind and day.
CREATE TABLE alerts (
    kind    TEXT NOT NULL,
    day     DATE NOT NULL,
    subject TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, day)
);

-- Who holds a delivery being sent: a token per claim, so that a sender whose lease ran out
-- cannot overwrite the outcome recorded by the sender that took the row over.
ALTER TABLE deliveries ADD COLUMN claim_token TEXT;

-- Claiming looks for due rows of any date by status.
CREATE INDEX deliveries_by_status ON deliveries (status, next_attempt_at);
