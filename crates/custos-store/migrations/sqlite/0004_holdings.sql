-- Leak tracing's summary of the access index, so that a trace reads what each person
-- holds instead of scanning every access record.
--
-- Derived from `access_records` only, by the trigger below, inside the statement that
-- inserts the record: whatever fills `access_records` (the indexer following the ledger,
-- or replaying it into an empty store) fills these tables too, and a record skipped as
-- already indexed (`ON CONFLICT (seq) DO NOTHING`) fires nothing, so replays count once.

-- One row per (customer, person) with at least one allowed view or reveal: the first and
-- last such access, and the first reveal (NULL if the customer was only viewed masked).
-- Keyed by customer first, as a trace looks its leaked customers up.
CREATE TABLE access_holdings (
    customer_id TEXT    NOT NULL,
    staff_id    TEXT    NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    revealed_at INTEGER,
    PRIMARY KEY (customer_id, staff_id)
) STRICT, WITHOUT ROWID;

-- Per person, the rows of `access_holdings`: customers revealed, and only viewed.
CREATE TABLE staff_holdings (
    staff_id    TEXT    NOT NULL PRIMARY KEY,
    revealed    INTEGER NOT NULL,
    viewed_only INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Stores indexed before this migration: fill both from the records already there.
INSERT INTO access_holdings (customer_id, staff_id, first_at, last_at, revealed_at)
SELECT customer_id, staff_id, MIN(at), MAX(at), MIN(CASE WHEN action = 'reveal' THEN at END)
FROM access_records
WHERE decision = 'allow' AND action IN ('view', 'reveal') AND customer_id IS NOT NULL
GROUP BY customer_id, staff_id;

INSERT INTO staff_holdings (staff_id, revealed, viewed_only)
SELECT staff_id, COUNT(revealed_at), COUNT(*) - COUNT(revealed_at)
FROM access_holdings
GROUP BY staff_id;

-- SQLite runs one writer at a time, so reading the pair and then writing it cannot race
-- another insert.
CREATE TRIGGER access_records_holdings AFTER INSERT ON access_records
WHEN NEW.decision = 'allow' AND NEW.action IN ('view', 'reveal') AND NEW.customer_id IS NOT NULL
BEGIN
    -- The person's counts move only when the customer is new to them (one more held) or
    -- revealed for the first time (from viewed-only to revealed): read the pair as it was
    -- before this record. `s` is NULL (not held), 0 (viewed only) or 1 (revealed).
    INSERT INTO staff_holdings (staff_id, revealed, viewed_only)
    SELECT NEW.staff_id,
           NEW.action = 'reveal' AND s IS NOT 1,
           CASE WHEN s IS NULL THEN NEW.action = 'view'
                WHEN s = 0 AND NEW.action = 'reveal' THEN -1
                ELSE 0 END
    FROM (SELECT (SELECT revealed_at IS NOT NULL FROM access_holdings
                  WHERE customer_id = NEW.customer_id AND staff_id = NEW.staff_id) AS s)
    WHERE TRUE
    ON CONFLICT (staff_id) DO UPDATE SET
        revealed = revealed + excluded.revealed,
        viewed_only = viewed_only + excluded.viewed_only;

    -- Two-argument MIN is NULL if either is: keep whichever reveal time exists.
    INSERT INTO access_holdings (customer_id, staff_id, first_at, last_at, revealed_at)
    VALUES (NEW.customer_id, NEW.staff_id, NEW.at, NEW.at,
            CASE WHEN NEW.action = 'reveal' THEN NEW.at END)
    ON CONFLICT (customer_id, staff_id) DO UPDATE SET
        first_at = MIN(first_at, excluded.first_at),
        last_at = MAX(last_at, excluded.last_at),
        revealed_at = COALESCE(MIN(revealed_at, excluded.revealed_at), revealed_at, excluded.revealed_at);
END;
