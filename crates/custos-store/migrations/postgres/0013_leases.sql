-- Roles that one gateway node at a time may hold, by lease (src/leases.rs): a role that
-- acts on the outside world over many transactions (the detector) must not run on two
-- nodes at once, and must stop by itself on a node cut off from the database.
CREATE TABLE leases (
    name   TEXT   PRIMARY KEY,
    holder TEXT   NOT NULL,
    -- The end of the lease, unix milliseconds by the database's clock.
    until  BIGINT NOT NULL
);
