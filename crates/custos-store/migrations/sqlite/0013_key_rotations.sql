-- Key-encryption key rotations (custos-store/src/key_rotations.rs). The latest row's
-- target is the KEK that wraps new data keys; none: the file KEK version 1.
CREATE TABLE key_rotations (
    id            INTEGER NOT NULL PRIMARY KEY,
    provider      TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    -- The last customer id re-wrapped, in id order; none: from the start.
    cursor        TEXT,
    rewrapped     INTEGER NOT NULL DEFAULT 0,
    total         INTEGER NOT NULL,
    UNIQUE (provider, version)
) STRICT;
