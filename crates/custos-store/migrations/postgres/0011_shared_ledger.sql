-- One ledger for every gateway node on this database (docs/MULTI_NODE.md). The order in
-- which entries become durable is written down in `src/shared_ledger.rs`.

-- The next ledger index. A node's group-commit writer locks this row (FOR UPDATE),
-- inserts its batch at `next`, and moves `next` on, in one transaction: an index is
-- assigned, and durable, when that transaction commits.
CREATE TABLE ledger_seq_coord (
    id   SMALLINT PRIMARY KEY CHECK (id = 0),
    next BIGINT   NOT NULL CHECK (next >= 0)
);
INSERT INTO ledger_seq_coord (id, next) VALUES (0, 0);

-- Every entry, as the Merkle tree commits to it. Rows are never changed or deleted:
-- every node derives its tiles from them.
CREATE TABLE ledger_entries (
    seq   BIGINT PRIMARY KEY CHECK (seq >= 0),
    entry BYTEA  NOT NULL
);

-- How far the tree is integrated, and its root there (NULL until the first checkpoint).
-- One node at a time integrates: the one holding this row's lock.
CREATE TABLE ledger_int_coord (
    id   SMALLINT PRIMARY KEY CHECK (id = 0),
    size BIGINT   NOT NULL CHECK (size >= 0),
    root BYTEA
);
INSERT INTO ledger_int_coord (id, size, root) VALUES (0, 0, NULL);

-- Every signed checkpoint; every node serves the newest.
CREATE TABLE ledger_checkpoints (
    size      BIGINT PRIMARY KEY CHECK (size >= 0),
    note      TEXT   NOT NULL,
    signed_at BIGINT NOT NULL
);
