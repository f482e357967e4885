-- Detection: canary marks, alerts, and where the detector is in the ledger.

-- Keyed hashes of canary customers' ids (HMAC under a key derived from the master key):
-- the customers themselves are ordinary rows, and this table does not say which they are
-- to anyone without the key.
CREATE TABLE canary_marks (
    mark TEXT NOT NULL PRIMARY KEY
);

CREATE TABLE alerts (
    id          TEXT    NOT NULL PRIMARY KEY, -- derived from kind, staff and first entry: replay-safe
    created_at  BIGINT  NOT NULL,
    staff_id    TEXT    NOT NULL,
    org         TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    reasons     TEXT    NOT NULL, -- JSON array of plain-language reasons
    entries     TEXT    NOT NULL, -- JSON array of ledger indexes behind the alert
    action      TEXT    NOT NULL, -- what the detector did: none, suspended
    status      TEXT    NOT NULL, -- open, acknowledged, dismissed
    updated_at  BIGINT  NOT NULL
);

CREATE INDEX alerts_status_created ON alerts (status, created_at);

-- The next ledger index each consumer will read; written after its effects are durable.
CREATE TABLE consumer_cursors (
    name     TEXT    NOT NULL PRIMARY KEY,
    next_seq BIGINT  NOT NULL
);
