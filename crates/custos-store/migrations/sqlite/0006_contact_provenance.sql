-- Contacts as the contact centre saw them, and each case's provenance: who vouches that
-- the customer is in contact. A contact keeps the caller's identifier only as its keyed
-- hash (the same blind index the customer's field has), never in clear.
CREATE TABLE contacts (
    id              TEXT   NOT NULL PRIMARY KEY,
    channel         TEXT   NOT NULL,
    agent           TEXT   NOT NULL,
    identifier_kind TEXT   NOT NULL CHECK (identifier_kind IN ('phone', 'email', 'account_id')),
    identifier_idx  TEXT   NOT NULL,
    at              INTEGER NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

-- Cases opened before provenance existed were opened by the CRM on its word.
ALTER TABLE cases ADD COLUMN provenance TEXT NOT NULL DEFAULT 'unverified'
    CHECK (provenance IN ('verified', 'unverified', 'outbound', 'requested'));
ALTER TABLE cases ADD COLUMN campaign TEXT;
ALTER TABLE cases ADD COLUMN contact_id TEXT;
