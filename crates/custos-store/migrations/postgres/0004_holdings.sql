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
    customer_id TEXT   NOT NULL,
    staff_id    TEXT   NOT NULL,
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    revealed_at BIGINT,
    PRIMARY KEY (customer_id, staff_id)
);

-- Per person, the rows of `access_holdings`: customers revealed, and only viewed.
CREATE TABLE staff_holdings (
    staff_id    TEXT   PRIMARY KEY,
    revealed    BIGINT NOT NULL,
    viewed_only BIGINT NOT NULL
);

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

-- Several gateway nodes may index at once, so the counts move on what each write did
-- (under the pair's row lock), never on a read made before it: a new pair is one more
-- held; a pair whose first reveal this is moves from viewed-only to revealed.
CREATE FUNCTION access_records_holdings() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    reveal BIGINT := CASE WHEN NEW.action = 'reveal' THEN NEW.at END;
    changed INTEGER;
BEGIN
    INSERT INTO access_holdings (customer_id, staff_id, first_at, last_at, revealed_at)
    VALUES (NEW.customer_id, NEW.staff_id, NEW.at, NEW.at, reveal)
    ON CONFLICT (customer_id, staff_id) DO NOTHING;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 1 THEN
        INSERT INTO staff_holdings (staff_id, revealed, viewed_only)
        VALUES (NEW.staff_id, (reveal IS NOT NULL)::INT, (reveal IS NULL)::INT)
        ON CONFLICT (staff_id) DO UPDATE SET
            revealed = staff_holdings.revealed + EXCLUDED.revealed,
            viewed_only = staff_holdings.viewed_only + EXCLUDED.viewed_only;
        RETURN NULL;
    END IF;
    IF reveal IS NOT NULL THEN
        UPDATE access_holdings SET revealed_at = reveal
        WHERE customer_id = NEW.customer_id AND staff_id = NEW.staff_id AND revealed_at IS NULL;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed = 1 THEN
            UPDATE staff_holdings SET revealed = revealed + 1, viewed_only = viewed_only - 1
            WHERE staff_id = NEW.staff_id;
        END IF;
    END IF;
    -- LEAST and GREATEST skip NULLs, so an earlier reveal time is kept.
    UPDATE access_holdings SET
        first_at = LEAST(first_at, NEW.at),
        last_at = GREATEST(last_at, NEW.at),
        revealed_at = LEAST(revealed_at, reveal)
    WHERE customer_id = NEW.customer_id AND staff_id = NEW.staff_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER access_records_holdings AFTER INSERT ON access_records
FOR EACH ROW
WHEN (NEW.decision = 'allow' AND NEW.action IN ('view', 'reveal') AND NEW.customer_id IS NOT NULL)
EXECUTE FUNCTION access_records_holdings();
