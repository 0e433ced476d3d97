-- Subscribers who unsubscribed: the config stays the list of subscribers, an opt-out here
-- overrides it until the operator clears it (paperboy subscribers resume EMAIL).
CREATE TABLE optouts (
    subscriber TEXT PRIMARY KEY NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    via        TEXT NOT NULL
);
