-- Configuration database, schema version 12.
--
-- Uniqueness of tenant URL and name is case-insensitive. The application computes the
-- keys (URL in lower case; name trimmed, then in lower case) so that PostgreSQL and
-- SQLite decide it the same way, whatever the collation.

CREATE TABLE cluster_info (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Newest archive schemaVersion this database accepts.
    schema_version integer NOT NULL,
    -- Identifies this configuration database; reporting databases record it, so a
    -- leftover is only ever removed by the database that created it.
    database_id    uuid NOT NULL
);

INSERT INTO cluster_info (schema_version, database_id) VALUES (12, gen_random_uuid());

CREATE TABLE tenants (
    guid               uuid PRIMARY KEY,
    url                text NOT NULL,
    url_key            text NOT NULL,
    name               text NOT NULL,
    name_key           text NOT NULL,
    status             text NOT NULL CHECK (status IN ('active', 'inactive')),
    sip_domain         text,
    created_at         text,
    settings           jsonb NOT NULL DEFAULT '{}',
    reporting_database text,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_url_key_unique UNIQUE (url_key),
    CONSTRAINT tenants_name_key_unique UNIQUE (name_key)
);

CREATE TABLE config_objects (
    guid        uuid PRIMARY KEY,
    tenant_guid uuid NOT NULL REFERENCES tenants (guid) ON DELETE CASCADE,
    object_type text NOT NULL,
    name        text NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX config_objects_tenant_idx ON config_objects (tenant_guid, object_type);

CREATE TABLE trunks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    domain     text NOT NULL,
    carrier    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trunks_name_unique UNIQUE (name)
);

CREATE TABLE trunk_prefixes (
    trunk_id bigint NOT NULL REFERENCES trunks (id) ON DELETE CASCADE,
    prefix   text NOT NULL,
    cost     double precision NOT NULL,
    PRIMARY KEY (trunk_id, prefix)
);

-- An access number is its digit count plus its value, so "0123" and "123" differ and
-- a range is an index range scan on the primary key.
CREATE TABLE access_numbers (
    digits      smallint NOT NULL CHECK (digits BETWEEN 1 AND 15),
    value       bigint NOT NULL CHECK (value >= 0),
    tenant_guid uuid REFERENCES tenants (guid),
    trunk_id    bigint REFERENCES trunks (id),
    media       text NOT NULL CHECK (media IN ('voice', 'text', 'voice_text')),
    PRIMARY KEY (digits, value)
);

-- Numbers of one tenant, for export, listing and delete.
CREATE INDEX access_numbers_tenant_idx ON access_numbers (tenant_guid, digits, value)
    WHERE tenant_guid IS NOT NULL;

-- Owned numbers only, for the whole-range skip check of an import.
CREATE INDEX access_numbers_owned_idx ON access_numbers (digits, value)
    WHERE tenant_guid IS NOT NULL;

-- One row per committed import, written in the import's own transaction.
CREATE TABLE import_journal (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    import_id      text,
    tenant_guid    uuid NOT NULL,
    archive_sha256 text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    report         jsonb NOT NULL,
    CONSTRAINT import_journal_import_id_unique UNIQUE (import_id)
);
