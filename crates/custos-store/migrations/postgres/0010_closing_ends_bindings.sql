-- Closing a case ends its privacy-number bindings, in the statement that closes it: the
-- agent's number is free again from that commit on, whatever path closed the case, and
-- a close costs one write, not two.
CREATE FUNCTION cases_close_ends_bindings() RETURNS trigger AS $$
BEGIN
    UPDATE call_bindings SET ended_at = NEW.closed_at
        WHERE case_id = NEW.id AND ended_at IS NULL;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER cases_close_ends_bindings AFTER UPDATE OF status ON cases
FOR EACH ROW
WHEN (NEW.status = 'closed' AND OLD.status <> 'closed')
EXECUTE FUNCTION cases_close_ends_bindings();
