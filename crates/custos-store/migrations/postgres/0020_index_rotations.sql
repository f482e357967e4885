-- Rotations of the blind-index key (custos-store/src/key_rotations.rs). Each customer's
-- indexes and each contact's are under one version of the index key, named beside them;
-- rows from before this migration are under version 1. The latest rotation's target is
-- the version of what is written; none: version 1.
ALTER TABLE customers ADD COLUMN index_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN identifier_version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE index_rotations (
    id            BIGINT  NOT NULL PRIMARY KEY,
    -- Always 'file': the index key is derived from the master key file.
    provider      TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    -- The last customer id re-indexed, in id order; none: from the start.
    cursor        TEXT,
    done          BIGINT  NOT NULL DEFAULT 0,
    total         BIGINT  NOT NULL,
    UNIQUE (provider, version)
);
