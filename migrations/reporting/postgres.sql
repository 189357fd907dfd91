-- Schema of a tenant's reporting database on PostgreSQL. The import engine creates it
-- in a new database and then writes the one reporting_meta row.

-- Who made this database: the tenant and the configuration database. The engine only
-- ever drops a reporting database whose row names itself and the tenant.
CREATE TABLE reporting_meta (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant_guid        uuid NOT NULL,
    config_database_id uuid NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE call_records (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_guid     uuid NOT NULL UNIQUE,
    access_number text NOT NULL,
    media         text NOT NULL CHECK (media IN ('voice', 'text', 'voice_text')),
    agent_guid    uuid,
    service_guid  uuid,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    disposition   text
);

CREATE INDEX call_records_started_idx ON call_records (started_at);

CREATE TABLE agent_sessions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_guid uuid NOT NULL,
    logged_in  timestamptz NOT NULL,
    logged_out timestamptz,
    state      text NOT NULL
);

CREATE INDEX agent_sessions_agent_idx ON agent_sessions (agent_guid, logged_in);
