-- Access that no channel vouches for: requests a second person approves or denies, and
-- break-glass access taken at once. A row that is granted is a grant: its fields open to
-- its requester on its case until grant_until. The purpose and the decision's reason are
-- free text, sealed under the customer's data key.
CREATE TABLE access_requests (
    id              TEXT   NOT NULL PRIMARY KEY,
    kind            TEXT   NOT NULL CHECK (kind IN ('approval', 'break_glass')),
    requester       TEXT   NOT NULL,
    requester_org   TEXT   NOT NULL,
    customer_id     TEXT   NOT NULL REFERENCES customers (id),
    case_id         TEXT   NOT NULL,
    fields          TEXT   NOT NULL,
    purpose         BLOB  NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('pending', 'granted', 'denied')),
    decided_by      TEXT,
    decided_at      INTEGER,
    decision_reason BLOB,
    grant_until     INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX access_requests_status ON access_requests (status, created_at);
CREATE INDEX access_requests_requester ON access_requests (requester, customer_id);

-- Who reviewed an alert that needs more than one reviewer (a break-glass needs two
-- different analysts before it leaves the queue).
CREATE TABLE alert_reviews (
    alert_id    TEXT   NOT NULL,
    reviewer    TEXT   NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (alert_id, reviewer)
) STRICT;
