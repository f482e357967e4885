-- Receipts of imports sent with an Idempotency-Key: a batch resent under the same key
-- (a client that lost the answer, a resumed import) is answered from here instead of
-- being imported twice. Written in the transaction that stores the batch's customers, so
-- a receipt exists exactly when its customers do. Keys are per staff member: one
-- admin's key never answers, or refuses, another's request.
CREATE TABLE import_receipts (
    staff_id   TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    -- SHA-256 of the request body (hex): the same key with another body is refused.
    body_hash  TEXT   NOT NULL,
    -- The customer ids the import assigned, in input order, joined by ','.
    ids        TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (staff_id, key)
);
