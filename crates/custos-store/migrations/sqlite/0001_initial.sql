-- Custos store schema (SQLite). The store only ever holds sealed bytes (BLOB) and
-- keyed-hash indexes (hex TEXT); ids are TEXT and times are unix milliseconds so the
-- same shapes work on PostgreSQL. STRICT makes SQLite reject values of the wrong type
-- instead of silently storing them.

CREATE TABLE staff (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    org        TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    staff_id   TEXT    NOT NULL REFERENCES staff (id),
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

-- Listing a person's tokens, and the foreign-key check when staff rows change.
CREATE INDEX tokens_staff_id ON tokens (staff_id);

CREATE TABLE customers (
    id          TEXT    NOT NULL PRIMARY KEY,
    wrapped_key BLOB    NOT NULL,
    name        BLOB    NOT NULL,
    phone       BLOB,
    email       BLOB,
    account_id  BLOB,
    attributes  BLOB,
    phone_idx   TEXT,
    email_idx   TEXT,
    account_idx TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

-- Not unique: two customers may share a phone, email or account.
CREATE INDEX customers_phone_idx ON customers (phone_idx);
CREATE INDEX customers_email_idx ON customers (email_idx);
CREATE INDEX customers_account_idx ON customers (account_idx);

CREATE TABLE cases (
    id          TEXT    NOT NULL PRIMARY KEY,
    customer_id TEXT    NOT NULL REFERENCES customers (id),
    assignee    TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    reason      BLOB    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('open', 'closed')),
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER
) STRICT;

CREATE INDEX cases_assignee_status ON cases (assignee, status);
-- The foreign-key check on customers needs it, and so do per-customer case lookups.
CREATE INDEX cases_customer_id ON cases (customer_id);

-- The access index: one row per ledger entry, `seq` being the entry's index in the
-- ledger. The ledger is the record; this table is rebuilt from it and serves queries.
CREATE TABLE access_records (
    seq         INTEGER NOT NULL PRIMARY KEY,
    request_id  TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    staff_id    TEXT    NOT NULL,
    org         TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    customer_id TEXT,
    fields      TEXT    NOT NULL, -- JSON array of field names
    case_id     TEXT,
    target      TEXT,
    decision    TEXT    NOT NULL,
    reason_code TEXT    NOT NULL,
    client      TEXT
) STRICT;

CREATE INDEX access_records_staff_id ON access_records (staff_id);
CREATE INDEX access_records_customer_id ON access_records (customer_id);
CREATE INDEX access_records_at ON access_records (at);

-- The access record is evidence: refuse changes through SQL, not just through the API.
CREATE TRIGGER access_records_no_update BEFORE UPDATE ON access_records
BEGIN
    SELECT RAISE(ABORT, 'access_records is append-only');
END;

CREATE TRIGGER access_records_no_delete BEFORE DELETE ON access_records
BEGIN
    SELECT RAISE(ABORT, 'access_records is append-only');
END;
