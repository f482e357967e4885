-- Retention (src/retention.rs): access records older than the configured limit may be
-- deleted, and only by a retention run, which the ledger records before it deletes. The
-- run writes its limit here inside its own transaction and removes it before committing,
-- so any other DELETE is still refused (another transaction never sees an uncommitted
-- permit), and a run deletes nothing newer than its limit. UPDATE and TRUNCATE stay
-- refused.
CREATE TABLE retention_permits (
    before BIGINT NOT NULL
);

CREATE OR REPLACE FUNCTION access_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM retention_permits WHERE OLD.at < before) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'access_records is append-only';
END;
$$;
