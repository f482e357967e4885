-- Retention (src/retention.rs): access records older than the configured limit may be
-- deleted, and only by a retention run, which the ledger records before it deletes. The
-- run writes its limit here inside its own transaction and removes it before committing,
-- so any other DELETE is still refused, and a run deletes nothing newer than its limit.
CREATE TABLE retention_permits (
    before INTEGER NOT NULL
) STRICT;

DROP TRIGGER access_records_no_delete;

CREATE TRIGGER access_records_no_delete BEFORE DELETE ON access_records
WHEN NOT EXISTS (SELECT 1 FROM retention_permits WHERE OLD.at < before)
BEGIN
    SELECT RAISE(ABORT, 'access_records is append-only');
END;
