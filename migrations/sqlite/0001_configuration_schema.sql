-- Configuration database, schema version 12, for SQLite.
--
-- The same tables as on PostgreSQL: GUIDs are lower-case hyphenated text, JSON is text,
-- timestamps are RFC 3339 text in UTC. Uniqueness keys are computed by the application.

CREATE TABLE cluster_info (
    singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
    schema_version INTEGER NOT NULL,
    database_id    TEXT NOT NULL
);

INSERT INTO cluster_info (singleton, schema_version, database_id)
VALUES (
    1,
    12,
    lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
        || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))
);

CREATE TABLE tenants (
    guid               TEXT PRIMARY KEY,
    url                TEXT NOT NULL,
    url_key            TEXT NOT NULL,
    name               TEXT NOT NULL,
    name_key           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    sip_domain         TEXT,
    created_at         TEXT,
    settings           TEXT NOT NULL DEFAULT '{}',
    reporting_database TEXT,
    imported_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT tenants_url_key_unique UNIQUE (url_key),
    CONSTRAINT tenants_name_key_unique UNIQUE (name_key)
);

CREATE TABLE config_objects (
    guid        TEXT PRIMARY KEY,
    tenant_guid TEXT NOT NULL REFERENCES tenants (guid) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    name        TEXT NOT NULL,
    attributes  TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX config_objects_tenant_idx ON config_objects (tenant_guid, object_type);

CREATE TABLE trunks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    domain     TEXT NOT NULL,
    carrier    TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT trunks_name_unique UNIQUE (name)
);

CREATE TABLE trunk_prefixes (
    trunk_id INTEGER NOT NULL REFERENCES trunks (id) ON DELETE CASCADE,
    prefix   TEXT NOT NULL,
    cost     REAL NOT NULL,
    PRIMARY KEY (trunk_id, prefix)
);

CREATE TABLE access_numbers (
    digits      INTEGER NOT NULL CHECK (digits BETWEEN 1 AND 15),
    value       INTEGER NOT NULL CHECK (value >= 0),
    tenant_guid TEXT REFERENCES tenants (guid),
    trunk_id    INTEGER REFERENCES trunks (id),
    media       TEXT NOT NULL CHECK (media IN ('voice', 'text', 'voice_text')),
    PRIMARY KEY (digits, value)
) WITHOUT ROWID;

CREATE INDEX access_numbers_tenant_idx ON access_numbers (tenant_guid, digits, value)
    WHERE tenant_guid IS NOT NULL;

CREATE INDEX access_numbers_owned_idx ON access_numbers (digits, value)
    WHERE tenant_guid IS NOT NULL;

CREATE TABLE import_journal (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    import_id      TEXT,
    tenant_guid    TEXT NOT NULL,
    archive_sha256 TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT NOT NULL,
    report         TEXT NOT NULL,
    CONSTRAINT import_journal_import_id_unique UNIQUE (import_id)
);
