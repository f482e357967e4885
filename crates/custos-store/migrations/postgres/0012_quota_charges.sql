-- Quota charges, shared by every gateway node on this database: a charge is checked and
-- taken in one transaction under the person's advisory lock (src/quota_charges.rs), so a
-- ceiling holds exactly however requests spread over the nodes.
CREATE TABLE quota_charges (
    staff_id    TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    -- The customer opened (views, reveals, contacts); NULL for a search.
    customer_id TEXT,
    -- Fields revealed in full (a contact counts as one).
    reveals     INTEGER NOT NULL CHECK (reveals >= 0),
    search      BOOLEAN NOT NULL
);
CREATE INDEX quota_charges_by_staff ON quota_charges (staff_id, at);

-- Until now each node counted in memory, rebuilt from the last day's allowed records:
-- carry that day over, charged as the gateway charges them.
INSERT INTO quota_charges (staff_id, at, customer_id, reveals, search)
SELECT staff_id, at,
       CASE WHEN action = 'search' THEN NULL ELSE customer_id END,
       CASE action WHEN 'reveal' THEN json_array_length(fields::json)
                   WHEN 'contact' THEN 1 ELSE 0 END,
       action = 'search'
FROM access_records
WHERE decision = 'allow'
  AND (action = 'search' OR (action IN ('view', 'reveal', 'contact') AND customer_id IS NOT NULL))
  AND at > (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - 86400000;
