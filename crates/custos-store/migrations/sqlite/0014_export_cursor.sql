-- The SIEM export (custos-service/src/export.rs). Its ledger cursor is a row of
-- consumer_cursors (name 'export'); alerts have no sequence, so the export keeps the ids
-- of those a sink acknowledged. An alert without a row here is still to be sent.
CREATE TABLE exported_alerts (
    alert_id    TEXT    NOT NULL PRIMARY KEY,
    exported_at INTEGER NOT NULL
) STRICT;
