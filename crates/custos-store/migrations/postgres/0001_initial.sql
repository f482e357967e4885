-- Custos store schema (PostgreSQL). Same shapes as the SQLite schema: ids TEXT, times
-- BIGINT unix milliseconds, sealed values BYTEA, keyed-hash indexes hex TEXT.

CREATE TABLE staff (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    org        TEXT   NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT   NOT NULL PRIMARY KEY,
    staff_id   TEXT   NOT NULL REFERENCES staff (id),
    hash       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Listing a person's tokens, and the foreign-key check when staff rows change.
CREATE INDEX tokens_staff_id ON tokens (staff_id);

CREATE TABLE customers (
    id          TEXT   NOT NULL PRIMARY KEY,
    wrapped_key BYTEA  NOT NULL,
    name        BYTEA  NOT NULL,
    phone       BYTEA,
    email       BYTEA,
    account_id  BYTEA,
    attributes  BYTEA,
    phone_idx   TEXT,
    email_idx   TEXT,
    account_idx TEXT,
    created_at  BIGINT NOT NULL
);

-- Not unique: two customers may share a phone, email or account.
CREATE INDEX customers_phone_idx ON customers (phone_idx);
CREATE INDEX customers_email_idx ON customers (email_idx);
CREATE INDEX customers_account_idx ON customers (account_idx);

CREATE TABLE cases (
    id          TEXT   NOT NULL PRIMARY KEY,
    customer_id TEXT   NOT NULL REFERENCES customers (id),
    assignee    TEXT   NOT NULL,
    channel     TEXT   NOT NULL,
    reason      BYTEA  NOT NULL,
    status      TEXT   NOT NULL CHECK (status IN ('open', 'closed')),
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    closed_at   BIGINT
);

CREATE INDEX cases_assignee_status ON cases (assignee, status);
-- The foreign-key check on customers needs it, and so do per-customer case lookups.
CREATE INDEX cases_customer_id ON cases (customer_id);

-- The access index: one row per ledger entry, `seq` being the entry's index in the
-- ledger. The ledger is the record; this table is rebuilt from it and serves queries.
CREATE TABLE access_records (
    seq         BIGINT PRIMARY KEY,
    request_id  TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    staff_id    TEXT   NOT NULL,
    org         TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    customer_id TEXT,
    fields      TEXT   NOT NULL, -- JSON array of field names
    case_id     TEXT,
    target      TEXT,
    decision    TEXT   NOT NULL,
    reason_code TEXT   NOT NULL,
    client      TEXT
);

CREATE INDEX access_records_staff_id ON access_records (staff_id);
CREATE INDEX access_records_customer_id ON access_records (customer_id);
CREATE INDEX access_records_at ON access_records (at);

-- The access record is evidence: refuse changes through SQL, not just through the API.
CREATE FUNCTION access_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_records is append-only';
END;
$$;

CREATE TRIGGER access_records_no_update BEFORE UPDATE OR DELETE ON access_records
FOR EACH ROW EXECUTE FUNCTION access_records_append_only();

CREATE TRIGGER access_records_no_truncate BEFORE TRUNCATE ON access_records
FOR EACH STATEMENT EXECUTE FUNCTION access_records_append_only();
