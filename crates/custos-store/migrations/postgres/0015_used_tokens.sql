-- Tokens accepted once (a customer app's assertion vouches for one contact), across the
-- gateway nodes of one database: the SHA-256 of the token's signed part, kept until the
-- token would be refused anyway (unix seconds). SQLite needs none: one process owns it.
CREATE TABLE used_tokens (
    fingerprint BYTEA  PRIMARY KEY,
    until       BIGINT NOT NULL
);

CREATE INDEX used_tokens_until ON used_tokens (until);
