-- Provisioning from the company's identity provider (SCIM 2.0, src/provisioning.rs).
-- A SCIM user is a staff entry (its id is the user's userName); this table keeps what the
-- provider said about it. Deleting the user leaves the staff entry, suspended (records
-- and evidence name it), and this row as a tombstone that keeps provisioning's hold:
-- only the provider, never an analyst's resume, brings a deleted person back.
CREATE TABLE scim_users (
    staff_id      TEXT    NOT NULL PRIMARY KEY REFERENCES staff (id),
    -- The id in lower case: userName is unique without regard to case (RFC 7643 §4.1.1).
    user_name_key TEXT    NOT NULL UNIQUE,
    display_name  TEXT,
    external_id   TEXT,
    -- NULL when the provider sent no 'active' (counts as active).
    active        BOOLEAN,
    -- Set when provisioning, not a person, suspended the staff entry: only then may
    -- provisioning resume it.
    held          BOOLEAN NOT NULL,
    version       BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    modified_at   BIGINT  NOT NULL,
    -- When the provider deleted the user; NULL while they exist.
    deleted_at    BIGINT
);

-- The provider's groups; the configuration maps group names to roles.
CREATE TABLE scim_groups (
    id           TEXT    NOT NULL PRIMARY KEY,
    display_name TEXT    NOT NULL,
    external_id  TEXT,
    version      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    modified_at  BIGINT  NOT NULL
);

CREATE TABLE scim_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id),
    staff_id TEXT NOT NULL REFERENCES scim_users (staff_id),
    position BIGINT NOT NULL,
    PRIMARY KEY (group_id, staff_id)
);
CREATE INDEX scim_members_by_staff ON scim_members (staff_id);
