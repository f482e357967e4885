-- Privacy-number calls (A-X-B): a number X of the configured pool bound to an agent and
-- a customer for the life of a case. Only ids and the pool number are stored: the
-- customer's real number is read from the vault when the PBX asks where X leads.
CREATE TABLE call_bindings (
    case_id     TEXT NOT NULL PRIMARY KEY REFERENCES cases (id),
    staff_id    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    number      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- When the case closed; NULL while the binding is in force.
    ended_at    BIGINT
);

-- While in force, a number leads each agent to one customer, and each agent reaches a
-- customer through one number (the same one on every call).
CREATE UNIQUE INDEX call_bindings_agent_number ON call_bindings (staff_id, number)
    WHERE ended_at IS NULL;
CREATE UNIQUE INDEX call_bindings_agent_customer ON call_bindings (staff_id, customer_id)
    WHERE ended_at IS NULL;
