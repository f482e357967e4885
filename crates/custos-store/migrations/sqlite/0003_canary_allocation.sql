-- Canary allocation: a canary given to one person (as a case on their queue that Custos
-- opened), so a leaked list that carries it names who it was given to.

-- The canary's id, sealed under a key derived from the master key: only the server can
-- open it, and so choose a canary to allocate. Empty for canaries planted before
-- allocation existed (they are never allocated).
ALTER TABLE canary_marks ADD COLUMN sealed_id BLOB;

-- One row per canary given to a person: a keyed mark of (canary, person), the canary's
-- mark, and the person's peer group (organisation and role) when it was given. A canary
-- goes to at most one person per peer group; the constraint makes that hold when two
-- allocations race.
CREATE TABLE canary_allocations (
    holder_mark TEXT NOT NULL PRIMARY KEY,
    canary_mark TEXT NOT NULL REFERENCES canary_marks (mark),
    peer_group  TEXT NOT NULL,
    UNIQUE (canary_mark, peer_group)
) STRICT;
