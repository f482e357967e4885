-- Key-encryption key rotations (custos-store/src/key_rotations.rs). The latest row's
-- target is the KEK that wraps new data keys; none: the file KEK version 1.
CREATE TABLE key_rotations (
    id            BIGINT  NOT NULL PRIMARY KEY,
    provider      TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    -- The last customer id re-wrapped, in id order; none: from the start.
    cursor        TEXT,
    rewrapped     BIGINT  NOT NULL DEFAULT 0,
    total         BIGINT  NOT NULL,
    UNIQUE (provider, version)
);
