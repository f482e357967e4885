-- Web console sessions and used customer links, in the store rather than one node's
-- memory: any node behind a load balancer serves any browser, and a restart signs no one
-- out (src/console_sessions.rs).
CREATE TABLE console_sessions (
    -- SHA-256 hex of the session id the cookie carries: the table holds nothing a
    -- browser could present.
    key         TEXT   PRIMARY KEY,
    -- 'staff' (token_hash, staff_id, role, org) or 'customer' (customer_id, until).
    kind        TEXT   NOT NULL CHECK (kind IN ('staff', 'customer')),
    token_hash  TEXT,
    staff_id    TEXT,
    role        TEXT,
    org         TEXT,
    customer_id TEXT,
    until       INTEGER,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    -- The evidence bundle of the session's last leak trace, for download.
    evidence    BLOB
);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen);

-- Customer access links that opened a session (SHA-256 hex), until they expire: a link
-- opens one session only.
CREATE TABLE used_links (
    key   TEXT   PRIMARY KEY,
    until INTEGER NOT NULL
);
